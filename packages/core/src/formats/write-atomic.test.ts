// The safe writer: complete or nothing (short writes under a file-size limit, a failing producer,
// a signal), the old file's mode kept, FIFOs written through, non-regular targets refused.
import { spawnSync } from 'node:child_process';
import { chmodSync, createReadStream, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES, InputError, IoError, NotFoundError } from '../errors.js';
import { checkOutputFolder, checkOutputPath, removePendingTempFiles, writeFileAtomic } from './write-atomic.js';

const dir = () => mkdtempSync(join(tmpdir(), 'sfc-write-'));

describe('writeFileAtomic', () => {
  it('writes strings, bytes and chunk streams', async () => {
    const d = dir();
    await writeFileAtomic(join(d, 'a.txt'), 'hello');
    await writeFileAtomic(join(d, 'b.bin'), new Uint8Array([1, 2, 3]));
    await writeFileAtomic(join(d, 'c.txt'), (function* () { yield 'x'; yield new TextEncoder().encode('y'); yield 'z'; })());
    await writeFileAtomic(join(d, 'd.txt'), (async function* () { yield '1'; yield '2'; })());
    expect(readFileSync(join(d, 'a.txt'), 'utf8')).toBe('hello');
    expect([...readFileSync(join(d, 'b.bin'))]).toEqual([1, 2, 3]);
    expect(readFileSync(join(d, 'c.txt'), 'utf8')).toBe('xyz');
    expect(readFileSync(join(d, 'd.txt'), 'utf8')).toBe('12');
    expect(readdirSync(d).sort()).toEqual(['a.txt', 'b.bin', 'c.txt', 'd.txt']);
  });

  it('leaves no partial file when producing the content fails, and keeps the old file', async () => {
    const d = dir();
    const target = join(d, 'out.json');
    writeFileSync(target, 'old content');
    const failing = (function* () { yield '{"partial": '; throw new Error('boom'); })();
    await expect(writeFileAtomic(target, failing)).rejects.toThrow('boom');
    expect(readFileSync(target, 'utf8')).toBe('old content');
    expect(readdirSync(d)).toEqual(['out.json']); // no temp file left behind

    const fresh = join(d, 'new.json');
    await expect(writeFileAtomic(fresh, (async function* () { yield 'a'; throw new Error('late'); })())).rejects.toThrow('late');
    expect(readdirSync(d)).toEqual(['out.json']);
  });

  it('removePendingTempFiles() deletes a temp file still being written (Ctrl-C)', async () => {
    const d = dir();
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const writing = writeFileAtomic(join(d, 'slow.json'), (async function* () { yield 'a'; await gate; yield 'b'; })());
    await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(d).filter((f) => f.endsWith('.tmp'))).toHaveLength(1);
    removePendingTempFiles();
    expect(readdirSync(d)).toEqual([]);
    release();
    await expect(writing).rejects.toThrow(); // the rename finds no temp file
    expect(readdirSync(d)).toEqual([]);
  });

  it('replaces an existing file in one step', async () => {
    const d = dir();
    const target = join(d, 'f.txt');
    writeFileSync(target, 'v1');
    await writeFileAtomic(target, 'v2');
    expect(readFileSync(target, 'utf8')).toBe('v2');
  });

  it('gives typed errors for a missing folder or a folder as target', async () => {
    const d = dir();
    await expect(writeFileAtomic(join(d, 'missing', 'x.json'), 'x')).rejects.toThrow(NotFoundError);
    await expect(writeFileAtomic(d, 'x')).rejects.toThrow(InputError);
  });

  it('keeps an existing file\'s mode (0600 stays 0600)', async () => {
    const d = dir();
    const target = join(d, 'secret.json');
    writeFileSync(target, 'v1');
    chmodSync(target, 0o600);
    await writeFileAtomic(target, 'v2');
    expect(statSync(target).mode & 0o777).toBe(0o600);
    expect(readFileSync(target, 'utf8')).toBe('v2');
  });

  it('writes through a FIFO instead of renaming over it; /dev/null is written through too', async () => {
    const d = dir();
    const fifo = join(d, 'pipe');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const chunks: Buffer[] = [];
    const reader = new Promise<string>((res, rej) => {
      createReadStream(fifo).on('data', (c) => chunks.push(c as Buffer)).on('end', () => res(Buffer.concat(chunks).toString())).on('error', rej);
    });
    await writeFileAtomic(fifo, 'through the pipe');
    expect(await reader).toBe('through the pipe');
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(readdirSync(d)).toEqual(['pipe']);
    expect(checkOutputPath('/dev/null')).toBe('stream'); // never renamed over (as root it became a regular file)
  });

  it('replaces the file a symlink points to, keeping the link; refuses dangling links and sockets', async () => {
    const d = dir();
    writeFileSync(join(d, 'real.json'), 'old');
    symlinkSync(join(d, 'real.json'), join(d, 'link.json'));
    await writeFileAtomic(join(d, 'link.json'), 'new');
    expect(lstatSync(join(d, 'link.json')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(d, 'real.json'), 'utf8')).toBe('new');
    symlinkSync(join(d, 'missing.json'), join(d, 'dangling.json'));
    await expect(writeFileAtomic(join(d, 'dangling.json'), 'x')).rejects.toThrow(InputError);
    const sock = join(d, 'sock');
    const server = createServer();
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      await expect(writeFileAtomic(sock, 'x')).rejects.toThrow(/not a regular file/);
    } finally {
      server.close();
    }
  });

  it('checkOutputFolder: a folder to create under a writable one is fine; under a file it is refused', () => {
    const d = dir();
    expect(() => checkOutputFolder(join(d, 'a', 'b', 'c'))).not.toThrow();
    writeFileSync(join(d, 'f'), '');
    expect(() => checkOutputFolder(join(d, 'f', 'sae'))).toThrow(InputError);
  });

  it.skipIf(process.getuid?.() === 0)('refuses a folder it cannot write to, before writing (typed, exit 8) — skipped as root, who may write anywhere', async () => {
    const d = dir();
    chmodSync(d, 0o500);
    expect(() => checkOutputPath(join(d, 'x.json'))).toThrow(IoError);
    chmodSync(d, 0o700);
  });

  it('under a file-size limit (ulimit -f): a typed error, the old file kept, no temp file', () => {
    const d = dir();
    const target = join(d, 'out.json');
    writeFileSync(target, 'good old content');
    const r = runLimited(d, target, 8, 64 * 1024);
    expect(r.stdout.trim()).toBe('IoError IO');
    expect(EXIT_CODES.IO).toBe(8); // docs/cli.md
    expect(r.stderr).toMatch(/file-size limit/);
    expect(readFileSync(target, 'utf8')).toBe('good old content');
    expect(readdirSync(d)).toEqual(['out.json']);
    expect(runLimited(d, target, 8, 4096).stdout.trim()).toBe('ok'); // below the limit it works
    expect(readFileSync(target, 'utf8')).toHaveLength(4096);
  });
});

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** A child under `ulimit -f <blocks>` (1 KiB blocks; node ignores SIGXFSZ, so writes fail with EFBIG) writes `bytes` bytes. */
function runLimited(cwd: string, target: string, blocks: number, bytes: number) {
  const tsx = pathToFileURL(createRequire(join(HERE, '..', '..', 'package.json')).resolve('tsx')).href;
  const script = `import { writeFileAtomic } from ${JSON.stringify(pathToFileURL(join(HERE, 'write-atomic.ts')).href)};
try { await writeFileAtomic(${JSON.stringify(target)}, 'x'.repeat(${bytes})); console.log('ok'); }
catch (e) { console.error(e.message); console.log(e.name, e.code); }`;
  const scriptPath = join(tmpdir(), `sfc-limited-${process.pid}-${blocks}-${bytes}.mts`);
  writeFileSync(scriptPath, script);
  const r = spawnSync('bash', ['-c', `ulimit -f ${blocks}; exec "${process.execPath}" --import ${tsx} "${scriptPath}"`], { cwd, encoding: 'utf8' });
  rmSync(scriptPath, { force: true });
  return { stdout: r.stdout, stderr: r.stderr };
}
