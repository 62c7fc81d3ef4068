// Metrics: scalar functions of the logits at each prompt's last real token (the last position, or
// the row's last real token in a right-padded batch), one value per prompt. The built-in ones
// are linear in a few logit columns, so the forward only computes those columns (an unembed
// LogitSelection of 1–2 ids per prompt instead of the whole vocabulary) and their gradient is a
// constant cotangent. Code users can pass any Metric that supplies value and cotangent.

import { InputError } from '../errors.js';
import type { LogitSelection } from '../model/spec.js';
import type { Tensor, TensorOps } from '../tensor.js';
import type { PromptBatch } from '../data/batches.js';

/** A metric bound to one batch of prompts. */
export interface BoundMetric {
  /**
   * The logits a forward must produce when its row n is prompt `rows[n]` of the batch
   * (default: row n is prompt n). Tensors are created in the caller's scope.
   */
  selection(rows?: Int32Array): LogitSelection;
  /** Per-row values [N] from logits produced with `selection(rows)`. */
  value(logits: Tensor): Tensor;
  /** ∂(Σ_n value_n)/∂logits, the shape of `logits` (the seed of every backward pass). */
  cotangent(logits: Tensor): Tensor;
}

export interface Metric {
  readonly name: string;
  /** Whether the metric needs patch answers (paired prompts). */
  readonly paired: boolean;
  bind(ops: TensorOps, batch: PromptBatch): BoundMetric;
}

/**
 * Σ_k coef[k] · logit[last, column_k] with per-prompt columns. Built-in metrics are all of this form.
 * `columns(batch)` returns [batch.size × coef.length] vocabulary ids, row-major.
 */
export function linearLogitMetric(name: string, coef: readonly number[], paired: boolean,
  columns: (batch: PromptBatch) => Int32Array): Metric {
  const k = coef.length;
  return {
    name,
    paired,
    bind(ops: TensorOps, batch: PromptBatch): BoundMetric {
      const cols = columns(batch);
      if (cols.length !== batch.size * k) throw new InputError(`metric ${name}: expected ${batch.size * k} column ids, got ${cols.length}`);
      return {
        selection(rows?: Int32Array): LogitSelection {
          let ids = cols;
          if (rows) {
            ids = new Int32Array(rows.length * k);
            for (let n = 0; n < rows.length; n++) ids.set(cols.subarray(rows[n]! * k, rows[n]! * k + k), n * k);
          }
          return { lastOnly: true, columns: ops.intTensor(ids, [ids.length / k, k]), ...lastTokenPositions(batch, rows) };
        },
        value(logits: Tensor): Tensor {
          const n = logits.shape[0]!;
          const w = ops.tensor(coef, [k, 1]);
          return ops.reshape(ops.matMul(ops.reshape(logits, [n, k]), w), [n]);
        },
        cotangent(logits: Tensor): Tensor {
          return ops.tile(ops.reshape(ops.tensor(coef, [k]), logits.shape.map((_, i) => (i === logits.shape.length - 1 ? k : 1))),
            logits.shape.map((d, i) => (i === logits.shape.length - 1 ? 1 : d)));
        },
      };
    },
  };
}

/**
 * For a right-padded batch, the position of each row's last real token (row n of the forward is
 * prompt rows[n]); nothing for a pad-free batch (the last position is read).
 */
export function lastTokenPositions(batch: PromptBatch, rows?: Int32Array): { lastPositions?: Int32Array } {
  const len = batch.lengths;
  if (!len) return {};
  return { lastPositions: rows ? Int32Array.from(rows, (r) => len[r]! - 1) : Int32Array.from(len, (l) => l - 1) };
}

function interleave(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length * 2);
  for (let i = 0; i < a.length; i++) { out[2 * i] = a[i]!; out[2 * i + 1] = b[i]!; }
  return out;
}

function patchAnswers(batch: PromptBatch, metric: string): Int32Array {
  if (!batch.patchAnswer) throw new InputError(`the ${metric} metric needs paired prompts (patch answers)`, 'give data with patch_prefix and patch_answer, or use single-prompt mode');
  return batch.patchAnswer;
}

/** Discovery metric: logit[last, patch_answer] − logit[last, clean_answer] (feature-circuits' metric_fn). */
export function logitDiff(): Metric {
  return linearLogitMetric('logit-diff', [1, -1], true, (b) => interleave(patchAnswers(b, 'logit-diff'), b.cleanAnswer));
}

/** Evaluation metric: logit[last, clean_answer] − logit[last, patch_answer] (ablation.py). */
export function cleanMinusPatch(): Metric {
  return linearLogitMetric('clean-minus-patch', [1, -1], true, (b) => interleave(b.cleanAnswer, patchAnswers(b, 'clean-minus-patch')));
}

/** Single-prompt metric: −logit[last, answer]. */
export function negAnswerLogit(): Metric {
  return linearLogitMetric('neg-answer-logit', [-1], false, (b) => b.cleanAnswer);
}

/** The metric discovery uses by default: paired logit difference, or −logit[answer] without patch prompts. */
export function defaultMetric(batch: PromptBatch): Metric {
  return batch.patch ? logitDiff() : negAnswerLogit();
}
