import { describe, expect, it } from 'vitest';
import { bf16ToF32, f32ToBf16 } from '../formats/safetensors.js';
import { bf16ToScaledF16, storedWeight, widenWeight } from './half-weights.js';

/** bf16 words of values drawn from N(0, std²), with a few tiny ones fp16 alone cannot hold. */
function bf16Words(n: number, std: number, seed = 1): Uint16Array {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) + 0.5) / 2 ** 32;
  const v = Float32Array.from({ length: n }, () => std * Math.sqrt(-2 * Math.log(rnd())) * Math.cos(2 * Math.PI * rnd()));
  v[0] = 3e-7; v[1] = -1.5e-6; v[2] = 0; // below fp16's normal range (2^-14 ≈ 6.1e-5)
  return f32ToBf16(v);
}

describe('bf16ToScaledF16', () => {
  it('holds every value exactly as fp16 · a power of two when the exponents fit', () => {
    const words = bf16Words(20000, 0.02);
    const half = bf16ToScaledF16(words)!;
    expect(half).toBeDefined();
    expect(Number.isInteger(Math.log2(half.scale))).toBe(true);
    expect(widenWeight({ shape: [words.length], dtype: 'float16', data: half.f16, scale: half.scale }).data).toEqual(bf16ToF32(words));
  });

  it('gives up when the tensor spans more orders of magnitude than fp16 holds exactly', () => {
    const words = f32ToBf16(Float32Array.from([1e4, 1e-9]));
    expect(bf16ToScaledF16(words)).toBeUndefined();
    // …and the stored weight is then float32, with the very same values.
    const told: number[] = [];
    const w = storedWeight([2], 'BF16', words, (bytes) => told.push(bytes));
    expect(told).toEqual([8]);
    expect('dtype' in w).toBe(false);
    expect(w.data).toEqual(bf16ToF32(words));
  });

  it('keeps F16 words as they are, and ±∞ when no scale is needed', () => {
    const f16 = Uint16Array.from([0x3c00, 0x7c00, 0x8001]);
    expect(storedWeight([3], 'F16', f16)).toEqual({ shape: [3], dtype: 'float16', data: f16, scale: 1 });
    const special = f32ToBf16(Float32Array.from([Infinity, 32768]));
    expect(bf16ToScaledF16(special)!.scale).toBe(1);
  });
});

describe('scaled fp16 at the edges of its range', () => {
  it('holds values down to fp16 subnormals exactly and refuses the ones it would round', () => {
    // With 2^15 the largest, fp16 holds 2^15 … 2^-24: 2^-24 is its smallest subnormal.
    const ok = f32ToBf16(Float32Array.from([2 ** 15, 2 ** -24, -3 * 2 ** -23, 0, -0]));
    const half = bf16ToScaledF16(ok)!;
    expect(half.scale).toBe(1);
    expect(widenWeight({ shape: [5], dtype: 'float16', data: half.f16, scale: 1 }).data).toEqual(bf16ToF32(ok));
    // 1.5 · 2^-24 needs one more bit than an fp16 subnormal has there.
    expect(bf16ToScaledF16(f32ToBf16(Float32Array.from([2 ** 15, 1.5 * 2 ** -24])))).toBeUndefined();
    // A bf16 subnormal is never exact in fp16.
    expect(bf16ToScaledF16(Uint16Array.from([0x3f80, 0x0001]))).toBeUndefined();
  });
});

