// Numeric comparison for parity tests: the largest absolute difference between two equally long
// vectors, and that difference relative to the largest reference entry. A NaN anywhere makes the
// result NaN (so `expect(d).toBeLessThanOrEqual(tol)` fails instead of passing silently).

import { ShapeError } from '../errors.js';

/** max |actual − expected|; NaN if any difference is NaN. */
export function maxAbsDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) {
    throw new ShapeError(`compared vectors differ in length: ${actual.length} vs ${expected.length}`, 'compare values of the same shape');
  }
  let m = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (Number.isNaN(d)) return NaN;
    if (d > m) m = d;
  }
  return m;
}

/** max |actual − expected| / max |expected| (the absolute difference when `expected` is all zero). */
export function relMaxError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  const diff = maxAbsDiff(actual, expected);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  return scale === 0 ? diff : diff / scale;
}
