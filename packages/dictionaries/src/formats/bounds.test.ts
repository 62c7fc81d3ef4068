// Resource bounds of the binary readers against crafted files (issue 16): aliased storages,
// deflate streams longer than their declared size, files over 2 GiB read by offset, and
// file-derived names in messages.

import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, zipSync } from 'fflate';
import { FormatError, SecurityError, ShapeError, SfcError } from '@sfc/core';
import { afterAll, describe, expect, it } from 'vitest';
import { withFileSource } from './byte-source.js';
import { readNpz } from './npz.js';
import { isDenseTensor, readTorchCheckpoint, stateDict } from './torch-checkpoint.js';
import { crc32 } from './zip.js';

// ------------------------------------------------------------------ builders

const enc = new TextEncoder();
const u32le = (v: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v, true); return [...b]; };
const i32le = (v: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setInt32(0, v, true); return [...b]; };
const str = (s: string) => { const b = enc.encode(s); return [0x58, ...u32le(b.length), ...b]; }; // BINUNICODE
const int = (v: number) => [0x4a, ...i32le(v)]; // BININT
const global = (m: string, n: string) => [0x63, ...enc.encode(`${m}\n${n}\n`)]; // GLOBAL
const tuple = (...items: number[][]) => [0x28, ...items.flat(), 0x74]; // MARK … TUPLE

interface View { name: string; offset: number; shape: number[]; strides: number[] }

/** data.pkl of `{name: tensor}` with every tensor a view of float32 storage '0' of `numel` elements. */
function aliasPickle(numel: number, views: readonly View[]): Uint8Array {
  const out = [0x80, 2, 0x7d, 0x28];
  for (const v of views) {
    out.push(...str(v.name), ...global('torch._utils', '_rebuild_tensor_v2'));
    const pid = tuple(str('storage'), global('torch', 'FloatStorage'), str('0'), str('cpu'), int(numel));
    out.push(...tuple([...pid, 0x51], int(v.offset), tuple(...v.shape.map(int)), tuple(...v.strides.map(int)), [0x89],
      [...global('collections', 'OrderedDict'), 0x29, 0x52]), 0x52);
  }
  out.push(0x75, 0x2e);
  return Uint8Array.from(out);
}

function checkpoint(pkl: Uint8Array, storage: Uint8Array): Uint8Array {
  return zipSync({ 'archive/data.pkl': [pkl, { level: 0 }], 'archive/data/0': [storage, { level: 9 }] });
}

interface RawEntry { name: string; data: Uint8Array; method: 0 | 8; size: number; crc: number }

/** A zip whose entries' declared sizes and CRCs are given as is (to lie about them). */
function rawZip(entries: readonly RawEntry[]): Uint8Array {
  const parts: number[][] = [];
  const central: number[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = enc.encode(e.name);
    const local = [...u32le(0x04034b50), 20, 0, 0, 0, e.method, 0, 0, 0, 0, 0, ...u32le(e.crc), ...u32le(e.data.length), ...u32le(e.size),
      name.length, 0, 0, 0, ...name];
    central.push(...u32le(0x02014b50), 20, 0, 20, 0, 0, 0, e.method, 0, 0, 0, 0, 0, ...u32le(e.crc), ...u32le(e.data.length), ...u32le(e.size),
      name.length, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...u32le(offset), ...name);
    parts.push(local, [...e.data]);
    offset += local.length + e.data.length;
  }
  const eocd = [...u32le(0x06054b50), 0, 0, 0, 0, entries.length, 0, entries.length, 0, ...u32le(central.length), ...u32le(offset), 0, 0];
  return Uint8Array.from([...parts.flat(), ...central, ...eocd]);
}

const errorOf = (f: () => unknown): SfcError => {
  try { f(); } catch (e) { if (e instanceof SfcError) return e; throw e; }
  throw new Error('expected an SfcError');
};