describe('long tensors (converted through a table of every word)', () => {
  // Exact in fp16 with 2^15 its largest value (scale 1): zero, normal values, and subnormals that
  // are whole multiples of 2^-24. An oracle independent of the conversion's own bit twiddling.
  const exact = (v: number) => v === 0 || (Math.abs(v) >= 2 ** -14 || Number.isInteger(Math.abs(v) / 2 ** -24));
  const finite = Array.from({ length: 1 << 16 }, (_, w) => w).filter((w) => {
    const v = bf16ToF32(Uint16Array.of(w))[0]!;
    return Number.isFinite(v) && Math.abs(v) <= 2 ** 15 * (2 - 2 ** -7) && !((w & 0x7f80) === 0 && (w & 0x7f) !== 0);
  });

  it('converts every word fp16 holds exactly, with the values it had', () => {
    const ok = finite.filter((w) => exact(bf16ToF32(Uint16Array.of(w))[0]!));
    const words = Uint16Array.from([0x4700, ...Array.from({ length: 8 }, () => ok).flat()]); // 2^15 first: the scale is 1
    expect(words.length).toBeGreaterThanOrEqual(1 << 16);
    const half = bf16ToScaledF16(words)!;
    expect(half?.scale).toBe(1);
    expect(widenWeight({ shape: [words.length], dtype: 'float16', data: half.f16, scale: 1 }).data).toEqual(bf16ToF32(words));
  });

  it('converts a long 2-D tensor row by row when its rows span more than fp16 (per-row scales)', () => {
    const rows = 64, cols = 2048;
    const v = bf16ToF32(bf16Words(rows * cols, 1, 7));
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) v[r * cols + c] = v[r * cols + c]! * 2 ** (r - 32);
    const words = f32ToBf16(v);
    expect(bf16ToScaledF16(words)).toBeUndefined();
    const w = storedWeight([rows, cols], 'BF16', words.slice(), undefined, { inPlace: true });
    expect('dtype' in w && typeof w.scale !== 'number').toBe(true);
    expect(widenWeight(w).data).toEqual(bf16ToF32(words));
  });

  it('refuses a long tensor with one word fp16 would round, and leaves in-place words untouched then', () => {
    const bad = finite.filter((w) => !exact(bf16ToF32(Uint16Array.of(w))[0]!));
    expect(bad.length).toBeGreaterThan(0);
    for (const w of [bad[0]!, bad[bad.length >> 1]!, bad[bad.length - 1]!]) {
      const words = new Uint16Array(1 << 17).fill(0x3f80); // 1.0
      words[0] = 0x4700; words[words.length - 1] = w;
      const copy = words.slice();
      expect(bf16ToScaledF16(words)).toBeUndefined();
      const stored = storedWeight([words.length], 'BF16', words, undefined, { inPlace: true });
      expect('dtype' in stored).toBe(false);
      expect(words).toEqual(copy);
    }
  });
});

describe('per-row scales and transposed storage', () => {
  // Row 0 ~ 2^10, row 1 ~ 2^-30: together past fp16's range, each alone within it.
  const values = Float32Array.from([1024, -768, 512, 2 ** -30, -(2 ** -31), 3 * 2 ** -32]);
  const words = f32ToBf16(values);

  it('keeps a 2-D weight 16-bit with one power of two per row when one per tensor cannot', () => {
    expect(bf16ToScaledF16(words)).toBeUndefined();
    const w = storedWeight([2, 3], 'BF16', words);
    expect('dtype' in w && typeof w.scale !== 'number' && Array.from(w.scale).every((s) => Number.isInteger(Math.log2(s)))).toBe(true);
    expect(widenWeight(w).data).toEqual(values);
  });

  it('stores a linear weight as its checkpoint layout when asked, and widens it back to [in, out]', () => {
    // `words` are the checkpoint's [out 2, in 3]; the canonical weight is [in 3, out 2].
    const w = storedWeight([3, 2], 'BF16', words, undefined, { transposed: true });
    expect('dtype' in w && w.transposed).toBe(true);
    expect(Array.from(widenWeight(w).data)).toEqual([1024, 2 ** -30, -768, -(2 ** -31), 512, 3 * 2 ** -32]);
    // Widened to float32 (a value fp16 · any scale cannot hold), it is stored [in, out] as well.
    const wide = f32ToBf16(Float32Array.from([1, 2 ** -40, 3, 4, 5, 6]));
    const f = storedWeight([3, 2], 'BF16', wide, undefined, { transposed: true });
    expect('dtype' in f).toBe(false);
    expect(Array.from(f.data)).toEqual([1, 4, 2 ** -40, 5, 3, 6]);
  });
});

describe('in-place conversion (inPlace: the checkpoint words become the store)', () => {
  it('converts one-scale and per-row tensors where they are, with the values of a separate conversion', () => {
    for (const [shape, make] of [
      [[4, 64], () => bf16Words(256, 0.02)],
      [[2, 3], () => f32ToBf16(Float32Array.from([1024, -768, 512, 2 ** -30, -(2 ** -31), 3 * 2 ** -32]))],
    ] as const) {
      const copy = storedWeight(shape, 'BF16', make());
      const words = make();
      const w = storedWeight(shape, 'BF16', words, undefined, { inPlace: true });
      expect('dtype' in w && w.data).toBe(words); // the same array: no second copy
      expect(widenWeight(w).data).toEqual(widenWeight(copy).data);
      expect(w.data).toEqual(copy.data);
    }
  });

  it('leaves the words as read when no exact fp16 form exists, and widens them correctly', () => {
    const values = Float32Array.from([1, 2 ** -40, 3, 4, 5, 6]); // one row spans past fp16's range
    const words = f32ToBf16(values);
    const before = words.slice();
    const w = storedWeight([1, 6], 'BF16', words, undefined, { inPlace: true });
    expect('dtype' in w).toBe(false);
    expect(words).toEqual(before);
    expect(Array.from(w.data)).toEqual(Array.from(values));
  });

  it('without inPlace leaves the caller\'s words untouched', () => {
    const words = bf16Words(64, 0.5);
    const before = words.slice();
    storedWeight([8, 8], 'BF16', words);
    expect(words).toEqual(before);
  });
});
