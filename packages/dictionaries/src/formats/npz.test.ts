import { readFileSync } from 'node:fs';
import { FormatError, SfcError } from '@sfc/core';
import { describe, expect, it } from 'vitest';
import { readNpy, readNpz, type NpyArray } from './npz.js';
import type { TensorData } from './tensor-data.js';

const DIR = new URL('../../test-data/formats/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, DIR)));
interface NpExp { descr: string; shape: number[]; fortran_order: boolean; data: number[] }
const expected = JSON.parse(readFileSync(new URL('expected.json', DIR), 'utf8')).numpy as Record<string, NpExp | Record<string, NpExp>>;
const nums = (d: TensorData) => Array.from(d as ArrayLike<number | bigint>, Number);

function check(a: NpyArray, e: NpExp, what: string): void {
  expect(a.descr, what).toBe(e.descr);
  expect(a.shape, what).toEqual(e.shape);
  expect(a.fortranOrder, what).toBe(e.fortran_order);
  expect(nums(a.data), what).toEqual(e.data);
}

/** A minimal .npy file around a header text and payload. */
function npy(header: string, payload = new Uint8Array(0), version = 1): Uint8Array {
  const h = new TextEncoder().encode(header);
  const pre = version === 1 ? 10 : 12;
  const out = new Uint8Array(pre + h.length + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, h.length, true); else dv.setUint32(8, h.length, true);
  out.set(h, pre);
  out.set(payload, pre + h.length);
  return out;
}

describe('readNpy', () => {
  for (const name of ['be_f4.npy', 'be_i8.npy', 'fortran_f8.npy', 'fortran_i4_3d.npy', 'v2_header.npy', 'v3_header.npy']) {
    it(`reads ${name} exactly (byte order, fortran order, header version)`, () => {
      check(readNpy(read(name), name), expected[name] as NpExp, name);
    });
  }

  it('decodes each dtype into its documented array type', () => {
    expect(readNpy(read('be_i8.npy')).data).toBeInstanceOf(BigInt64Array);
    expect(readNpy(read('fortran_f8.npy')).data).toBeInstanceOf(Float32Array);
    expect(readNpy(read('fortran_i4_3d.npy')).data).toBeInstanceOf(Int32Array);
  });

  it('parses header literals numpy and Python 2 wrote', () => {
    const f = new Float32Array([1.5, -2]);
    const bytes = new Uint8Array(f.buffer);
    const a = readNpy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }   \n", bytes));
    expect(Array.from(a.data as Float32Array)).toEqual([1.5, -2]);
    const b = readNpy(npy('{"shape": (1, 2), "fortran_order": False, "descr": "<f4"}\n', bytes, 2));
    expect(b.shape).toEqual([1, 2]);
    const s = readNpy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': ()}", bytes.subarray(0, 4)));
    expect(s.shape).toEqual([]);
    expect(Array.from(s.data as Float32Array)).toEqual([1.5]);
  });

  it('refuses bad headers, object arrays and short data with FormatError', () => {
    const cases: [Uint8Array, RegExp][] = [
      [npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,)}"), /object array/],
      [npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}"), /structured/],
      [npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}"), /unsupported dtype/],
      [npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", new Uint8Array(8)), /needs 12 data bytes/],
      [npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}"), /fortran_order/],
      [npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}"), /shape/],
      [npy("{'descr': '<f4', 'fortran_order': False, 'shape': [1]}"), /shape/],
      [npy("{'descr': '<f4', 'fortran_order': False}"), /keys/],
      [npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}"), /keys/],
      [npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)"), /ends early|missing/],
      [npy("__import__('os').system('true')"), /unexpected/],
      [npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}"), /out-of-range/],
      [npy("{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 65536)}"), /more than|needs/],
      [npy('{}', new Uint8Array(0), 4), /version/],
      [new Uint8Array([1, 2, 3]), /magic/],
    ];
    for (const [bytes, re] of cases) {
      let err: unknown;
      try { readNpy(bytes, 'x.npy'); } catch (e) { err = e; }
      expect(err, String(re)).toBeInstanceOf(SfcError);
      expect((err as Error).message, String(re)).toMatch(re);
    }
  });

  it('honours the header size limit', () => {
    expect(() => readNpy(read('be_f4.npy'), 'x', { limits: { maxHeaderBytes: 16 } })).toThrow(FormatError);
  });
});

describe('readNpz', () => {
  for (const name of ['params.npz', 'mixed_compressed.npz', 'zip64.npz']) {
    it(`reads ${name} (${name.includes('compressed') ? 'deflated' : 'stored'} entries) exactly`, () => {
      const arrays = readNpz(read(name), name);
      const exp = expected[name] as Record<string, NpExp>;
      expect([...arrays.keys()].sort()).toEqual(Object.keys(exp).sort());
      for (const [k, e] of Object.entries(exp)) check(arrays.get(k)!, e, `${name}:${k}`);
    });
  }

  it('says when a single .npy is given instead of an archive', () => {
    let err: SfcError | undefined;
    try { readNpz(read('be_f4.npy'), 'be_f4.npy'); } catch (e) { err = e as SfcError; }
    expect(err).toBeInstanceOf(FormatError);
    expect(err!.hint).toMatch(/readNpy/);
  });

  it('caps the total element count across arrays', () => {
    expect(() => readNpz(read('params.npz'), 'p', { limits: { maxTotalElements: 200 } })).toThrow(/200-element limit/);
  });
});