// ------------------------------------------------------------------ aliased storages (item 4)

describe('aliased storages', () => {
  const numel = 1 << 20; // 4 MiB of zeros, a few KiB deflated
  const storage = new Uint8Array(numel * 4);

  it('identical views of one storage share one array, and count once against the element caps', () => {
    const views = Array.from({ length: 200 }, (_, i) => ({ name: `w${i}`, offset: 0, shape: [numel], strides: [1] }));
    const bytes = checkpoint(aliasPickle(numel, views), storage);
    expect(bytes.byteLength).toBeLessThan(64 * 1024);
    // 200 copies would be 200 Mi elements (800 MB); the cap here allows 4 of them.
    const root = readTorchCheckpoint(bytes, 'aliases.pt', { limits: { maxTotalElements: 4 * numel } }) as Map<string, unknown>;
    const first = root.get('w0'), last = root.get('w199');
    if (!isDenseTensor(first) || !isDenseTensor(last)) throw new Error('not tensors');
    expect(last.data).toBe(first.data);
    const sd = stateDict(root);
    expect(sd.size).toBe(200);
    expect(sd.get('w7')!.data).toBe(sd.get('w0')!.data);
  });

  it('refuses distinct views that add up to far more than their storage', () => {
    // 64 overlapping views of nearly the whole storage: 64 Mi elements from a 1 Mi-element storage.
    const views = Array.from({ length: 64 }, (_, i) => ({ name: `v${i}`, offset: i, shape: [numel - 64], strides: [1] }));
    const err = errorOf(() => readTorchCheckpoint(checkpoint(aliasPickle(numel, views), storage), 'overlap.pt'));
    expect(err).toBeInstanceOf(ShapeError);
    expect(err.message).toMatch(/distinct tensors viewing this storage add up to \d+ elements, more than 2× its 1048576; views in this file exceed/);
  });

  it('counts expanded views against one allowance per file, not one per storage', () => {
    // 64 one-element storages, each viewed as 2^20 elements with stride 0: 64 Mi elements from 256 bytes.
    const out = [0x80, 2, 0x7d, 0x28];
    for (let i = 0; i < 64; i++) {
      out.push(...str(`e${i}`), ...global('torch._utils', '_rebuild_tensor_v2'));
      const pid = tuple(str('storage'), global('torch', 'FloatStorage'), str(String(i)), str('cpu'), int(1));
      out.push(...tuple([...pid, 0x51], int(0), tuple(int(1 << 20)), tuple(int(0)), [0x89], [...global('collections', 'OrderedDict'), 0x29, 0x52]), 0x52);
    }
    out.push(0x75, 0x2e);
    const files: Record<string, [Uint8Array, { level: 0 }]> = { 'archive/data.pkl': [Uint8Array.from(out), { level: 0 }] };
    for (let i = 0; i < 64; i++) files[`archive/data/${i}`] = [new Uint8Array(4), { level: 0 }];
    const err = errorOf(() => readTorchCheckpoint(zipSync(files), 'expanded.pt'));
    expect(err).toBeInstanceOf(ShapeError);
    expect(err.message).toMatch(/over the 16777216-element limit for expanded views/);
  });

  it('reads a tensor and its transpose on one storage (tied weights)', () => {
    const views = [{ name: 'W', offset: 0, shape: [1024, 1024], strides: [1024, 1] }, { name: 'WT', offset: 0, shape: [1024, 1024], strides: [1, 1024] }];
    const root = readTorchCheckpoint(checkpoint(aliasPickle(numel, views), storage), 'tied.pt') as Map<string, unknown>;
    expect(root.size).toBe(2);
  });

  it('still reads disjoint views of one storage (slices of a flat buffer)', () => {
    const views = Array.from({ length: 4 }, (_, i) => ({ name: `s${i}`, offset: i * (numel / 4), shape: [numel / 4], strides: [1] }));
    const root = readTorchCheckpoint(checkpoint(aliasPickle(numel, views), storage), 'slices.pt') as Map<string, unknown>;
    expect(root.size).toBe(4);
  });

  it('names a storage offset that is not an integer by its value', () => {
    const pkl = aliasPickle(4, [{ name: 'w', offset: 0, shape: [2], strides: [1] }]);
    // BININT 0 → BININT -1 for the offset (the first BININT after the persistent id).
    const bytes = pkl.slice();
    const at = bytes.indexOf(0x51) + 1;
    expect(bytes[at]).toBe(0x4a);
    new DataView(bytes.buffer).setInt32(at + 1, -1, true);
    const err = errorOf(() => readTorchCheckpoint(checkpoint(bytes, new Uint8Array(16)), 'neg.pt'));
    expect(err.message).toContain('storage offset is -1, not a non-negative integer');
  });
});

