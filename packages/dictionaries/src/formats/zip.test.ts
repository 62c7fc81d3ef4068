import { readFileSync } from 'node:fs';
import { zipSync } from 'fflate';
import { FormatError } from '@sfc/core';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from './limits.js';
import { crc32, ZipArchive } from './zip.js';

const DIR = new URL('../../test-data/formats/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, DIR)));
const open = (b: Uint8Array, verifyCrc = true) => ZipArchive.open(b, 'test.zip', DEFAULT_LIMITS, verifyCrc);

function lastIndexOfSig(b: Uint8Array, sig: number): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let p = b.length - 4; p >= 0; p--) if (v.getUint32(p, true) === sig) return p;
  return -1;
}
function firstIndexOfSig(b: Uint8Array, sig: number, from = 0): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let p = from; p + 4 <= b.length; p++) if (v.getUint32(p, true) === sig) return p;
  return -1;
}
function patched(name: string, f: (b: Uint8Array, v: DataView) => void): Uint8Array {
  const b = read(name);
  f(b, new DataView(b.buffer, b.byteOffset, b.byteLength));
  return b;
}
const EOCD = 0x06054b50, CENTRAL = 0x02014b50, LOCAL = 0x04034b50, ZIP64_EOCD = 0x06064b50;

function expectFormatError(b: Uint8Array, re: RegExp, verifyCrc = true, readAll = false): void {
  let err: unknown;
  try {
    const z = open(b, verifyCrc);
    if (readAll) for (const e of z.entries.values()) z.read(e);
  } catch (e) { err = e; }
  expect(err, String(re)).toBeInstanceOf(FormatError);
  expect((err as Error).message).toMatch(re);
}

describe('ZipArchive', () => {
  it('computes CRC-32 (check value of "123456789")', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('reads stored and deflated entries written by fflate, verifying CRCs', () => {
    const big = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);
    const z = zipSync({ 'a/stored.bin': [big, { level: 0 }], 'a/deflated.bin': [big, { level: 6 }], 'a/empty': new Uint8Array(0) });
    const zip = open(z);
    expect([...zip.entries.keys()]).toEqual(['a/stored.bin', 'a/deflated.bin', 'a/empty']);
    expect(zip.entries.get('a/deflated.bin')!.method).toBe(8);
    expect(zip.read(zip.entries.get('a/stored.bin')!)).toEqual(big);
    expect(zip.read(zip.entries.get('a/deflated.bin')!)).toEqual(big);
    expect(zip.read(zip.entries.get('a/empty')!).length).toBe(0);
  });

  it('reads zip64 records (numpy force_zip64)', () => {
    const zip = open(read('zip64.npz'));
    expect([...zip.entries.keys()]).toEqual(['a.npy', 'b.npy']);
    expect(zip.entries.get('a.npy')!.size).toBe(176);
  });

  it('refuses an entry count that cannot fit, without walking it', () => {
    expectFormatError(patched('params.npz', (b, v) => v.setUint16(lastIndexOfSig(b, EOCD) + 10, 4000, true)), /cannot fit/);
    // zip64 end record claiming 2^32 − 1 entries: fflate's unzipSync would walk all of them.
    const t0 = performance.now();
    expectFormatError(patched('zip64.npz', (b, v) => v.setBigUint64(lastIndexOfSig(b, ZIP64_EOCD) + 32, 0xffffffffn, true)), /cannot fit/);
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it('refuses saturated zip64 fields without a zip64 locator', () => {
    expectFormatError(patched('params.npz', (b, v) => v.setUint16(lastIndexOfSig(b, EOCD) + 10, 0xffff, true)), /zip64/);
  });

  it('refuses a central directory outside the file', () => {
    expectFormatError(patched('params.npz', (b, v) => v.setUint32(lastIndexOfSig(b, EOCD) + 16, 0x7fffffff, true)), /central directory/);
  });

  it('refuses encrypted entries and unknown compression methods', () => {
    expectFormatError(patched('params.npz', (b, v) => v.setUint16(firstIndexOfSig(b, CENTRAL) + 8, 1, true)), /encrypted/);
    expectFormatError(patched('params.npz', (b, v) => v.setUint16(firstIndexOfSig(b, CENTRAL) + 10, 12, true)), /compression method 12/);
  });

  it('refuses a stored entry whose sizes disagree, or that runs into the directory', () => {
    expectFormatError(patched('params.npz', (b, v) => v.setUint32(firstIndexOfSig(b, CENTRAL) + 24, 5, true)), /declares 5 bytes/);
    expectFormatError(patched('params.npz', (b, v) => {
      const c = firstIndexOfSig(b, CENTRAL);
      v.setUint32(c + 20, 0x100000, true); v.setUint32(c + 24, 0x100000, true);
    }), /runs into the central directory/);
  });

  it('refuses a missing local header and duplicate names', () => {
    expectFormatError(patched('params.npz', (b, v) => v.setUint32(firstIndexOfSig(b, LOCAL), 0, true)), /local header/);
    expectFormatError(patched('params.npz', (b) => {
      // W_enc.npy and W_dec.npy have equal length: rename the second central entry to the first.
      const c1 = firstIndexOfSig(b, CENTRAL);
      const c2 = firstIndexOfSig(b, CENTRAL, c1 + 4);
      b.set(b.subarray(c1 + 46, c1 + 46 + 9), c2 + 46);
    }), /duplicate entry/);
  });

  it('detects corrupt data by CRC (unless asked not to)', () => {
    const corrupt = patched('params.npz', (b) => { b[firstIndexOfSig(b, LOCAL) + 30 + 9 + 20 + 130] ^= 0xff; });
    expectFormatError(corrupt, /CRC-32/, true, true);
    const zip = open(corrupt, false);
    for (const e of zip.entries.values()) zip.read(e);
  });

  it('refuses declared sizes over the caps before inflating', () => {
    const z = zipSync({ 'x.bin': [new Uint8Array(100_000), { level: 6 }] });
    const zip = ZipArchive.open(z, 'z', { ...DEFAULT_LIMITS, maxEntryBytes: 50_000 });
    expect(() => zip.read(zip.entries.get('x.bin')!)).toThrow(/over the 50000-byte limit/);
    const zip2 = ZipArchive.open(zipSync({ a: new Uint8Array(600), b: new Uint8Array(600) }), 'z', { ...DEFAULT_LIMITS, maxArchiveBytes: 1000 });
    zip2.read(zip2.entries.get('a')!);
    expect(() => zip2.read(zip2.entries.get('b')!)).toThrow(/archive total/);
  });

  it('refuses files that are not zips', () => {
    expectFormatError(new Uint8Array(10), /end-of-central-directory/);
    expectFormatError(new Uint8Array(0), /end-of-central-directory/);
  });
});
