// The benchmark harness (bench/) and the embedded-model tools (tools/embedded/) import the
// packages from source but sit outside `tsc -b`'s project references, so a change to a package's
// API could break them unnoticed until someone runs them. Type-check both here.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './paths.js';

const TSC = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

describe('developer scripts type-check', () => {
  for (const project of ['bench/tsconfig.json', 'tools/embedded/tsconfig.json']) {
    it(project, () => {
      const r = spawnSync(process.execPath, [TSC, '-p', project, '--noEmit'], { cwd: REPO_ROOT, encoding: 'utf8' });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    });
  }
});