// ------------------------------------------------------------------ decompression bound (item 5)

describe('deflate streams are bounded by the declared size', () => {
  it('refuses an entry whose stream inflates past its declared size, without inflating it all', () => {
    const pkl = aliasPickle(4, [{ name: 'w', offset: 0, shape: [4], strides: [1] }]);
    // The real pickle followed by 32 MiB of zeros, declared as only the pickle's length and CRC.
    const long = new Uint8Array(pkl.length + (32 << 20));
    long.set(pkl);
    const bomb = rawZip([
      { name: 'archive/data.pkl', data: deflateSync(long, { level: 9 }), method: 8, size: pkl.length, crc: crc32(pkl) },
      { name: 'archive/data/0', data: new Uint8Array(16), method: 0, size: 16, crc: crc32(new Uint8Array(16)) },
    ]);
    const err = errorOf(() => readTorchCheckpoint(bomb, 'bomb.pt'));
    expect(err).toBeInstanceOf(FormatError);
    expect(err.message).toContain(`inflates to more than its declared ${pkl.length} bytes`);
  });

  it('still reads an honest deflated entry', () => {
    const pkl = aliasPickle(4, [{ name: 'w', offset: 0, shape: [4], strides: [1] }]);
    const ok = rawZip([
      { name: 'archive/data.pkl', data: deflateSync(pkl), method: 8, size: pkl.length, crc: crc32(pkl) },
      { name: 'archive/data/0', data: new Uint8Array(16), method: 0, size: 16, crc: crc32(new Uint8Array(16)) },
    ]);
    expect((readTorchCheckpoint(ok, 'ok.pt') as Map<string, unknown>).has('w')).toBe(true);
  });

  it('refuses a stream that ends before the declared size', () => {
    const pkl = aliasPickle(4, [{ name: 'w', offset: 0, shape: [4], strides: [1] }]);
    const short = rawZip([{ name: 'archive/data.pkl', data: deflateSync(pkl), method: 8, size: pkl.length + 10, crc: 0 }]);
    expect(errorOf(() => readTorchCheckpoint(short, 'short.pt')).message).toContain(`inflates to ${pkl.length} bytes, not the declared ${pkl.length + 10}`);
  });
});

// ------------------------------------------------------------------ files over 2 GiB (item 11)

