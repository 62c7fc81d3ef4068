import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CapabilityError } from '@sfc/core';
import { readByPosition } from './plugin-io.js';

const dir = mkdtempSync(join(tmpdir(), 'sfc-pio-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readByPosition (SAE files past 2 GiB)', () => {
  it('reads the whole file in chunks, byte for byte', () => {
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 37) % 251);
    const path = join(dir, 'a.bin');
    writeFileSync(path, bytes);
    expect(readByPosition(path, 7)).toEqual(bytes);
  });

  it('refuses a file past 4 GiB before allocating anything (sparse file)', () => {
    const path = join(dir, 'huge.npz');
    const fd = openSync(path, 'w');
    ftruncateSync(fd, 2 ** 32 + 1);
    closeSync(fd);
    let err: unknown;
    try { readByPosition(path); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(CapabilityError);
    expect((err as Error).message).toMatch(/huge\.npz is 4\.00 GiB; dictionary files are read whole/);
  });
});
