// What a newcomer meets first (issue #16, "First contact"): `npx sfc` prints nothing on stderr
// (no npm warnings about project config or install scripts), every dependency's install script is
// reviewed in package.json's allowScripts, and no comment cites a design file the repository
// does not have.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './paths.js';

const npm = (args: string[]) => spawnSync('npm', args, { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
const hasAllowScripts = npm(['approve-scripts', '--help']).status === 0;

describe('first contact', () => {
  it('`npx sfc --version` prints the version and nothing on stderr', () => {
    const r = spawnSync('npx', ['sfc', '--version'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(join(REPO_ROOT, 'packages', 'cli-tui', 'package.json'), 'utf8')).version);
    expect(r.stderr).toBe('');
  });

  it.skipIf(!hasAllowScripts)('every install script in the tree is allowed or denied in package.json (skipped with an npm before 11, which has no allowScripts)', () => {
    const r = npm(['approve-scripts', '--allow-scripts-pending']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('No packages with unreviewed install scripts.');
    expect(r.stderr).toBe('');
    const { allowScripts } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    expect(allowScripts['onnxruntime-node']).toBe(false); // no CUDA download; its CPU binaries ship in the package
  });

  it('comments cite docs/, not a design file readers do not have', () => {
    const files = spawnSync('git', ['ls-files'], { cwd: REPO_ROOT, encoding: 'utf8' });
    if (files.status !== 0) return expect.fail(`git ls-files failed: ${files.stderr}`);
    const hits = files.stdout.split('\n').filter((f) => /\.(ts|tsx|mjs|js|py|md)$/.test(f) && !f.endsWith('first-contact.test.ts'))
      .filter((f) => /DESIGN(\.md)? ?§|shared\/DESIGN/.test(readFileSync(join(REPO_ROOT, f), 'utf8')));
    expect(hits).toEqual([]);
  });
});
