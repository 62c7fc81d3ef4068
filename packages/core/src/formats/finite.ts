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
      throw new FormatError(`${what} holds ${count} non-finite value${count === 1 ? '' : 's'} (the first, ${v}, at flat index ${i})`,
        'the weights are corrupt (a diverged training run or a bad conversion); use a checkpoint with finite weights');
    }
  }
}
