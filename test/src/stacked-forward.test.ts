// prepareBatch runs a batch's clean and patch prompts as one stacked forward (core's
// attribution.ts, cleanAndPatchRuns) — up to 2048 stacked rows, past that as two forwards — and
// keeps the clean forward's linear products for its one backward on small batches. Property on
// fixtures/small-a: the clean values, metrics and Δf equal those of two separate forwards, and
// attrib's node effects from the backward reading the kept products equal a recomputing one
// (within 1e-6 relative), for a stacked batch and for one past the limit (examples repeated).
import { describe, expect, it } from 'vitest';
import { batchNodeEffects, logitDiff, prepareBatch, resolveDictionaries, type PromptBatch, type Tensor } from '@sfc/core';
import { relMaxError } from '@sfc/core/testing';
import { ALGORITHM_BACKENDS } from './backends.js';
import { useSmallA } from './small-a.js';

const TOLERANCE = 1e-6;

/** Examples `rows` of a batch (repeats allowed). */
function pick(batch: PromptBatch, rows: readonly number[]): PromptBatch {
  const S = batch.seq;
  const take = (a: Int32Array) => Int32Array.from(rows.flatMap((r) => [...a.subarray(r * S, (r + 1) * S)]));
  return {
    size: rows.length, seq: S, clean: take(batch.clean), patch: take(batch.patch!),
    cleanAnswer: Int32Array.from(rows, (r) => batch.cleanAnswer[r]!), patchAnswer: Int32Array.from(rows, (r) => batch.patchAnswer![r]!),
    exampleIndex: [...rows],
  };
}

async function close(a: Tensor, b: Tensor): Promise<void> {
  expect(a.shape).toEqual(b.shape);
  expect(relMaxError(await a.data() as Float32Array, await b.data() as Float32Array)).toBeLessThan(TOLERANCE);
}

for (const which of ALGORITHM_BACKENDS) describe(which.name, () => {
  const s = useSmallA(which);

  for (const [name, rows] of [['stacked (2 × 4 examples)', [0, 1, 2, 3]], ['past 2048 stacked rows (two forwards)', Array.from({ length: 1100 }, (_, i) => i % 7)]] as const) {
    it(`clean values, metrics, deltas and attrib gradients equal separate forwards; kept = recomputed: ${name}`, async () => {
      const { model } = s;
      const ops = model.ops;
      const batch = pick(s.batches[0]!, rows);
      const subs = resolveDictionaries(model, s.dictionaries, undefined);
      await ops.scope(async () => {
        const metric = logitDiff().bind(ops, batch);
        const ctx = await prepareBatch(model, subs, batch, metric);
        const sel = metric.selection();
        const clean = await model.forward(model.tokens(batch.clean, batch.size, batch.seq), { logits: sel });
        const patch = await model.forward(model.tokens(batch.patch!, batch.size, batch.seq), { logits: sel });
        await close(ctx.mClean, metric.value(clean.logits!));
        await close(ctx.mPatch!, metric.value(patch.logits!));
        for (const sub of subs) {
          await close(ctx.values.get(sub.name)!, clean.values.get(sub.name)!);
          await close(ctx.target.get(sub.name)!, patch.values.get(sub.name)!);
          const df = ops.sub(sub.dict.encode(patch.values.get(sub.name)!), sub.dict.encode(clean.values.get(sub.name)!));
          await close(ctx.delta.get(sub.name)!.act, df);
        }
        // The first backward reads the kept products (on small batches), the second recomputes them.
        const small = 2 * batch.size * batch.seq <= 128;
        expect((ctx.kept?.size ?? 0) > 0).toBe(small && which.name === 'onnx'); // onnx implements forwardKeeping, tfjs recomputes
        const first = await batchNodeEffects(model, ctx, subs[0]!, { kind: 'attrib' });
        expect(ctx.kept?.size ?? 0).toBe(0);
        const second = await batchNodeEffects(model, ctx, subs[0]!, { kind: 'attrib' });
        await close(first.act, second.act);
        await close(first.res, second.res);
      });
    }, 120_000);
  }
});
