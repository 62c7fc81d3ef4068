// The rows of a paired batch where the clean and patch runs can differ. In a causal model, position
// s of example b sees only tokens 0..s, so where the two prompts share that prefix every submodule
// output is the same in both runs, and Δf, Δr and every node effect there are exactly 0.
// Contrastive datasets (subject–verb agreement, …) differ from one token on, so the per-row SAE
// work of node effects (two encodes, the decoder projection) runs on the changed rows only and the
// results are expanded back to [B, S, …] with zeros elsewhere. Pad positions of a right-padded
// batch are never changed rows: nothing there has an effect (docs/concepts.md).

import { rowLength, type PromptBatch } from '../data/batches.js';
import type { Tensor, TensorOps } from '../tensor.js';
import { tidySync } from '../tidy.js';

export interface ChangedRows {
  /** B·S. */
  readonly total: number;
  /** Flat row indices b·S + s whose prefixes differ, ascending. */
  readonly rows: Int32Array;
  /** `rows` as an int32 tensor [count]. */
  readonly index: Tensor;
  /** [B·S] int32: 1 + k for rows[k], 0 for unchanged rows (the zero row `expandRows` prepends). */
  readonly scatter: Tensor;
}

/** Flat indices b·S + s of the real (not pad) positions of a batch, ascending. */
export function realRows(batch: PromptBatch): Int32Array {
  const { size: B, seq: S } = batch;
  const rows: number[] = [];
  for (let b = 0; b < B; b++) for (let s = 0; s < rowLength(batch, b); s++) rows.push(b * S + s);
  return Int32Array.from(rows);
}

/**
 * The changed rows of a batch (pad positions excluded), or undefined when the per-row shortcut
 * does not apply: a pad-free batch of single prompts (every row changes), every row changed, or
 * none did (identical prompts: the full computation gives its exact zeros without zero-sized
 * tensors; Δ is zero at pads then too).
 */
export function changedRows(ops: TensorOps, batch: PromptBatch): ChangedRows | undefined {
  const { size: B, seq: S, clean, patch } = batch;
  if (!patch && !batch.lengths) return undefined;
  const rows: number[] = [];
  for (let b = 0; b < B; b++) {
    const len = rowLength(batch, b);
    let s = 0;
    if (patch) while (s < len && clean[b * S + s] === patch[b * S + s]) s++;
    for (; s < len; s++) rows.push(b * S + s);
  }
  if (rows.length === B * S || rows.length === 0) return undefined;
  const scatter = new Int32Array(B * S);
  rows.forEach((r, k) => { scatter[r] = k + 1; });
  return {
    total: B * S,
    rows: Int32Array.from(rows),
    index: ops.intTensor(rows, [rows.length]),
    scatter: ops.intTensor(scatter, [B * S]),
  };
}

/** The changed rows of t [B, S, ...k] as [count, ...k]. */
export function compactRows(ops: TensorOps, changed: ChangedRows, t: Tensor): Tensor {
  const tail = t.shape.slice(2);
  return tidySync((tmp) => ops.gather(tmp(ops.reshape(t, [changed.total, ...tail])), changed.index, 0), [t]);
}

/** [count, ...k] back to `shape` [B, S, ...k], zeros on the unchanged rows. */
export function expandRows(ops: TensorOps, changed: ChangedRows, t: Tensor, shape: readonly number[]): Tensor {
  const tail = shape.slice(2);
  return tidySync((tmp) => {
    const withZero = tmp(ops.concat([tmp(ops.zeros([1, ...tail])), t], 0));
    return ops.reshape(tmp(ops.gather(withZero, changed.scatter, 0)), shape);
  }, [t]);
}

/** [B, S, 1]: 1 at real positions, 0 at pads; undefined for a pad-free batch. */
export function realMask(ops: TensorOps, batch: PromptBatch): Tensor | undefined {
  if (!batch.lengths) return undefined;
  const { size: B, seq: S } = batch;
  const m = new Float32Array(B * S);
  for (let b = 0; b < B; b++) m.fill(1, b * S, b * S + rowLength(batch, b));
  return ops.tensor(m, [B, S, 1]);
}
