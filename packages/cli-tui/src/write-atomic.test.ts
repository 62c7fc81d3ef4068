import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError, NotFoundError } from '@sfc/core';
import { removePendingTempFiles, writeFileAtomic } from './write-atomic.js';

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
});
