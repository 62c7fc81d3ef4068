import { describe, expect, it } from 'vitest';
import { InputError } from '@sfc/core';
import { groupByLength } from './prompt-groups.js';

describe('groupByLength', () => {
  it('groups prompt indices by length, shortest first, in prompt order, chunked by batch size', () => {
    const lengths = [6, 5, 6, 2, 5, 8, 6, 6];
    expect(groupByLength(lengths)).toEqual([
      { length: 2, rows: [3] }, { length: 5, rows: [1, 4] }, { length: 6, rows: [0, 2, 6, 7] }, { length: 8, rows: [5] },
    ]);
    expect(groupByLength(lengths, 3)).toEqual([
      { length: 2, rows: [3] }, { length: 5, rows: [1, 4] }, { length: 6, rows: [0, 2, 6] }, { length: 6, rows: [7] }, { length: 8, rows: [5] },
    ]);
    expect(groupByLength(lengths, 1).map((g) => g.rows)).toEqual([[3], [1], [4], [0], [2], [6], [7], [5]]);
    expect(groupByLength([])).toEqual([]);
  });

  it('a batch size that is not a positive integer is an InputError', () => {
    for (const bad of [0, -1, 1.5, NaN]) expect(() => groupByLength([1, 2], bad)).toThrow(InputError);
  });
});
