import { describe, expect, it } from 'vitest';
import { ShapeError } from '../errors.js';
import { maxAbsDiff, relMaxError } from './compare.js';

describe('maxAbsDiff / relMaxError', () => {
  it('measure the largest difference, absolute and relative to the largest reference entry', () => {
    expect(maxAbsDiff([1, 2, 3], [1, 2.5, 2])).toBe(1);
    expect(relMaxError(Float32Array.of(1, 2, 3), [1, 2.5, -4])).toBeCloseTo(0.25 * 7, 12);
    expect(relMaxError([0.5, 0], [0, 0])).toBe(0.5);
  });

  it('propagate NaN so that a tolerance check fails', () => {
    expect(maxAbsDiff([NaN, 0, 0], [0, 0, 1])).toBeNaN();
    expect(relMaxError([0, NaN], [1, 1])).toBeNaN();
  });

  it('refuse vectors of different lengths', () => {
    expect(() => maxAbsDiff([1], [1, 2])).toThrow(ShapeError);
  });
});
