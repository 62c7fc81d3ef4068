// Output files end to end (issue #16, "Data loss and file safety"): a full disk or a file-size
// limit is a typed error (exit 8) that keeps the old file and leaves no temp file; a folder that
// cannot be written fails before the work; a closed terminal (SIGHUP) leaves no temp file.
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '@sfc/core';
import { CLI_MAIN } from './cli-run.js';
import { REPO_ROOT, SMALL_A } from './paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'sfc-file-safety-'));
chmodSync(TMP, 0o755);
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;
const NODE = [process.execPath, '--conditions=@sfc/source', '--import', TSX];
const forward = (out: string) => [CLI_MAIN, 'forward', '--model', SMALL_A, '--backend', 'tfjs-cpu', '--text', 'The parents that the guards know', '--out', out];
const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;

function run(argv: string[], options: SpawnSyncOptions & { fileSizeKiB?: number } = {}) {
  const cmd = [...NODE, ...argv].map(quote).join(' ');
  const shell = options.fileSizeKiB ? `ulimit -f ${options.fileSizeKiB}; exec ${cmd}` : `exec ${cmd}`;
  const r = spawnSync('bash', ['-c', shell], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, ...options });
  return { code: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

// As root the folder test runs the CLI as `nobody`, who must be able to read the checkout.
const asRoot = process.getuid?.() === 0;
const nobodyReads = !asRoot || spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(CLI_MAIN)}, 4)`], { uid: 65534, gid: 65534 }).status === 0;

describe('sfc output files', () => {
  it('a file-size limit (as on a full disk) fails with exit 8 and keeps the old file, with no temp file', () => {
    const dir = join(TMP, 'limit');
    mkdirSync(dir);
    const out = join(dir, 'logits.json');
    writeFileSync(out, '{"good": "old"}\n');
    const r = run(forward(out), { fileSizeKiB: 1 }); // the logits are ~4 KB
    expect(r.code, r.stderr).toBe(EXIT_CODES.IO);
    expect(r.stderr).toMatch(/^error: cannot write .*logits\.json: the file would exceed the file-size limit/m);
    expect(r.stderr).not.toMatch(/wrote/);
    expect(readFileSync(out, 'utf8')).toBe('{"good": "old"}\n');
    expect(readdirSync(dir)).toEqual(['logits.json']);
  });

  it.skipIf(!nobodyReads)('a folder the user cannot write to fails before the work, typed (exit 8) (skipped as root where user nobody cannot read the checkout)', () => {
    const dir = join(TMP, 'readonly');
    mkdirSync(dir);
    // Root may write anywhere: run as `nobody` then (the folder stays root's, mode 0755).
    if (asRoot) chmodSync(dir, 0o755); else chmodSync(dir, 0o555);
    const r = run(forward(join(dir, 'x.json')), asRoot ? { uid: 65534, gid: 65534, env: { ...process.env, NO_COLOR: '1', HOME: TMP } } : {});
    if (!asRoot) chmodSync(dir, 0o755);
    expect(r.code, r.stderr).toBe(EXIT_CODES.IO);
    expect(r.stderr).toMatch(/permission denied \(folder .*readonly\)/);
    expect(r.stderr).not.toMatch(/EACCES|unexpected/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('SIGHUP while an output is being written removes the temp file and exits 129', async () => {
    const dir = join(TMP, 'hup');
    mkdirSync(dir);
    const module = (p: string) => JSON.stringify(pathToFileURL(join(REPO_ROOT, p)).href);
    const script = join(TMP, 'hup.mts');
    writeFileSync(script, `import { removeTempFilesOnSignals, writeFileAtomic } from ${module('packages/cli-tui/src/write-atomic.ts')};
removeTempFilesOnSignals();
await writeFileAtomic(${JSON.stringify(join(dir, 'big.json'))}, (async function* () {
  yield 'x'.repeat(1 << 20);
  console.log('writing');
  await new Promise((r) => setTimeout(r, 60_000));
})());`);
    const child = spawn(NODE[0]!, [...NODE.slice(1), script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve) => child.stdout.on('data', () => resolve()));
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toHaveLength(1);
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    child.kill('SIGHUP');
    expect(await exited).toBe(129);
    expect(readdirSync(dir)).toEqual([]);
  });
});
