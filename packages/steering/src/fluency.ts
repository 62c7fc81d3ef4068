// Fluency of generated text: the mean log-probability of a continuation's tokens under the
// UNSTEERED model, given the prompt. A steer that keeps the model a model generates text the
// unsteered model still finds likely; one that breaks it generates text the model would not
// write (e.g. `the . dentists tailor`), and its fluency drops far below the unsteered text's.
// Continuations of equal total length share one forward (rectangular batches, no padding).

import type { Model } from '@sfc/core';
import { f32 } from './host-data.js';
import { groupByLength } from './prompt-groups.js';

export interface Continuation {
  readonly promptIds: readonly number[];
  /** Generated ids (prompt excluded). */
  readonly ids: readonly number[];
}

/**
 * Mean over the continuation's tokens of log p(token | prompt, earlier tokens) under the
 * unsteered model, in nats; null for an empty continuation.
 */
export async function continuationLogProbs(model: Model, items: readonly Continuation[], batchSize = Infinity): Promise<(number | null)[]> {
  const out: (number | null)[] = items.map(() => null);
  const ops = model.ops;
  const full = items.map((c) => [...c.promptIds, ...c.ids]);
  for (const group of groupByLength(full.map((f) => f.length), batchSize)) {
    const rows = group.rows.filter((i) => items[i]!.ids.length > 0);
    if (rows.length === 0) continue;
    const seq = group.length;
    await ops.scope(async () => {
      const ids = new Int32Array(rows.length * seq);
      rows.forEach((i, r) => ids.set(full[i]!, r * seq));
      const { logits } = await model.forward(model.tokens(ids, rows.length, seq));
      const vocab = logits!.shape[logits!.shape.length - 1]!;
      const lp = await f32(ops.logSoftmax(ops.reshape(logits!, [rows.length * seq, vocab])));
      rows.forEach((i, r) => {
        const { promptIds, ids: gen } = items[i]!;
        let sum = 0;
        // Token t of the continuation sits at position P + t, predicted from position P + t − 1.
        gen.forEach((id, t) => { sum += lp[(r * seq + promptIds.length + t - 1) * vocab + id]!; });
        out[i] = sum / gen.length;
      });
    });
  }
  return out;
}

export interface Fluency {
  /** Mean log-prob of the unsteered continuation (the reference). */
  readonly before: number | null;
  /** Mean log-prob of the steered continuation, under the unsteered model. */
  readonly after: number | null;
}

/** Fluency of both sides of side-by-side generations (same prompt order). */
export async function generationFluency(model: Model, generations: readonly { readonly promptIds: readonly number[]; readonly before: { readonly ids: readonly number[] }; readonly after: { readonly ids: readonly number[] } }[],
  batchSize = Infinity): Promise<Fluency[]> {
  const lp = await continuationLogProbs(model, generations.flatMap((g) => [
    { promptIds: g.promptIds, ids: g.before.ids }, { promptIds: g.promptIds, ids: g.after.ids },
  ]), batchSize);
  return generations.map((_, i) => ({ before: lp[2 * i]!, after: lp[2 * i + 1]! }));
}

/** Mean of the non-null values (null when there are none). */
export function meanFluency(values: readonly (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null);
  return v.length ? v.reduce((s, x) => s + x, 0) / v.length : null;
}
