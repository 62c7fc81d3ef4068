// The changed-rows shortcut of node effects (core's changed-rows.ts): prepareBatch computes Δf on
// the rows whose clean and patch prefixes differ only, and gradientEffect projects gradients there
// only, relying on a causal model giving exactly 0 elsewhere. Property: on fixtures/small-a, every
// per-example node effect (attrib and ig, aggregated by sum and by none) equals the computation on
// all rows — the BatchContext from prepareBatch with `changed: undefined` and Δ recomputed from the
// clean and patch runs on every row — within 1e-6 relative, for batches of every shape the
// shortcut meets: the full batch, one example, and batches where some or all examples have
// identical clean and patch prompts (different answers only). exact (which reads Δf and Δr
// directly) is compared too on the small batches.
import { describe, expect, it } from 'vitest';
import {
  batchNodeEffects, logitDiff, prepareBatch, resolveDictionaries,
  type AttributionMethod, type BatchContext, type PromptBatch, type ResolvedSubmodule, type SparseAct,
} from '@sfc/core';
import { relMaxError } from '@sfc/core/testing';
import { ALGORITHM_BACKENDS } from './backends.js';
import { useSmallA, type SmallA } from './small-a.js';

const TOLERANCE = 1e-6;

/** Rows `rows` of a batch, with the patch prompts of the rows in `samePrompt` replaced by their clean prompts. */
function pick(batch: PromptBatch, rows: readonly number[], samePrompt: readonly number[] = []): PromptBatch {
  const S = batch.seq;
  const take = (a: Int32Array) => Int32Array.from(rows.flatMap((r) => [...a.subarray(r * S, (r + 1) * S)]));
  const clean = take(batch.clean);
  const patch = take(batch.patch!);
  rows.forEach((r, i) => { if (samePrompt.includes(r)) patch.set(clean.subarray(i * S, (i + 1) * S), i * S); });
  return {
    size: rows.length, seq: S, clean, patch,
    cleanAnswer: Int32Array.from(rows, (r) => batch.cleanAnswer[r]!),
    patchAnswer: Int32Array.from(rows, (r) => batch.patchAnswer![r]!),
    exampleIndex: [...rows],
  };
}

/** The context without the shortcut: Δf and Δr of every row, from the clean values and the patch run's (the IG target). */
function allRows(s: SmallA, ctx: BatchContext, subs: readonly ResolvedSubmodule[]): BatchContext {
  const ops = s.model.ops;
  const delta = new Map<string, SparseAct>();
  for (const sub of subs) {
    const xc = ctx.values.get(sub.name)!, xp = ctx.target.get(sub.name)!;
    const act = ops.sub(sub.dict.encode(xp), sub.dict.encode(xc));
    // prepareBatch's formula without the shortcut: Δr = Δx − (dec(Δf) − b_dec) (r_p − r_c, one decode).
    const res = ops.sub(ops.sub(xp, xc), ops.sub(sub.dict.decode(act), sub.dict.decoderBias()));
    delta.set(sub.name, { act, res });
  }
  return { ...ctx, delta, changed: undefined };
}

/** Per-example effects act [B, S, F], res [B, S] aggregated as attribute() does before the example mean. */
async function aggregate(effect: SparseAct, aggregation: 'sum' | 'none'): Promise<number[]> {
  const [B, S, F] = effect.act.shape as [number, number, number];
  const act = await effect.act.data(), res = await effect.res.data();
  const P = aggregation === 'sum' ? 1 : S;
  const out = new Array<number>(P * (F + 1)).fill(0);
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < S; p++) {
      const o = (aggregation === 'sum' ? 0 : p) * (F + 1);
      for (let i = 0; i < F; i++) out[o + i]! += act[(b * S + p) * F + i]!;
      out[o + F]! += res[b * S + p]!;
    }
  }
  return out;
}

const METHODS: readonly [string, AttributionMethod][] = [['attrib', { kind: 'attrib' }], ['ig', { kind: 'ig', steps: 10 }]];

for (const which of ALGORITHM_BACKENDS) describe(which.name, () => {
  const s = useSmallA(which);

  const cases: readonly [string, (b: PromptBatch) => PromptBatch, boolean, boolean][] = [
    // [name, batch, whether the shortcut applies, whether exact runs too (it reads delta directly)]
    ['all 40 examples', (b) => b, true, false],
    ['one example', (b) => pick(b, [3]), true, true],
    ['identical prompts for some examples (answers differ)', (b) => pick(b, [0, 1, 2, 3, 4, 5], [1, 4]), true, true],
    ['identical prompts for every example', (b) => pick(b, [0, 1, 2], [0, 1, 2]), false, false],
  ];

  for (const [name, make, applies, withExact] of cases) {
    it(`node effects on changed rows only = on all rows: ${name}`, async () => {
      const ops = s.model.ops;
      const subs = resolveDictionaries(s.model, s.dictionaries);
      const batch = make(s.batches[0]!);
      await ops.scope(async () => {
        const ctx = await prepareBatch(s.model, subs, batch, logitDiff().bind(ops, batch));
        expect(ctx.changed !== undefined, 'whether the shortcut applies').toBe(applies);
        const full = allRows(s, ctx, subs);
        for (const [label, method] of withExact ? [...METHODS, ['exact', { kind: 'exact' }] as const] : METHODS) {
          for (const sub of subs) {
            await ops.scope(async () => {
              const fast = await batchNodeEffects(s.model, ctx, sub, method);
              const slow = await batchNodeEffects(s.model, full, sub, method);
              for (const aggregation of ['sum', 'none'] as const) {
                const expected = await aggregate(slow, aggregation);
                const err = relMaxError(await aggregate(fast, aggregation), expected);
                expect(err, `${label}/${aggregation} ${sub.name}: max|Δ|/max|all rows|`).toBeLessThanOrEqual(TOLERANCE);
                if (!applies) expect(Math.max(...expected.map(Math.abs)), `${label} ${sub.name}: no prompt differs`).toBe(0);
              }
              // Rows before the first differing token are exactly 0 with the shortcut.
              if (ctx.changed) {
                const act = await fast.act.data(), res = await fast.res.data();
                const F = sub.dict.dSae;
                const changed = new Set(ctx.changed.rows);
                for (let r = 0; r < batch.size * batch.seq; r++) {
                  if (changed.has(r)) continue;
                  expect(res[r], `${label} ${sub.name} row ${r}: error effect`).toBe(0);
                  for (let i = 0; i < F; i++) if (act[r * F + i] !== 0) expect.fail(`${label} ${sub.name} row ${r}: feature ${i} has effect ${act[r * F + i]}`);
                }
              }
            });
          }
        }
      });
    });
  }
});
