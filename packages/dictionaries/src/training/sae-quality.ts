// Reconstruction quality of any dictionary on a set of activations: fraction of variance
// explained, L0, and dead features — the numbers `sfc train-sae` and the embedded SAE table
// report. Runs the dictionary's own encode/decode, so it measures what the algorithms will use.

import { ShapeError, type Dictionary, type TensorOps } from '@sfc/core';
import type { ActivationSet } from './relu-sae-trainer.js';

export interface SaeQuality {
  /** 1 − Σ‖x − x̂‖² / Σ‖x − x̄‖² over the rows. */
  readonly fve: number;
  /** Mean over rows of ‖x − x̂‖². */
  readonly mse: number;
  /** Mean number of nonzero features per row. */
  readonly l0: number;
  /** Features that are zero on every row. */
  readonly dead: number;
  /** Fraction of rows on which each feature is nonzero. */
  readonly frequency: Float64Array;
  readonly rows: number;
}

export async function measureSae(ops: TensorOps, dict: Dictionary, x: ActivationSet, options: { batchSize?: number } = {}): Promise<SaeQuality> {
  if (x.dIn !== dict.dIn) throw new ShapeError(`activations have width ${x.dIn}, the dictionary ${dict.dIn}`);
  const { data, rows, dIn } = x;
  const B = Math.max(1, options.batchSize ?? 4096);
  const mean = new Float64Array(dIn);
  for (let r = 0; r < rows; r++) for (let j = 0; j < dIn; j++) mean[j]! += data[r * dIn + j]!;
  for (let j = 0; j < dIn; j++) mean[j]! /= rows;
  let sse = 0, sst = 0, active = 0;
  const counts = new Float64Array(dict.dSae);
  for (let start = 0; start < rows; start += B) {
    const n = Math.min(B, rows - start);
    const chunk = data.subarray(start * dIn, (start + n) * dIn);
    const { f, xHat } = await ops.scope(async () => {
      const xt = ops.tensor(chunk, [n, dIn]);
      const feats = dict.encode(xt);
      return { f: feats, xHat: dict.decode(feats) };
    });
    const fh = await f.data(), xh = await xHat.data();
    f.dispose();
    xHat.dispose();
    for (let i = 0; i < n * dIn; i++) {
      const v = chunk[i]!;
      sse += (v - xh[i]!) ** 2;
      sst += (v - mean[i % dIn]!) ** 2;
    }
    const F = dict.dSae;
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < F; j++) {
        if (fh[r * F + j] !== 0) { active++; counts[j]!++; }
      }
    }
  }
  let dead = 0;
  for (const c of counts) if (c === 0) dead++;
  return {
    fve: sst > 0 ? 1 - sse / sst : 1 - sse,
    mse: sse / rows,
    l0: active / rows,
    dead,
    frequency: Float64Array.from(counts, (c) => c / rows),
    rows,
  };
}
