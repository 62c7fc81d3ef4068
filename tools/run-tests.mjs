#!/usr/bin/env node
// Runs every package's tests through Nx, then prints one closing pass/fail line summed over the
// JSON reports that each package's vitest writes (.test-results/vitest.json). Exit code is Nx's.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dirs = [join(root, 'test'), ...['packages', 'examples'].flatMap((top) =>
  existsSync(join(root, top)) ? readdirSync(join(root, top)).map((d) => join(root, top, d)) : [])];
for (const d of dirs) rmSync(join(d, '.test-results'), { recursive: true, force: true });

const args = ['nx', 'run-many', '-t', 'test', '--output-style=static', '--parallel=1', ...process.argv.slice(2)];
const run = spawnSync('npx', args, { cwd: root, stdio: 'inherit', env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' } });

let passed = 0, failed = 0, skipped = 0, files = 0;
for (const d of dirs) {
  const f = join(d, '.test-results', 'vitest.json');
  if (!existsSync(f)) continue;
  const r = JSON.parse(readFileSync(f, 'utf8'));
  passed += r.numPassedTests ?? 0;
  failed += (r.numFailedTests ?? 0) + (r.numFailedTestSuites ?? 0) - (r.numFailedTests > 0 ? 0 : 0);
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  files += r.numTotalTestSuites ?? 0;
}
const code = run.status ?? 1;
if (code !== 0 && failed === 0) failed = 1; // a package failed before reporting (e.g. a crash): never claim green
console.log(`\nTests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(code);
