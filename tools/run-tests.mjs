#!/usr/bin/env node
// `npm test`: runs every workspace's tests (its `test` script, i.e. vitest) and ends with one
// line, `Tests: N passed, M failed, K skipped`, summed over the JSON reports each run writes.
//
// Vitest runs a package's files on (cores − 1) workers: one on a 2-core machine. So this runner
// schedules the work itself: each package (large ones split into `--shard`s) is one job with one
// worker, and as many jobs run at once as there are cores (SFC_TEST_JOBS overrides), longest
// first — by the durations the previous run recorded in .test-results/durations.json, or by the
// number of test files. Each job's output is printed in one block when it ends (never
// interleaved), without colour codes unless stdout is a terminal. The summary lists every
// skipped test with its reason (the test's title says why) and every failure.
//
//   npm test                        all packages, every test (what CI runs)
//   npm test -- --projects core,e2e only these packages (name or folder, substring)
//   npm test -- --quick             a developer's quick loop: leaves out the test files that took
//                                   longer than 20 s in the last full run (listed in the summary)
//   npm test -- -t pattern          any other argument goes to every vitest run
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';

// SFC_TEST_ROOT: another workspace (the runner's own test runs it on a fake one).
const root = process.env.SFC_TEST_ROOT ?? new URL('..', import.meta.url).pathname;
const tty = process.stdout.isTTY === true;
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;
const DURATIONS = join(root, '.test-results', 'durations.json');

// --- arguments -----------------------------------------------------------------------------
const argv = process.argv.slice(2);
let only;
let quick = false;
const QUICK_LIMIT_MS = 20_000;
const passThrough = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--projects' || a === '-p') only = argv[++i]?.split(',');
  else if (a.startsWith('--projects=')) only = a.slice('--projects='.length).split(',');
  else if (a === '--quick') quick = true;
  else passThrough.push(a);
}

// --- workspaces with a test script ---------------------------------------------------------
const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const dirs = rootPkg.workspaces.flatMap((w) => {
  if (!w.endsWith('/*')) return [join(root, w)];
  const parent = join(root, w.slice(0, -2));
  return existsSync(parent) ? readdirSync(parent).sort().map((d) => join(parent, d)) : [];
}).filter((d) => existsSync(join(d, 'package.json')));
const packages = dirs.map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
  .filter(({ pkg }) => pkg.scripts?.test)
  .map(({ dir, pkg }) => ({ dir, name: pkg.name, rel: relative(root, dir) }))
  .filter((p) => !only || only.some((o) => p.name.includes(o) || p.rel.includes(o)));
for (const p of dirs) rmSync(join(p, '.test-results'), { recursive: true, force: true });

// --- jobs: packages, large ones in shards, longest first -----------------------------------
const testFiles = (dir) => {
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d)) {
      if (e === 'node_modules' || e === 'dist' || e.startsWith('.')) continue;
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.test\.tsx?$/.test(e)) out.push(relative(root, p));
    }
  };
  for (const sub of ['src', 'test']) if (existsSync(join(dir, sub))) walk(join(dir, sub));
  return out;
};
let known = {};
try { known = JSON.parse(readFileSync(DURATIONS, 'utf8')); } catch { /* first run: count files */ }
const cores = Number(process.env.SFC_TEST_JOBS) || availableParallelism();
// Without a record, guess 5 s per file, 15 s in the cross-package suite (test/: parity on every backend).
const leftOut = quick ? Object.keys(known).filter((f) => known[f] > QUICK_LIMIT_MS && packages.some((p) => f.startsWith(`${p.rel}/`))).sort() : [];
const estimates = packages.map((p) => {
  const files = testFiles(p.dir).filter((f) => !leftOut.includes(f));
  const guess = p.rel === 'test' ? 15_000 : 5_000;
  const ms = files.reduce((s, f) => s + (known[f] ?? guess), 0);
  const exclude = leftOut.filter((f) => f.startsWith(`${p.rel}/`)).map((f) => `--exclude=${f.slice(p.rel.length + 1)}`);
  return { ...p, files: files.length, ms, exclude };
}).filter((p) => p.files > 0);
const total = estimates.reduce((s, p) => s + p.ms, 0);
const jobs = estimates.flatMap((p) => {
  // A package longer than its share of the machine is split so that no job dominates the wall time.
  const shards = Math.max(1, Math.min(p.files, Math.ceil(p.ms / Math.max(1, total / (cores * 2)))));
  return Array.from({ length: shards }, (_, i) => ({
    ...p, shard: shards > 1 ? `${i + 1}/${shards}` : undefined, ms: p.ms / shards,
  }));
}).sort((a, b) => b.ms - a.ms);

