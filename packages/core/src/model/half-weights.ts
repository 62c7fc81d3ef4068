// 16-bit canonical weights: a BF16/F16 checkpoint's weights kept in 16 bits in the WeightStore
// and widened to float32 by the backend (docs/architecture.md, "The segment contract"). Only exact
// conversions are made, so a segment computes the same float32 values as from a widened store:
// F16 words are kept as they are; a BF16 tensor is kept as fp16 words times a power-of-two scale
// (one for the tensor, else one per row of a 2-D tensor) when every value of it is exactly such a
// number, else it is widened to float32 here. A backend that widens per segment may ask for linear
// weights transposed (`transposed`: the checkpoint's own [out, in] layout), so that it can widen
// one cache-sized chunk of rows at a time and use it as the left side of its product
// (docs/performance.md, "Gemma-2-2B scale").

import type { HalfWeightTensor, StoredWeight, WeightTensor } from '../backend.js';
import { bf16ToF16Exact, bf16ToF32, f16ToF32 } from '../formats/safetensors.js';
import { transpose } from './transpose.js';

/**
 * BF16 words → fp16 words and a power-of-two `scale` with value = fp16 · scale exactly for every
 * element, or undefined when no such scale exists (the tensor spans more binary orders of
 * magnitude than fp16 holds exactly). The scale puts the tensor's largest exponent at fp16's
 * largest (2^15), which leaves the most room below for small values.
 */
export function bf16ToScaledF16(words: Uint16Array): { f16: Uint16Array; scale: number } | undefined {
  return scaledF16(words, () => new Uint16Array(words.length));
}

/** bf16ToScaledF16 into `into()` (called only when the conversion is exact; `words` itself converts in place). */
function scaledF16(words: Uint16Array, into: () => Uint16Array): { f16: Uint16Array; scale: number } | undefined {
  const shift = f16Shift(words);
  if (shift === undefined) return undefined;
  const f16 = into();
  scaledF16Into(words, f16, shift);
  return { f16, scale: 2 ** -shift };
}

/**
 * The power of two 2^shift that puts `words` (BF16) exactly into fp16, or undefined when there is
 * none. Reads only, so a caller can convert in place once it knows the conversion is exact.
 */
function f16Shift(words: Uint16Array): number | undefined {
  let maxExp = 0; // biased bf16 exponent of the largest finite non-zero value (0: none)
  for (let i = 0; i < words.length; i++) {
    const e = (words[i]! >> 7) & 0xff;
    if (e !== 0xff && e > maxExp) maxExp = e;
  }
  const shift = maxExp === 0 ? 0 : 15 - (maxExp - 127); // value · 2^shift has exponent ≤ 15
  return scaledF16Into(words, undefined, shift) ? shift : undefined;
}

/**
 * Writes `words` · 2^shift as fp16 into `out` (same length; may be `words` itself: each word is
 * read before it is written), or with `out` undefined only checks. False when some value is not
 * exact in fp16 (then `out` is partly written).
 */
function scaledF16Into(words: Uint16Array, out: Uint16Array | undefined, shift: number): boolean {
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const e = (w >> 7) & 0xff;
    const m = w & 0x7f;
    if (e === 0 || e === 0xff) {
      if (m === 0 && e === 0) { if (out) out[i] = w & 0x8000; continue; } // ±0
      if (shift !== 0 || e === 0) return false; // a bf16 subnormal, or ±∞/NaN under a scale
      if (out) out[i] = (w & 0x8000) | 0x7c00 | (m ? 0x200 | (m << 3) : 0); // ±∞, NaN with scale 1
      continue;
    }
    const ue = e - 127 + shift; // the scaled value's unbiased exponent
    if (ue < -14 || ue > 15) {
      // Below fp16's normal range: exact as a subnormal only if the low mantissa bits are zero.
      if (ue > 15 || ue < -24) return false;
      const sub = (0x80 | m) << 3; // 1.m as an 11-bit integer · 2^-10
      const shiftOut = -14 - ue;
      if (sub & ((1 << shiftOut) - 1)) return false;
      if (out) out[i] = (w & 0x8000) | (sub >> shiftOut);
      continue;
    }
    if (out) out[i] = (w & 0x8000) | ((ue + 15) << 10) | (m << 3);
  }
  return true;
}

