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
  scaledF16Into(words, f16, shift, words.length >= TABLE_MIN_WORDS);
  return { f16, scale: 2 ** -shift };
}

/**
 * The power of two 2^shift that puts `words` (BF16) exactly into fp16, or undefined when there is
 * none. Reads only, so a caller can convert in place once it knows the conversion is exact.
 */
function f16Shift(words: Uint16Array): number | undefined {
  const shift = largestToTop(words);
  return scaledF16Into(words, undefined, shift, words.length >= TABLE_MIN_WORDS) ? shift : undefined;
}

/** The shift 2^shift that puts the largest finite non-zero BF16 value of `words` at fp16's largest exponent (15). */
function largestToTop(words: Uint16Array): number {
  // Which sign-and-exponent fields occur (a store per word, no branch), then the largest exponent.
  const seen = new Uint8Array(512);
  for (let i = 0; i < words.length; i++) seen[words[i]! >> 7] = 1;
  let maxExp = 0; // biased bf16 exponent of the largest finite non-zero value (0: none)
  for (let e = 0xfe; e > 0; e--) if (seen[e] || seen[e | 0x100]) { maxExp = e; break; }
  return maxExp === 0 ? 0 : 15 - (maxExp - 127); // value · 2^shift has exponent ≤ 15
}

/** scaledWord's answer for a BF16 word whose value · 2^shift is not exact in fp16. */
const NOT_EXACT = 0x10000;

/** One BF16 word · 2^shift as an fp16 word, or NOT_EXACT. */
function scaledWord(w: number, shift: number): number {
  const e = (w >> 7) & 0xff;
  const m = w & 0x7f;
  if (e === 0 || e === 0xff) {
    if (m === 0 && e === 0) return w & 0x8000; // ±0
    if (shift !== 0 || e === 0) return NOT_EXACT; // a bf16 subnormal, or ±∞/NaN under a scale
    return (w & 0x8000) | 0x7c00 | (m ? 0x200 | (m << 3) : 0); // ±∞, NaN with scale 1
  }
  const ue = e - 127 + shift; // the scaled value's unbiased exponent
  if (ue < -14 || ue > 15) {
    // Below fp16's normal range: exact as a subnormal only if the low mantissa bits are zero.
    if (ue > 15 || ue < -24) return NOT_EXACT;
    const sub = (0x80 | m) << 3; // 1.m as an 11-bit integer · 2^-10
    const shiftOut = -14 - ue;
    if (sub & ((1 << shiftOut) - 1)) return NOT_EXACT;
    return (w & 0x8000) | (sub >> shiftOut);
  }
  return (w & 0x8000) | ((ue + 15) << 10) | (m << 3);
}

/**
 * Tensors at least this long (a 2-D one's rows too) are converted through a table of scaledWord over all 65536 words
 * (one load and one store per value); shorter ones word by word. Gemma-2-2B's token embedding
 * (590M values, in place) took 4.8 CPU-s word by word and 2.6 through the table (session 7).
 */
const TABLE_MIN_WORDS = 1 << 16;
/** Tables by shift; a checkpoint's tensors share a few shifts (one per binary order of magnitude). */
const tables = new Map<number, Uint32Array>();
const MAX_TABLES = 32;

function tableFor(shift: number): Uint32Array {
  let t = tables.get(shift);
  if (!t) {
    if (tables.size >= MAX_TABLES) tables.clear();
    t = new Uint32Array(1 << 16);
    for (let w = 0; w < t.length; w++) t[w] = scaledWord(w, shift);
    tables.set(shift, t);
  }
  return t;
}

function exactByTable(words: Uint16Array, t: Uint32Array): boolean {
  let any = 0;
  for (let i = 0; i < words.length; i++) any |= t[words[i]!]!;
  return (any & NOT_EXACT) === 0;
}

function writeByTable(words: Uint16Array, out: Uint16Array, t: Uint32Array): boolean {
  let any = 0;
  for (let i = 0; i < words.length; i++) {
    const f = t[words[i]!]!;
    any |= f;
    out[i] = f;
  }
  return (any & NOT_EXACT) === 0;
}

/**
 * Writes `words` · 2^shift as fp16 into `out` (same length; may be `words` itself: each word is
 * read before it is written), or with `out` undefined only checks. False when some value is not
 * exact in fp16 (then `out` holds some garbage). `byTable`: through tableFor (long tensors).
 */
function scaledF16Into(words: Uint16Array, out: Uint16Array | undefined, shift: number, byTable: boolean): boolean {
  if (byTable) {
    const t = tableFor(shift);
    return out ? writeByTable(words, out, t) : exactByTable(words, t);
  }
  for (let i = 0; i < words.length; i++) {
    const f = scaledWord(words[i]!, shift);
    if (f === NOT_EXACT) return false;
    if (out) out[i] = f;
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
  const long = words.length >= TABLE_MIN_WORDS;
  // A row's table is made only while there is room for it: rows with many different shifts must
  // not make and drop tables over and over.
  const byTable = (shift: number) => long && (tables.has(shift) || tables.size < MAX_TABLES);
  for (let r = 0; r < rows; r++) {
    const row = words.subarray(r * cols, (r + 1) * cols);
    const s = largestToTop(row);
    if (!scaledF16Into(row, undefined, s, byTable(s))) return undefined;
    shifts[r] = s;
  }
  const out = into();
  const scale = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    scaledF16Into(words.subarray(r * cols, (r + 1) * cols), out.subarray(r * cols, (r + 1) * cols), shifts[r]!, byTable(shifts[r]!));
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