// --- run ------------------------------------------------------------------------------------
const env = { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' };
if (tty) env.FORCE_COLOR = '1';
else { delete env.FORCE_COLOR; env.NO_COLOR = '1'; }

function run(job, index) {
  const report = `.test-results/vitest-${index}.json`;
  const args = ['run', 'test', '--silent', '--', '--maxWorkers=1', `--outputFile.json=${report}`,
    ...(job.shard ? [`--shard=${job.shard}`] : []), ...job.exclude, ...passThrough];
  const label = `${job.name}${job.shard ? ` (shard ${job.shard})` : ''}`;
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('npm', args, { cwd: job.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('close', (code, signal) => {
      const secs = ((Date.now() - started) / 1000).toFixed(0);
      const text = tty ? out : out.replace(ANSI, '');
      process.stdout.write(`\n── ${label}: ${code === 0 ? 'ok' : `FAILED (exit ${code ?? signal})`} in ${secs} s ──\n${text.trimEnd()}\n`);
      resolve({ ...job, label, code: code ?? 1, report: join(job.dir, report) });
    });
  });
}

const wallStart = Date.now();
const queue = jobs.map((j, i) => [j, i]);
const results = [];
await Promise.all(Array.from({ length: Math.min(cores, queue.length) }, async () => {
  for (let next = queue.shift(); next; next = queue.shift()) results.push(await run(...next));
}));

// --- summary --------------------------------------------------------------------------------
let passed = 0, failed = 0, skipped = 0;
const skips = [], failures = [], durations = { ...known };
for (const r of results) {
  if (!existsSync(r.report)) {
    failures.push(`${r.label}: no test report (the run crashed or did not start; its output is above)`);
    failed++;
    continue;
  }
  const rep = JSON.parse(readFileSync(r.report, 'utf8'));
  passed += rep.numPassedTests ?? 0;
  failed += rep.numFailedTests ?? 0;
  skipped += (rep.numPendingTests ?? 0) + (rep.numTodoTests ?? 0);
  for (const f of rep.testResults ?? []) {
    const file = relative(root, f.name);
    if (f.endTime && f.startTime) durations[file] = f.endTime - f.startTime;
    const asserts = f.assertionResults ?? [];
    for (const a of asserts) {
      if (a.status === 'pending' || a.status === 'skipped' || a.status === 'todo') skips.push(`${file}: ${a.fullName}`);
      if (a.status === 'failed') failures.push(`${file}: ${a.fullName}`);
    }
    if (f.status === 'failed' && !asserts.some((a) => a.status === 'failed')) {
      failures.push(`${file}: ${(f.message ?? 'failed to load').split('\n')[0]}`);
      failed++;
    }
  }
  if (r.code !== 0 && !failures.some((f) => f.startsWith(relative(root, r.dir)))) {
    failures.push(`${r.label}: exit code ${r.code}`);
    failed++;
  }
}
mkdirSync(join(root, '.test-results'), { recursive: true });
if (!only && !quick && passThrough.length === 0) writeFileSync(DURATIONS, `${JSON.stringify(durations, null, 1)}\n`);

const wall = Math.round((Date.now() - wallStart) / 1000);
console.log(`\n${results.length} test runs (${packages.length} packages) on ${cores} parallel jobs in ${Math.floor(wall / 60)} min ${wall % 60} s`);
if (quick) {
  console.log(leftOut.length
    ? `\nLeft out by --quick (over ${QUICK_LIMIT_MS / 1000} s in the last full run; \`npm test\` runs them):\n${leftOut.map((f) => `  - ${f} (${Math.round(known[f] / 1000)} s)`).join('\n')}`
    : '\n--quick left nothing out: no full run recorded in .test-results/durations.json yet');
}
if (skips.length) console.log(`\nSkipped (the title says why):\n${[...skips].sort().map((s) => `  - ${s}`).join('\n')}`);
if (failures.length) console.log(`\nFailed:\n${failures.map((s) => `  - ${s}`).join('\n')}`);
console.log(`\nTests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(results.every((r) => r.code === 0) && failed === 0 ? 0 : 1);
