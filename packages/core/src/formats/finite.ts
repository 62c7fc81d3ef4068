// Weights must be finite: a NaN or ±Inf weight makes every output NaN, which the JSON writers turn
// into nulls that sfc itself then refuses to read back (docs/formats.md). Checked once at load.

import { FormatError } from '../errors.js';

/** Throws a FormatError naming the first NaN / ±Inf value of `data` (`what` names the tensor). */
export function checkFinite(data: Float32Array, what: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    // v − v is 0 for every finite v and NaN for NaN and ±Inf: one comparison per element.
    if (v - v !== 0) {
      let count = 0;
      for (let j = i; j < data.length; j++) if (data[j]! - data[j]! !== 0) count++;
      throw nonFinite(what, count, v, i);
    }
  }
}

/**
 * As checkFinite, for the raw 16-bit words of a BF16 or F16 tensor (kept 16-bit, never widened):
 * a value is NaN or ±Inf exactly when its exponent bits are all ones.
 */
export function checkFinite16(words: Uint16Array, dtype: 'BF16' | 'F16', what: string): void {
  const exp = dtype === 'BF16' ? 0x7f80 : 0x7c00;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if ((w & exp) === exp) {
      let count = 0;
      for (let j = i; j < words.length; j++) if ((words[j]! & exp) === exp) count++;
      const mantissa = w & ~(exp | 0x8000);
      throw nonFinite(what, count, mantissa ? NaN : w & 0x8000 ? -Infinity : Infinity, i);
    }
  }
}

function nonFinite(what: string, count: number, first: number, index: number): FormatError {
  return new FormatError(`${what} holds ${count} non-finite value${count === 1 ? '' : 's'} (the first, ${first}, at flat index ${index})`,
    'the weights are corrupt (a diverged training run or a bad conversion); use a checkpoint with finite weights');
}
