// 16-bit canonical weights: a BF16/F16 checkpoint's weights kept in 16 bits in the WeightStore
// and widened to float32 by the backend (docs/architecture.md, "The segment contract"). Only exact
// conversions are made, so a segment computes the same float32 values as from a widened store:
// F16 words are kept as they are; a BF16 tensor is kept as fp16 words times a power-of-two scale
// when every value of it is exactly such a number, else it is widened to float32 here.

import type { HalfWeightTensor, StoredWeight, WeightTensor } from '../backend.js';
import { bf16ToF16Exact, bf16ToF32, f16ToF32 } from '../formats/safetensors.js';

/**
 * BF16 words → fp16 words and a power-of-two `scale` with value = fp16 · scale exactly for every
 * element, or undefined when no such scale exists (the tensor spans more binary orders of
 * magnitude than fp16 holds exactly). The scale puts the tensor's largest exponent at fp16's
 * largest (2^15), which leaves the most room below for small values.
 */
export function bf16ToScaledF16(words: Uint16Array): { f16: Uint16Array; scale: number } | undefined {
  let maxExp = 0; // biased bf16 exponent of the largest finite non-zero value (0: none)
  for (let i = 0; i < words.length; i++) {
    const e = (words[i]! >> 7) & 0xff;
    if (e !== 0xff && e > maxExp) maxExp = e;
  }
  const shift = maxExp === 0 ? 0 : 15 - (maxExp - 127); // value · 2^shift has exponent ≤ 15
  let shifted = words;
  if (shift !== 0) {
    shifted = new Uint16Array(words.length);
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      const e = (w >> 7) & 0xff;
      if (e === 0 || e === 0xff) {
        // ±0 stays; a bf16 subnormal or ±∞/NaN cannot be rescaled by the exponent: give up.
        if ((w & 0x7fff) !== 0) return undefined;
        shifted[i] = w;
        continue;
      }
      const ne = e + shift;
      if (ne < 1) return undefined; // below bf16's normal range: far below fp16's too
      shifted[i] = (w & 0x807f) | (ne << 7);
    }
  }
  const { f16, inexact } = bf16ToF16Exact(shifted);
  return inexact === 0 ? { f16, scale: 2 ** -shift } : undefined;
}

/**
 * A checkpoint tensor's words as a stored weight: 16-bit when exact, else float32 (`beforeWiden`
 * is told the bytes first, so a caller can check the memory).
 */
export function storedWeight(shape: readonly number[], dtype: 'BF16' | 'F16', words: Uint16Array, beforeWiden?: (bytes: number) => void): StoredWeight {
  if (dtype === 'F16') return { shape, dtype: 'float16', data: words, scale: 1 };
  const half = bf16ToScaledF16(words);
  if (half) return { shape, dtype: 'float16', data: half.f16, scale: half.scale };
  beforeWiden?.(4 * words.length);
  return { shape, data: bf16ToF32(words) };
}

export function isHalfWeight(w: StoredWeight): w is HalfWeightTensor {
  return (w as HalfWeightTensor).dtype === 'float16';
}

/** The weight as float32 (a new array for a 16-bit one; the same object for a float32 one). */
export function widenWeight(w: StoredWeight): WeightTensor {
  if (!isHalfWeight(w)) return w;
  const data = f16ToF32(w.data);
  if (w.scale !== 1) for (let i = 0; i < data.length; i++) data[i] = data[i]! * w.scale;
  return { shape: w.shape, data };
}

/** Bytes a store really holds. */
export function storeBytes(store: ReadonlyMap<string, StoredWeight>): number {
  let n = 0;
  for (const w of store.values()) n += w.data.byteLength;
  return n;
}
