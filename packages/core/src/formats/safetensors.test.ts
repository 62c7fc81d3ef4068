import { describe, expect, it } from 'vitest';
import { encodeSafetensors, f16ToF32, SafetensorsFile } from './safetensors.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '../errors.js';
import { SafetensorsReader, withSafetensors } from './safetensors-reader.js';

function file(header: Record<string, unknown>, dataBytes: number, headerLenOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, headerLenOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

describe('SafetensorsFile', () => {
  it('round-trips what encodeSafetensors writes, header padded to 8 bytes', () => {
    const bytes = encodeSafetensors(new Map([
      ['b', { shape: [2], data: new Float32Array([3, 4]) }],
      ['a', { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }],
    ]), { format: 'pt' });
    const hl = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(hl % 8).toBe(0);
    const f = SafetensorsFile.parse(bytes);
    expect([...f.getFloat32('a')]).toEqual([1, 2, 3, 4]);
    expect([...f.getFloat32('b')]).toEqual([3, 4]);
    expect(f.metadata).toEqual({ format: 'pt' });
  });

  it('getFloat32View: an aligned F32 tensor is a view of the file bytes; otherwise a copy as getFloat32', () => {
    const bytes = encodeSafetensors(new Map([['w', { shape: [3], data: new Float32Array([1, 2, 3]) }]]));
    const view = SafetensorsFile.parse(bytes).getFloat32View('w');
    expect([...view]).toEqual([1, 2, 3]);
    expect(view.buffer).toBe(bytes.buffer); // no copy
    const copy = SafetensorsFile.parse(bytes).getFloat32('w');
    expect(copy.buffer).not.toBe(bytes.buffer);
    // The same file one byte into a larger buffer: F32 data is no longer 4-byte aligned.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const moved = SafetensorsFile.parse(shifted.subarray(1)).getFloat32View('w');
    expect([...moved]).toEqual([1, 2, 3]);
    expect(moved.buffer).not.toBe(shifted.buffer);
  });

  it('converts F16 and BF16 exactly', () => {
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7bff, 0x7c00]);
    expect([...f16ToF32(f16)]).toEqual([1, -2, 2 ** -24, 65504, Infinity]);
    const bf = new Uint16Array([0x3f80, 0xc040]); // 1, -3
    const bytes = file({ x: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] } }, 4);
    bytes.set(new Uint8Array(bf.buffer), bytes.length - 4);
    expect([...SafetensorsFile.parse(bytes).getFloat32('x')]).toEqual([1, -3]);
  });

  const cases: [string, () => Uint8Array, RegExp][] = [
    ['too short', () => new Uint8Array(4), /shorter than the 8-byte/],
    ['header too large', () => file({}, 0, 200_000_000n), /exceeds/],
    ['header past end', () => file({}, 0, 1000n), /past the end/],
    ['not JSON', () => { const b = file({}, 0); b[8] = 0x7b; b[9] = 0x7b; return b; }, /not valid UTF-8 JSON/],
    ['unknown dtype', () => file({ x: { dtype: 'Q8', shape: [1], data_offsets: [0, 1] } }, 1), /unsupported dtype/],
    ['wrong dtype size', () => file({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4), /needs 8 bytes/],
    ['overlap', () => file({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /overlaps/],
    ['out of range', () => file({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), /past the data area/],
    ['gap', () => file({ x: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /gap of 4 bytes/],
    ['trailing bytes', () => file({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 8), /trailing bytes/],
    ['negative shape', () => file({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }, 0), /invalid shape/],
    ['absurd shape', () => file({ x: { dtype: 'F32', shape: [1e9, 1e9], data_offsets: [0, 4] } }, 4), /element limit/],
  ];
  for (const [name, make, re] of cases) {
    it(`refuses ${name} with a FormatError`, () => {
      let err: unknown;
      try { SafetensorsFile.parse(make(), 'm.safetensors'); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(FormatError);
      expect((err as Error).message).toMatch(re);
      expect((err as FormatError).hint).toBeTruthy();
    });
  }
});

describe('SafetensorsFile: crafted headers and values (issue 16)', () => {
  it('names an inherited property used as a dtype as unsupported (not "needs NaN bytes")', () => {
    for (const dtype of ['__proto__', 'constructor', 'toString']) {
      expect(() => SafetensorsFile.parse(file({ w: { dtype, shape: [1], data_offsets: [0, 4] } }, 4)))
        .toThrow(new RegExp(`tensor 'w' has unsupported dtype '${dtype}'`));
    }
  });

  it('quotes tensor names: control characters escaped, long names cut', () => {
    const name = `w\x1b]0;owned\x07${'n'.repeat(100_000)}`;
    let err: unknown;
    try { SafetensorsFile.parse(file({ [name]: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4)); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).not.toMatch(/[\x00-\x1f]/);
    expect((err as Error).message.length).toBeLessThan(500);
  });

  it('refuses NaN and ±Inf weights when they are read, naming the tensor', () => {
    const bytes = encodeSafetensors(new Map([['ok', { shape: [2], data: new Float32Array([1, 2]) }], ['bad', { shape: [3], data: new Float32Array([1, NaN, -Infinity]) }]]));
    const f = SafetensorsFile.parse(bytes);
    expect([...f.getFloat32('ok')]).toEqual([1, 2]);
    expect(() => f.getFloat32('bad')).toThrow(/tensor 'bad' holds 2 non-finite values \(the first, NaN, at flat index 1\)/);
    expect(() => f.getFloat32View('bad')).toThrow(FormatError);
  });
});

describe('SafetensorsReader (by offset)', () => {
  it('reads what SafetensorsFile reads, and refuses the same headers', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfc-st-'));
    try {
      const path = join(dir, 'w.safetensors');
      writeFileSync(path, encodeSafetensors(new Map([['a', { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }], ['b', { shape: [1], data: new Float32Array([5]) }]]), { format: 'pt' }));
      const read = withSafetensors(path, (f) => ({ a: [...f.getFloat32('a')], b: [...f.getFloat32View('b')], meta: f.metadata, has: f.has('c') }));
      expect(read).toEqual({ a: [1, 2, 3, 4], b: [5], meta: { format: 'pt' }, has: false });
      writeFileSync(path, file({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4));
      expect(() => SafetensorsReader.open(path)).toThrow(/tensor 'w' ends at byte 8, past the data area \(4 bytes\)/);
      writeFileSync(path, new Uint8Array(3));
      expect(() => SafetensorsReader.open(path)).toThrow(/shorter than the 8-byte header length/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
