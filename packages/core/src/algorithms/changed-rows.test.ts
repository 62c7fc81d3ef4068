import { describe, expect, it } from 'vitest';
import { referenceOps } from '../testing/reference-ops.js';
import type { PromptBatch } from '../data/batches.js';
import { changedRows, compactRows, expandRows, realMask, realRows } from './changed-rows.js';

const batch = (clean: number[], patch: number[] | undefined, size: number, seq: number, lengths?: number[]): PromptBatch => ({
  size, seq, clean: Int32Array.from(clean), ...(patch ? { patch: Int32Array.from(patch) } : {}),
  cleanAnswer: new Int32Array(size), exampleIndex: [...Array(size).keys()], ...(lengths ? { lengths: Int32Array.from(lengths) } : {}),
});

describe('changed rows', () => {
  it('lists every position from the first differing token on, per example', () => {
    const ops = referenceOps();
    // Example 0 differs at position 1 (and agrees again at 2: still changed, it sees position 1);
    // example 1 differs only at its last position.
    const c = changedRows(ops, batch([5, 6, 7, 8, 1, 2, 3, 4], [5, 9, 7, 8, 1, 2, 3, 0], 2, 4))!;
    expect([...c.rows]).toEqual([1, 2, 3, 7]);
    expect(c.total).toBe(8);
  });

  it('is undefined for single prompts, when every row changes and when none does', () => {
    const ops = referenceOps();
    expect(changedRows(ops, batch([1, 2], undefined, 1, 2))).toBeUndefined();
    expect(changedRows(ops, batch([1, 2, 3, 4], [0, 2, 9, 4], 2, 2))).toBeUndefined();
    expect(changedRows(ops, batch([1, 2], [1, 2], 1, 2))).toBeUndefined();
  });

  it('compacts [B, S, k] to the changed rows and expands back with zeros elsewhere', async () => {
    const ops = referenceOps();
    const c = changedRows(ops, batch([5, 6, 1, 2], [5, 0, 3, 2], 2, 2))!; // rows 1, 2, 3
    const t = ops.tensor([...Array(8).keys()].map((i) => i + 1), [2, 2, 2]);
    const a = compactRows(ops, c, t);
    expect(a.shape).toEqual([3, 2]);
    expect([...await a.data()]).toEqual([3, 4, 5, 6, 7, 8]);
    const back = expandRows(ops, c, a, [2, 2, 2]);
    expect(back.shape).toEqual([2, 2, 2]);
    expect([...await back.data()]).toEqual([0, 0, 3, 4, 5, 6, 7, 8]);
    // Rank 2 ([B, S] per-position values) round-trips through a trailing axis of 1.
    const v = expandRows(ops, c, ops.tensor([1, 2, 3], [3, 1]), [2, 2, 1]);
    expect([...await v.data()]).toEqual([0, 1, 2, 3]);
  });

  it('never lists pad positions of a right-padded batch; single prompts there change at every real position', async () => {
    const ops = referenceOps();
    // Row 0 has 2 real tokens (differs at 1), row 1 all 4 (differs at 3); pads are 0 in both prompts.
    const paired = batch([5, 6, 0, 0, 1, 2, 3, 4], [5, 9, 0, 0, 1, 2, 3, 8], 2, 4, [2, 4]);
    expect([...changedRows(ops, paired)!.rows]).toEqual([1, 7]);
    const single = batch([5, 6, 0, 0, 1, 2, 3, 4], undefined, 2, 4, [2, 4]);
    expect([...changedRows(ops, single)!.rows]).toEqual([0, 1, 4, 5, 6, 7]);
    expect([...realRows(single)]).toEqual([0, 1, 4, 5, 6, 7]);
    expect([...await realMask(ops, single)!.data()]).toEqual([1, 1, 0, 0, 1, 1, 1, 1]);
    expect(realMask(ops, batch([1, 2], undefined, 1, 2))).toBeUndefined();
    // Identical prompts, padded: no changed row (the full computation's Δ is 0, pads masked).
    expect(changedRows(ops, batch([5, 6, 0, 1, 2, 3], [5, 6, 0, 1, 2, 3], 2, 3, [2, 3]))).toBeUndefined();
  });
});