describe('files over 2 GiB are read by offset', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sfc-big-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * A sparse file: `head` (a zip's entries up to a 2.5 GiB stored entry of zeros that is never
   * read), then the hole, then `tail` (the central directory). Takes no disk space.
   */
  function sparseZip(name: string, small: Record<string, Uint8Array>): string {
    const bigSize = 2.5 * 2 ** 30;
    const entries = Object.entries(small).map(([n, d]) => ({ name: n, data: d, method: 0 as const, size: d.length, crc: crc32(d) }));
    const head = rawZip(entries);
    // Rebuild with the big entry: local headers of the small ones, the big one's header, a hole, then the directory.
    const body = head.subarray(0, head.length - 22 - centralSize(entries));
    const bigName = enc.encode('archive/extra/big');
    const bigLocal = Uint8Array.from([...u32le(0x04034b50), 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...u32le(0), ...u32le(bigSize), ...u32le(bigSize),
      bigName.length, 0, 0, 0, ...bigName]);
    const bigOffset = body.length;
    const cdOffset = bigOffset + bigLocal.length + bigSize;
    const central: number[] = [];
    let offset = 0;
    for (const e of [...entries, { name: 'archive/extra/big', data: { length: bigSize }, size: bigSize, crc: 0 }]) {
      const nb = enc.encode(e.name);
      const local = e.name === 'archive/extra/big' ? bigOffset : offset;
      central.push(...u32le(0x02014b50), 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...u32le(e.crc), ...u32le(e.data.length), ...u32le(e.size),
        nb.length, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...u32le(local), ...nb);
      offset += 30 + nb.length + e.data.length;
    }
    const n = entries.length + 1;
    const eocd = [...u32le(0x06054b50), 0, 0, 0, 0, n, 0, n, 0, ...u32le(central.length), ...u32le(cdOffset), 0, 0];
    const path = join(dir, name);
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, body, 0, body.length, 0);
      writeSync(fd, bigLocal, 0, bigLocal.length, bigOffset);
      const tail = Uint8Array.from([...central, ...eocd]);
      writeSync(fd, tail, 0, tail.length, cdOffset);
    } finally {
      closeSync(fd);
    }
    return path;
  }
  function centralSize(entries: readonly { name: string }[]): number {
    return entries.reduce((a, e) => a + 46 + enc.encode(e.name).length, 0);
  }

  it('reads a 2.5 GiB torch checkpoint, taking only the records it needs', () => {
    const pkl = aliasPickle(4, [{ name: 'w', offset: 0, shape: [4], strides: [1] }]);
    const path = sparseZip('ae.pt', { 'archive/data.pkl': pkl, 'archive/data/0': new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer) });
    const root = withFileSource(path, (src) => readTorchCheckpoint(src, path)) as Map<string, unknown>;
    const w = root.get('w');
    if (!isDenseTensor(w)) throw new Error('not a tensor');
    expect([...w.data]).toEqual([1, 2, 3, 4]);
  });

  it('reads an .npz over 2 GiB by offset', () => {
    const npy = (() => {
      const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
      const pad = 64 - ((10 + header.length + 1) % 64);
      const h = enc.encode(header + ' '.repeat(pad) + '\n');
      return Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length & 0xff, h.length >> 8, ...h, ...new Uint8Array(new Float32Array([5, 6]).buffer)]);
    })();
    const path = sparseZip('params.npz', { 'W_enc.npy': npy });
    const arrays = withFileSource(path, (src) => readNpz(src, path));
    expect([...arrays.get('W_enc')!.data]).toEqual([5, 6]);
  });
});

// ------------------------------------------------------------------ names in messages (item 9)

describe('file-derived names in messages', () => {
  it('escapes terminal control sequences in pickle global names and caps their length', () => {
    const evil = `os\x1b]0;owned\x07${'A'.repeat(100_000)}`;
    const pkl = Uint8Array.from([0x80, 2, ...str(evil), ...str('system'), 0x93, 0x2e]);
    const err = errorOf(() => readTorchCheckpoint(checkpoint(pkl, new Uint8Array(0)), 'evil.pt'));
    expect(err).toBeInstanceOf(SecurityError);
    expect(err.message).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
    expect(err.message).toContain('\\x1b]0;owned\\x07');
    expect(err.message.length).toBeLessThan(500);
  });

  it('escapes zip entry names', () => {
    const bytes = zipSync({ 'x\x1b[2Jdata.pkl': new Uint8Array(1) });
    const err = errorOf(() => readTorchCheckpoint(bytes, 'names.pt'));
    expect(err.message + (err.hint ?? '')).not.toMatch(/\x1b/);
  });
});
