// Deterministic mutation fuzzing of every binary reader: each mutated input must either be read
// or be refused with an SfcError (FormatError / SecurityError / ShapeError) — never another
// exception type, never a hang, never more than MEMORY_BOUND allocated by one case. The default
// run does 2,000 cases per format; set SFC_FUZZ_CASES=50000 (and optionally SFC_FUZZ_SEED) for a
// long run. The harness lives in @sfc/core/testing (fuzz.ts); JSON inputs are fuzzed in core.

import { readFileSync } from 'node:fs';
import { zipSync, type Zippable } from 'fflate';
import { encodeSafetensors, SafetensorsFile } from '@sfc/core';
import { fuzz, fuzzSummary, INTERESTING_U32, mutateBytes, mutateDigits, type FuzzResult, type Rng } from '@sfc/core/testing';
import { describe, expect, it } from 'vitest';
import { readFcCircuit } from './fc-circuit.js';
import { readNpy, readNpz } from './npz.js';
import { readTorchCheckpoint, stateDict } from './torch-checkpoint.js';
import { DEFAULT_LIMITS } from './limits.js';
import { ZipArchive } from './zip.js';

const CASES = Number(process.env.SFC_FUZZ_CASES ?? 2000);
const SEED = Number(process.env.SFC_FUZZ_SEED ?? 20240601);
/** Most memory one case may allocate: far above any valid test file, far below a crafted file's ask. */
const MEMORY_BOUND = 256 * 2 ** 20;
const DIR = new URL('../../test-data/formats/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, DIR)));

/** Rewrites one zip header field (sizes, offsets, counts, lengths, method, flags). */
function mutateZipField(r: Rng, base: Uint8Array): Uint8Array {
  const b = base.slice();
  const v = new DataView(b.buffer);
  const sites: [number, 2 | 4 | 8][] = [];
  for (let p = 0; p + 4 <= b.length; p++) {
    const sig = v.getUint32(p, true);
    if (sig === 0x02014b50) for (const [o, w] of [[8, 2], [10, 2], [20, 4], [24, 4], [28, 2], [30, 2], [32, 2], [42, 4]] as const) sites.push([p + o, w]);
    else if (sig === 0x04034b50) for (const [o, w] of [[18, 4], [22, 4], [26, 2], [28, 2]] as const) sites.push([p + o, w]);
    else if (sig === 0x06054b50) for (const [o, w] of [[8, 2], [10, 2], [12, 4], [16, 4], [20, 2]] as const) sites.push([p + o, w]);
    else if (sig === 0x06064b50) for (const [o, w] of [[24, 8], [32, 8], [40, 8], [48, 8]] as const) sites.push([p + o, w]);
    else if (sig === 0x07064b50) sites.push([p + 8, 8]);
  }
  const valid = sites.filter(([p, w]) => p + w <= b.length);
  if (!valid.length) return mutateBytes(r, base);
  const [at, w] = r.pick(valid);
  const old = w === 2 ? v.getUint16(at, true) : w === 4 ? v.getUint32(at, true) : Number(v.getBigUint64(at, true));
  const val = r.next() < 0.5 ? r.pick(INTERESTING_U32) : Math.max(0, old + r.int(65) - 32);
  if (w === 2) v.setUint16(at, val & 0xffff, true);
  else if (w === 4) v.setUint32(at, val >>> 0, true);
  else v.setBigUint64(at, r.next() < 0.2 ? 0xffffffffffffffffn : BigInt(val), true);
  return b;
}

function replaceBytes(base: Uint8Array, start: number, end: number, repl: Uint8Array): Uint8Array {
  const b = new Uint8Array(base.length - (end - start) + repl.length);
  b.set(base.subarray(0, start));
  b.set(repl, start);
  b.set(base.subarray(end), start + repl.length);
  return b;
}

// ------------------------------------------------------------------ harness

/** Every case is read or refused with an SfcError, in bounded time and memory. */
function report(res: FuzzResult): void {
  console.info(fuzzSummary(res)); // visible in the test output so the budgets can be watched
  expect(res.failures.slice(0, 5)).toEqual([]);
  expect(res.slowest).toBeLessThan(5_000);
  expect(res.maxMemory).toBeLessThan(MEMORY_BOUND);
}

/** The entries of a (valid) zip in order, for mutating one and re-zipping with correct CRCs. */
function entriesOf(bytes: Uint8Array): [string, Uint8Array, 0 | 8][] {
  const zip = ZipArchive.open(bytes, 'base', DEFAULT_LIMITS);
  return [...zip.entries.values()].map((e) => [e.name, zip.read(e).slice(), e.method]);
}

function rezip(entries: [string, Uint8Array, 0 | 8][]): Uint8Array {
  const z: Zippable = {};
  for (const [name, data, method] of entries) z[name] = [data, { level: method === 8 ? 6 : 0 }];
  return zipSync(z);
}

const PICKLE_OPS = [0x28, 0x2e, 0x30, 0x31, 0x32, 0x4b, 0x4d, 0x4a, 0x4e, 0x51, 0x52, 0x58, 0x5d, 0x61, 0x62, 0x63, 0x65, 0x68, 0x71,
  0x73, 0x74, 0x75, 0x7d, 0x29, 0x80, 0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x93, 0x94, 0x95];

function mutatePickle(r: Rng, pkl: Uint8Array): Uint8Array {
  if (r.next() < 0.1) { // a random opcode stream with random argument bytes
    const out = [0x80, 2];
    for (let k = 2 + r.int(40); k > 0; k--) {
      out.push(r.pick(PICKLE_OPS));
      for (let a = r.int(5); a > 0; a--) out.push(r.next() < 0.5 ? r.int(4) : r.int(256));
    }
    out.push(0x2e);
    return Uint8Array.from(out);
  }
  if (r.next() < 0.35) { // swap in a random opcode, or a random small int argument
    const b = pkl.slice();
    for (let k = 1 + r.int(3); k > 0; k--) b[r.int(b.length)] = r.next() < 0.6 ? r.pick(PICKLE_OPS) : r.int(256);
    return b;
  }
  return mutateBytes(r, pkl);
}

describe(`fuzz (${CASES} cases per format, seed ${SEED})`, () => {
  it('the harness reports exceptions that are not SfcErrors', () => {
    const res = fuzz('meta', 3, 1, (r) => ({ strategy: 'x', run: () => { if (r.int(1) === 0) throw new TypeError('boom'); } }));
    expect(res.failures.map((f) => f.error.split('\n')[0])).toEqual(['TypeError: boom', 'TypeError: boom', 'TypeError: boom']);
  });

  it('torch .pt checkpoints and feature-circuits circuits', () => {
    const bases = ['tensors.pt', 'sparse.pt', 'backup.pt', 'circuit.pt', 'bigendian.pt', 'proto4.pt', 'ae.pt'].map((n) => ({ n, b: read(n), e: entriesOf(read(n)) }));
    const res = fuzz('torch .pt', CASES, SEED, (r) => {
      const base = r.pick(bases);
      const mode = r.int(10);
      let bytes: Uint8Array, strategy: string;
      if (mode < 3) { bytes = mutateBytes(r, base.b); strategy = 'bytes'; }
      else if (mode < 5) { bytes = mutateZipField(r, base.b); strategy = 'zip field'; }
      else {
        // Mutate one record (mostly data.pkl) and re-zip with valid CRCs, so the pickle and
        // tensor code is reached rather than stopped by the CRC check.
        const entries = base.e.map(([n, d, m]) => [n, d, m] as [string, Uint8Array, 0 | 8]);
        const pklIdx = entries.findIndex(([n]) => n.endsWith('data.pkl'));
        const idx = r.next() < 0.8 ? pklIdx : r.int(entries.length);
        entries[idx] = [entries[idx]![0], idx === pklIdx ? mutatePickle(r, entries[idx]![1]) : mutateBytes(r, entries[idx]![1]), entries[idx]![2]];
        bytes = rezip(entries);
        strategy = `record ${entries[idx]![0]}`;
      }
      const verifyCrc = r.next() < 0.5;
      return {
        strategy: `${base.n} ${strategy}`,
        run: () => {
          if (base.n === 'circuit.pt' && r.next() < 0.5) { readFcCircuit(bytes, 'fuzz', { verifyCrc, maxDenseElements: 1 << 20 }); return; }
          const root = readTorchCheckpoint(bytes, 'fuzz', { verifyCrc });
          stateDict(root, { maxDenseElements: 1 << 20 });
        },
      };
    });
    report(res);
  });

  it('safetensors (core SafetensorsFile.parse)', () => {
    const f = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => (i - k) / 8);
    const a = encodeSafetensors(new Map([
      ['encoder.weight', { shape: [4, 3], data: f(12, 5) }], ['encoder.bias', { shape: [4], data: f(4, 1) }],
      ['scalar', { shape: [], data: f(1, 0) }], ['empty', { shape: [0, 2], data: f(0, 0) }],
    ]), { format: 'pt' });
    // A hand-written F16/BF16/I64 file, as other writers produce.
    const hdr = JSON.stringify({ h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] }, b: { dtype: 'BF16', shape: [2], data_offsets: [4, 8] },
      i: { dtype: 'I64', shape: [1], data_offsets: [8, 16] } });
    const hb = new TextEncoder().encode(hdr);
    const bb = new Uint8Array(8 + hb.length + 16);
    new DataView(bb.buffer).setBigUint64(0, BigInt(hb.length), true);
    bb.set(hb, 8);
    bb.set([0x00, 0x3c, 0x00, 0xc0, 0x80, 0x3f, 0x00, 0xc0, 5, 0, 0, 0, 0, 0, 0, 0], 8 + hb.length);
    const bases = [a, bb];
    const res = fuzz('safetensors', CASES, SEED + 1, (r) => {
      const base = r.pick(bases);
      const mode = r.int(10);
      let bytes: Uint8Array;
      if (mode < 5) bytes = mutateBytes(r, base);
      else if (mode < 7) { // header length field
        bytes = base.slice();
        const v = new DataView(bytes.buffer);
        const old = Number(v.getBigUint64(0, true));
        v.setBigUint64(0, r.next() < 0.3 ? BigInt(r.pick(INTERESTING_U32)) * (r.next() < 0.2 ? 0x100000000n : 1n) : BigInt(Math.max(0, old + r.int(41) - 20)), true);
      } else { // header JSON: numbers, dtypes
        const hl = Number(new DataView(base.buffer, base.byteOffset).getBigUint64(0, true));
        let text = new TextDecoder().decode(base.subarray(8, 8 + hl));
        text = r.next() < 0.7 ? mutateDigits(r, text) : text.replace(/"(F32|F16|BF16|I64)"/, `"${r.pick(['F64', 'I8', 'U8', 'BOOL', 'F32', 'X9', 'I32'])}"`);
        const tb = new TextEncoder().encode(text);
        bytes = replaceBytes(base, 8, 8 + hl, tb);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(tb.length), true);
      }
      return {
        strategy: `mode ${mode}`,
        run: () => {
          const file = SafetensorsFile.parse(bytes, 'fuzz');
          for (const [name, e] of file.entries) if (['F32', 'F16', 'BF16', 'F64'].includes(e.dtype)) file.getFloat32(name);
        },
      };
    });
    report(res);
  });

  it('npy arrays and npz archives', () => {
    const npys = ['be_f4.npy', 'be_i8.npy', 'fortran_f8.npy', 'fortran_i4_3d.npy', 'v2_header.npy', 'v3_header.npy'].map(read);
    const npzs = ['params.npz', 'mixed_compressed.npz', 'zip64.npz'].map((n) => ({ b: read(n), e: entriesOf(read(n)) }));
    const mutateNpy = (r: Rng, base: Uint8Array): Uint8Array => {
      const mode = r.int(10);
      if (mode < 4) return mutateBytes(r, base);
      const major = base[6]!;
      const pre = major === 1 ? 10 : 12;
      const view = new DataView(base.buffer, base.byteOffset, base.byteLength);
      const hl = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
      if (mode < 6) { // header length field
        const b = base.slice();
        const v = new DataView(b.buffer);
        const val = r.next() < 0.5 ? r.pick(INTERESTING_U32) : Math.max(0, hl + r.int(21) - 10);
        if (major === 1) v.setUint16(8, val & 0xffff, true); else v.setUint32(8, val >>> 0, true);
        return b;
      }
      // header text: shape digits, dtype, fortran flag; header length kept consistent
      let text = new TextDecoder('latin1').decode(base.subarray(pre, pre + hl));
      const k = r.int(3);
      if (k === 0) text = mutateDigits(r, text);
      else if (k === 1) text = text.replace(/'[<>|=][a-z]\d'/, `'${r.pick(['<', '>', '|', '='])}${r.pick(['f', 'i', 'u', 'b', 'c', 'O', 'U'])}${r.pick(['1', '2', '4', '8', '16'])}'`);
      else text = text.includes('False') ? text.replace('False', 'True') : text.replace('True', 'False');
      const tb = Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
      const b = replaceBytes(base, pre, pre + hl, tb);
      const v = new DataView(b.buffer);
      if (major === 1) v.setUint16(8, tb.length & 0xffff, true); else v.setUint32(8, tb.length, true);
      return b;
    };
    const res = fuzz('npy/npz', CASES, SEED + 2, (r) => {
      if (r.next() < 0.4) {
        const bytes = mutateNpy(r, r.pick(npys));
        return { strategy: 'npy', run: () => { readNpy(bytes, 'fuzz'); } };
      }
      const base = r.pick(npzs);
      const mode = r.int(10);
      let bytes: Uint8Array;
      if (mode < 3) bytes = mutateBytes(r, base.b);
      else if (mode < 6) bytes = mutateZipField(r, base.b);
      else {
        const entries = base.e.map(([n, d, m]) => [n, d, m] as [string, Uint8Array, 0 | 8]);
        const idx = r.int(entries.length);
        entries[idx] = [entries[idx]![0], mutateNpy(r, entries[idx]![1]), entries[idx]![2]];
        bytes = rezip(entries);
      }
      const verifyCrc = r.next() < 0.5;
      return { strategy: `npz mode ${mode}`, run: () => { readNpz(bytes, 'fuzz', { verifyCrc }); } };
    });
    report(res);
  });
});