/**
 * A 2-D tensor's BF16 words → fp16 words and one power-of-two scale per row, or undefined when a
 * row spans more than fp16 holds exactly (the token embedding of a large vocabulary often needs
 * this: its rows differ in magnitude by more than fp16's range, each row alone does not).
 */
export function bf16RowsToScaledF16(words: Uint16Array, rows: number, cols: number): { f16: Uint16Array; scale: Float32Array } | undefined {
  return rowsToScaledF16(words, rows, cols, () => new Uint16Array(words.length));
}

/** bf16RowsToScaledF16 into `into()` (called once every row is known exact; `words` itself converts in place). */
function rowsToScaledF16(words: Uint16Array, rows: number, cols: number, into: () => Uint16Array): { f16: Uint16Array; scale: Float32Array } | undefined {
  const shifts = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const s = f16Shift(words.subarray(r * cols, (r + 1) * cols));
    if (s === undefined) return undefined;
    shifts[r] = s;
  }
  const out = into();
  const scale = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    scaledF16Into(words.subarray(r * cols, (r + 1) * cols), out.subarray(r * cols, (r + 1) * cols), shifts[r]!);
    scale[r] = 2 ** -shifts[r]!;
  }
  return { f16: out, scale };
}

/** How a 16-bit weight is laid out in the store. */
export interface HalfLayout {
  /** `words` hold the 2-D weight transposed (see HalfWeightTensor.transposed). */
  readonly transposed?: boolean;
  /** BF16 words are converted where they are (the caller's array becomes the store's). */
  readonly inPlace?: boolean;
}

/**
 * A checkpoint tensor's words as a stored weight: 16-bit when exact, else float32 (`beforeWiden`
 * is told the bytes first, so a caller can check the memory). `words` are laid out as `layout`
 * says; a weight widened to float32 is stored row-major (transposed back). With `layout.inPlace`
 * the words are converted where they are and become the store's (no second array, no garbage
 * left for the collector; the caller gives them up), else they are left as they were.
 */
export function storedWeight(shape: readonly number[], dtype: 'BF16' | 'F16', words: Uint16Array, beforeWiden?: (bytes: number) => void,
  layout: HalfLayout = {}): StoredWeight {
  const transposed = !!layout.transposed && shape.length === 2;
  const [rows, cols] = transposed ? [shape[1]!, shape[0]!] : [shape[0]!, shape[1] ?? 0];
  let half: { f16: Uint16Array; scale: number | Float32Array } | undefined;
  const into = layout.inPlace ? () => words : () => new Uint16Array(words.length);
  if (dtype === 'F16') half = { f16: words, scale: 1 };
  else half = scaledF16(words, into) ?? (shape.length === 2 ? rowsToScaledF16(words, rows, cols, into) : undefined);
  if (!half) {
    beforeWiden?.(4 * words.length);
    const data = bf16ToF32(words);
    return { shape, data: transposed ? transpose(data, rows, cols) : data };
  }
  return { shape, dtype: 'float16', data: half.f16, scale: half.scale, ...(transposed ? { transposed: true } : {}) };
}


export function isHalfWeight(w: StoredWeight): w is HalfWeightTensor {
  return (w as HalfWeightTensor).dtype === 'float16';
}

/** The weight as float32, row-major (a new array for a 16-bit one; the same object for a float32 one). */
export function widenWeight(w: StoredWeight): WeightTensor {
  if (!isHalfWeight(w)) return w;
  const [rows, cols] = w.transposed ? [w.shape[1]!, w.shape[0]!] : [w.shape[0] ?? 1, w.shape[1] ?? w.data.length];
  const data = f16ToF32(w.data);
  const { scale } = w;
  if (typeof scale === 'number') {
    if (scale !== 1) for (let i = 0; i < data.length; i++) data[i] = data[i]! * scale;
  } else {
    for (let r = 0; r < rows; r++) {
      const s = scale[r]!;
      for (let i = r * cols; i < (r + 1) * cols; i++) data[i] = data[i]! * s;
    }
  }
  return { shape: w.shape, data: w.transposed ? transpose(data, rows, cols) : data };
}

/** Bytes a store really holds. */
export function storeBytes(store: ReadonlyMap<string, StoredWeight>): number {
  let n = 0;
  for (const w of store.values()) n += w.data.byteLength + (isHalfWeight(w) && typeof w.scale !== 'number' ? w.scale.byteLength : 0);
  return n;
}
