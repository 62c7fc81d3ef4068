import { describe, expect, it } from 'vitest';
import { referenceOps } from '../testing/reference-ops.js';
import { InputError } from '../errors.js';
import type { PromptBatch } from '../data/batches.js';
import { cleanMinusPatch, logitDiff, negAnswerLogit } from './metrics.js';

const batch: PromptBatch = {
  size: 2, seq: 3, clean: Int32Array.of(1, 2, 3, 4, 5, 6), patch: Int32Array.of(1, 2, 7, 4, 5, 8),
  cleanAnswer: Int32Array.of(10, 11), patchAnswer: Int32Array.of(20, 21), exampleIndex: [0, 1],
};

describe('metrics', () => {
  const ops = referenceOps();
  it('selects two columns per prompt at the last position and differences them', async () => {
    const m = logitDiff().bind(ops, batch);
    const sel = m.selection();
    expect(sel.lastOnly).toBe(true);
    expect([...(await sel.columns!.data())]).toEqual([20, 10, 21, 11]);
    expect(sel.columns!.shape).toEqual([2, 2]);
    const logits = ops.tensor([5, 2, -1, 3], [2, 2]); // [patch, clean] per row
    expect([...(await m.value(logits).data())]).toEqual([3, -4]);
    const cot = m.cotangent(logits);
    expect(cot.shape).toEqual([2, 2]);
    expect([...(await cot.data())]).toEqual([1, -1, 1, -1]);
  });

  it('maps rows to prompts (IG steps tiled, exact patches)', async () => {
    const m = cleanMinusPatch().bind(ops, batch);
    expect([...(await m.selection(Int32Array.of(1, 0, 1)).columns!.data())]).toEqual([11, 21, 10, 20, 11, 21]);
  });

  it('single prompt: −logit[answer]; paired metrics need patches', async () => {
    const single = { ...batch, patch: undefined, patchAnswer: undefined };
    const m = negAnswerLogit().bind(ops, single);
    expect([...(await m.selection().columns!.data())]).toEqual([10, 11]);
    expect([...(await m.value(ops.tensor([2, -3], [2, 1])).data())]).toEqual([-2, 3]);
    expect(() => logitDiff().bind(ops, single)).toThrow(InputError);
  });

  it('reads each row\'s last real token in a right-padded batch, per mapped row too', () => {
    const padded = { ...batch, lengths: Int32Array.of(2, 3) };
    const m = logitDiff().bind(ops, padded);
    expect([...m.selection().lastPositions!]).toEqual([1, 2]);
    expect([...m.selection(Int32Array.of(1, 0, 0)).lastPositions!]).toEqual([2, 1, 1]);
    expect(logitDiff().bind(ops, batch).selection().lastPositions).toBeUndefined();
  });
});
