// How integrated gradients splits its steps into batches: maxRows as before at small models, the
// IG_VALUE_BUDGET bound where the chain from the submodule holds large values, balanced batches.
import { describe, expect, it } from 'vitest';
import type { Model } from '../model/model.js';
import { IG_VALUE_BUDGET, igStepsPerBatch } from './attribution.js';
import type { ResolvedSubmodule } from './setup.js';

/** A model of `n` segments of width d (only what igStepsPerBatch reads). */
function chain(n: number, d: number): Model {
  return { spec: { segments: Array.from({ length: n }, (_, i) => ({ name: `s${i}` })), dims: { dModel: d } } } as unknown as Model;
}
const at = (name: string) => ({ name }) as ResolvedSubmodule;

describe('igStepsPerBatch', () => {
  it('at a small model, every step of the examples goes into one batch when maxRows allows', () => {
    expect(igStepsPerBatch(chain(20, 512), at('s1'), { size: 10, seq: 16 }, 9, 256)).toBe(9);
    // maxRows alone: 40 rows / 10 examples = 4 steps a batch at most, spread 3 + 3 + 3
    expect(igStepsPerBatch(chain(20, 512), at('s1'), { size: 10, seq: 16 }, 9, 40)).toBe(3);
  });

  it('bounds the rows by the values the chain from the submodule holds, and balances the batches', () => {
    // Gemma-2-2B shape: 130 values of 2304 floats after resid_0, 8 tokens: 9.6 MB a row.
    const model = chain(132, 2304);
    const rowBytes = 130 * 8 * 2304 * 4;
    const rows = Math.floor(IG_VALUE_BUDGET / rowBytes);
    expect(rows).toBeLessThan(36);
    const per = igStepsPerBatch(model, at('s1'), { size: 4, seq: 8 }, 9, 256);
    expect(per * 4).toBeLessThanOrEqual(rows);
    expect(Math.ceil(9 / per)).toBe(Math.ceil(9 / Math.floor(rows / 4))); // no more batches than the bound needs
    // A submodule near the logits holds few values: all steps in one batch.
    expect(igStepsPerBatch(model, at('s128'), { size: 4, seq: 8 }, 9, 256)).toBe(9);
  });

  it('always makes progress: at least one step, even past the budget or with nothing left', () => {
    expect(igStepsPerBatch(chain(200, 8192), at('s0'), { size: 64, seq: 512 }, 9, 256)).toBe(1);
    expect(igStepsPerBatch(chain(10, 64), at('s0'), { size: 4, seq: 8 }, 0, 256)).toBe(1);
  });
});
