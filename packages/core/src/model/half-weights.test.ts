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
