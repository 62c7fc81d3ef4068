// tools/run-tests.mjs (`npm test`) on a fake workspace whose "vitest" is a script writing a
// report: jobs run in parallel, output arrives in whole blocks without colour codes when
// redirected, no Nx banner, every skip is listed with its reason, and the closing line is exact.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'sfc-run-tests-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const FAKE_VITEST = `import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
const out = process.argv.find((a) => a.startsWith('--outputFile.json=')).split('=')[1];
const name = process.cwd().split('/').pop();
const fail = name === 'c';
appendFileSync(process.env.LOG, 'start ' + name + ' ' + Date.now() + '\\n');
await new Promise((r) => setTimeout(r, 1500));
console.log('\\x1b[32m✓\\x1b[39m ' + name + ' ran with ' + process.argv.slice(2).join(' '));
const file = join(process.cwd(), 'src', 'x.test.ts');
const asserts = [{ status: fail ? 'failed' : 'passed', fullName: name + ' works' }, { status: 'pending', fullName: name + ' on a GPU (skipped: no GPU here)' }];
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ numPassedTests: fail ? 0 : 1, numFailedTests: fail ? 1 : 0, numPendingTests: 1, numTodoTests: 0,
  testResults: [{ name: file, status: fail ? 'failed' : 'passed', startTime: 1, endTime: 1501, assertionResults: asserts }] }));
appendFileSync(process.env.LOG, 'end ' + name + ' ' + Date.now() + '\\n');
process.exit(fail ? 1 : 0);
`;

function workspace(names: string[]): string {
  const root = mkdtempSync(join(TMP, 'ws-'));
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'ws', private: true, workspaces: ['pkgs/*'] }));
  writeFileSync(join(root, 'fake-vitest.mjs'), FAKE_VITEST);
  for (const n of names) {
    mkdirSync(join(root, 'pkgs', n, 'src'), { recursive: true });
    writeFileSync(join(root, 'pkgs', n, 'src', 'x.test.ts'), '');
    writeFileSync(join(root, 'pkgs', n, 'package.json'), JSON.stringify({ name: `@ws/${n}`, scripts: { test: 'node ../../fake-vitest.mjs' } }));
  }
  return root;
}

function runner(root: string, args: string[] = []) {
  const log = join(root, 'log.txt');
  writeFileSync(log, '');
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'tools', 'run-tests.mjs'), ...args], {
    encoding: 'utf8', env: { ...process.env, SFC_TEST_ROOT: root, SFC_TEST_JOBS: '2', LOG: log, FORCE_COLOR: '1' },
  });
  const events = readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split(' ')).map(([kind, name, t]) => ({ kind, name, t: Number(t) }));
  return { ...r, events };
}

describe('npm test runner', () => {
  it('runs packages in parallel, prints whole blocks without colour codes, lists skips with reasons, ends with the summary line', () => {
    const r = runner(workspace(['a', 'b']));
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const starts = r.events.filter((e) => e.kind === 'start'), ends = r.events.filter((e) => e.kind === 'end');
    expect(Math.max(...starts.map((e) => e.t))).toBeLessThan(Math.min(...ends.map((e) => e.t))); // both ran at once
    expect(r.stdout).not.toMatch(/\x1b\[/); // FORCE_COLOR in the environment, but stdout is not a terminal
    expect(r.stdout).not.toMatch(/Nx|nx\.dev|Successfully ran target/);
    expect(r.stdout).toMatch(/── @ws\/a: ok in \d+ s ──\n✓ a ran with --maxWorkers=1 --outputFile\.json=\.test-results\/vitest-\d\.json\n/);
    expect(r.stdout).toContain('Skipped (the title says why):\n  - pkgs/a/src/x.test.ts: a on a GPU (skipped: no GPU here)\n');
    expect(r.stdout.trimEnd().split('\n').pop()).toBe('Tests: 2 passed, 0 failed, 2 skipped');
  });

  it('records durations; --quick leaves out the files that took over 20 s, and says which', () => {
    const root = workspace(['a', 'b']);
    runner(root); // a full run records every file's duration
    const recorded = JSON.parse(readFileSync(join(root, '.test-results', 'durations.json'), 'utf8'));
    expect(recorded).toEqual({ 'pkgs/a/src/x.test.ts': 1500, 'pkgs/b/src/x.test.ts': 1500 });
    writeFileSync(join(root, '.test-results', 'durations.json'), JSON.stringify({ ...recorded, 'pkgs/b/src/x.test.ts': 95_000 }));
    const r = runner(root, ['--quick']);
    expect(r.status, r.stdout).toBe(0);
    expect(r.events.map((e) => e.name)).toEqual(['a', 'a']);
    expect(r.stdout).toContain('Left out by --quick (over 20 s in the last full run; `npm test` runs them):\n  - pkgs/b/src/x.test.ts (95 s)');
    expect(r.stdout.trimEnd().split('\n').pop()).toBe('Tests: 1 passed, 0 failed, 1 skipped');
  });

  it('fails with the failing tests listed when one package fails', () => {
    const r = runner(workspace(['a', 'c']));
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/── @ws\/c: FAILED \(exit 1\) in \d+ s ──/);
    expect(r.stdout).toContain('Failed:\n  - pkgs/c/src/x.test.ts: c works\n');
    expect(r.stdout.trimEnd().split('\n').pop()).toBe('Tests: 1 passed, 1 failed, 2 skipped');
  });
});
