// Runs tools/tui-smoke.sh: `sfc tui` in a real (tmux) terminal on fixtures/small-a, driven by keys
// and checked through screen captures. Skipped, with a message, where tmux is not installed.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './paths.js';

const hasTmux = spawnSync('tmux', ['-V'], { encoding: 'utf8' }).status === 0;
if (!hasTmux) console.warn('tui-smoke: skipped — tmux is not installed (apt-get install tmux)');

describe('sfc tui in tmux', () => {
  it.skipIf(!hasTmux)('passes the smoke script (browse, steer live, help, resize, discover, quit; skipped where tmux is not installed)', () => {
    const r = spawnSync('bash', [join(REPO_ROOT, 'tools', 'tui-smoke.sh')], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 540_000 });
    expect(r.stderr, r.stdout).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/tui-smoke: OK — \d+ checks passed/);
  });
});
