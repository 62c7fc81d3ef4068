// Prompts of mixed token lengths in one right-padded batch (docs/concepts.md, "Prompts of
// different lengths"). Property, on fixtures/small-a and every algorithm backend: a padded batch
// gives what each example gives alone (batch of 1, no pads), within 1e-5 of the largest value
// (max|Δ| / max|alone|), for paired and single-prompt data:
//   - per-example metric values and node effects of attrib, ig and exact at every real position,
//     and exact zeros at every pad position;
//   - discovery (ig node effects, every edge set, the per-example downstream-node counts) with the
//     examples in one padded batch, in several padded batches, and each alone;
//   - evaluation (mean, zero and resample ablation) likewise;
//   - steered scoring (metric and next-token log-probabilities before and after a steer).
// Aggregation `none` over mixed lengths is refused with an InputError.
import { describe, expect, it } from 'vitest';
import {
  attribute, batchExamples, batchNodeEffects, discover, evaluate, InputError, prepareBatch, resolveDictionaries, defaultMetric,
  type AttributionMethod, type BatchContext, type Example, type PromptBatch, type Tensor,
} from '@sfc/core';
import { relMaxError } from '@sfc/core/testing';
import { compareBatch, interventionsFor, patch, scale, ScoreBaseline, Steering, type Intervention, type PromptScore, type ScoreBatch } from '@sfc/steering';
import { ALGORITHM_BACKENDS } from './backends.js';
import { refNodeEffects, useSmallA, type SmallA } from './small-a.js';

const TOLERANCE = 1e-5;
/** Examples taken from small-a's data, cut to these token lengths in turn (the pairs differ at position 1). */
const LENGTHS = [3, 6, 4, 5, 2, 6, 3];

/** small-a's first examples with their prefixes cut to LENGTHS; `paired: false` drops the patch prompts. */
function mixedExamples(s: SmallA, paired: boolean): Example[] {
  const b = s.batches[0]!;
  const S = b.seq;
  return LENGTHS.map((len, i): Example => {
    const cleanIds = [...b.clean.subarray(i * S, i * S + len)];
    const base = { cleanPrefix: `#${i}`, cleanAnswer: '', cleanIds, cleanAnswerId: b.cleanAnswer[i]!, line: i + 1 };
    if (!paired) return base;
    return { ...base, patchPrefix: `#${i}'`, patchAnswer: '', patchIds: [...b.patch!.subarray(i * S, i * S + len)], patchAnswerId: b.patchAnswer![i]! };
  });
}

const alone = (examples: readonly Example[]): PromptBatch[] =>
  examples.map((_, i) => ({ ...batchExamples([examples[i]!], 1)[0]!, exampleIndex: [i] }));

const METHODS: readonly [string, AttributionMethod][] = [['attrib', { kind: 'attrib' }], ['ig', { kind: 'ig', steps: 10 }], ['exact', { kind: 'exact' }]];

for (const which of ALGORITHM_BACKENDS) describe(which.name, () => {
  const s = useSmallA(which);

  for (const paired of [true, false]) describe(paired ? 'paired' : 'single prompts', () => {
    it('per-example metric and node effects (attrib, ig, exact) equal each example alone; pads are exact zeros', async () => {
      const ops = s.model.ops;
      const subs = resolveDictionaries(s.model, s.dictionaries);
      const examples = mixedExamples(s, paired);
      const [padded] = batchExamples(examples, examples.length);
      expect(padded!.seq).toBe(6);
      expect([...padded!.lengths!]).toEqual(LENGTHS);
      await ops.scope(async () => {
        const ctx = await prepareBatch(s.model, subs, padded!, defaultMetric(padded!).bind(ops, padded!));
        const single: BatchContext[] = [];
        for (const b of alone(examples)) single.push(await prepareBatch(s.model, subs, b, defaultMetric(b).bind(ops, b)));
        const firsts = async (get: (c: BatchContext) => Tensor) => { const out: number[] = []; for (const c of single) out.push((await get(c).data())[0]!); return out; };
        expect(relMaxError(await ctx.mClean.data(), await firsts((c) => c.mClean)), 'clean metric').toBeLessThanOrEqual(TOLERANCE);
        if (paired) expect(relMaxError(await ctx.mPatch!.data(), await firsts((c) => c.mPatch!)), 'patch metric').toBeLessThanOrEqual(TOLERANCE);
        for (const [label, method] of METHODS) {
          for (const sub of subs) {
            await ops.scope(async () => {
              const F = sub.dict.dSae;
              const eff = await batchNodeEffects(s.model, ctx, sub, method);
              const act = await eff.act.data(), res = await eff.res.data();
              for (const [b, len] of LENGTHS.entries()) {
                const one = await batchNodeEffects(s.model, single[b]!, sub, method);
                const where = `${label} ${sub.name} example ${b} (length ${len})`;
                // The example's nodes (features and error) at its real positions, relative to their largest.
                const got = [...act.subarray(b * 6 * F, (b * 6 + len) * F), ...res.subarray(b * 6, b * 6 + len)];
                const want = [...await one.act.data(), ...await one.res.data()];
                expect(relMaxError(got, want), `${where}: max|Δ| / max|alone|`).toBeLessThanOrEqual(TOLERANCE);
                for (let p = len; p < 6; p++) {
                  expect(res[b * 6 + p], `${where}: error at pad ${p}`).toBe(0);
                  for (let i = 0; i < F; i++) if (act[(b * 6 + p) * F + i] !== 0) expect.fail(`${where}: feature ${i} at pad ${p} has effect ${act[(b * 6 + p) * F + i]}`);
                }
              }
            });
          }
        }
      });
    });

    it('discovery (node effects, edges, downstream nodes) in padded batches equals each example alone', async () => {
      const examples = mixedExamples(s, paired);
      const opts = { nodeThreshold: 0.1, steps: 10 };
      const want = await discover(s.model, s.dictionaries, alone(examples), opts);
      for (const batchSize of [examples.length, 3]) {
        const got = await discover(s.model, s.dictionaries, batchExamples(examples, batchSize), opts);
        expect(got.seqLen).toBeNull();
        expect(relMaxError([got.metricClean], [want.metricClean])).toBeLessThanOrEqual(TOLERANCE);
        for (const [sub, e] of want.effects) {
          const g = got.effects.get(sub)!;
          expect(relMaxError([...g.features, ...g.error], [...e.features, ...e.error]), `batch size ${batchSize}: ${sub} nodes`).toBeLessThanOrEqual(TOLERANCE);
        }
        expect(got.downstreamNodes).toEqual(want.downstreamNodes);
        expect(got.edges.length).toBe(want.edges.length);
        for (const [i, w] of want.edges.entries()) {
          const g = got.edges[i]!;
          expect([g.upstream, g.downstream]).toEqual([w.upstream, w.downstream]);
          // Same entries (row-sparse: dense over the union of keys for the comparison).
          const dense = (e: typeof w) => { const m = new Map<string, number>(); e.weight.forEach((v, k) => m.set(`${e.down[k]},${e.up[k]}`, v)); return m; };
          const a = dense(g), b = dense(w);
          const keys = [...new Set([...a.keys(), ...b.keys()])];
          expect(relMaxError(keys.map((k) => a.get(k) ?? 0), keys.map((k) => b.get(k) ?? 0)), `batch size ${batchSize}: ${w.upstream} → ${w.downstream}`).toBeLessThanOrEqual(TOLERANCE);
        }
      }
    });

    it('evaluation (mean, zero, resample ablation) in padded batches equals each example alone', async () => {
      const examples = mixedExamples(s, paired);
      const effects = refNodeEffects('ig_sum');
      for (const ablation of [{ kind: 'mean' }, { kind: 'zero' }, { kind: 'resample', seed: 3 }] as const) {
        const opts = { effects, thresholds: [0.05, 0.3], ablation };
        const want = await evaluate(s.model, s.dictionaries, alone(examples), opts);
        const got = await evaluate(s.model, s.dictionaries, batchExamples(examples, 4), opts);
        const values = (r: typeof want) => r.rows.flatMap((x) => [x.mFull, x.mEmpty, x.mCircuit, x.mComplement]);
        expect(relMaxError(values(got), values(want)), ablation.kind).toBeLessThanOrEqual(TOLERANCE);
      }
    });

    it('steered scoring in a padded batch equals each prompt alone (all positions, the last position, patch)', async () => {
      const examples = mixedExamples(s, paired);
      const features = [{ kind: 'feature', submodule: 'resid_0', index: 3, pos: null }, { kind: 'feature', submodule: 'attn_1', index: 7, pos: null }] as const;
      const ops: [string, Intervention[]][] = [
        ['scale all', interventionsFor(features, scale(-4))],
        ['scale last', interventionsFor(features, scale(-4), { kind: 'list', positions: [-1] })], // resolved per prompt length
        ...(paired ? [['patch', interventionsFor(features, patch())] as [string, Intervention[]]] : []),
      ];
      for (const [label, interventions] of ops) {
        const steering = await Steering.create(s.model, s.dictionaries, interventions);
        const [padded] = await compareBatch(s.model, [steering], batchExamples(examples, examples.length)[0] as ScoreBatch);
        const single: PromptScore[] = [];
        for (const b of alone(examples)) single.push((await compareBatch(s.model, [steering], b as ScoreBatch))[0]![0]!);
        const pick = (p: PromptScore) => [p.before.metric!, p.after.metric!, p.kl, ...p.before.top.map((t) => t.logprob), ...p.after.top.map((t) => t.logprob)];
        expect(relMaxError(padded!.flatMap(pick), single.flatMap(pick)), label).toBeLessThanOrEqual(TOLERANCE);
        expect(padded!.map((p) => p.after.top[0]!.id), label).toEqual(single.map((p) => p.after.top[0]!.id));
        expect(padded!.map((p) => [p.index, p.example]), label).toEqual(examples.map((_, i) => [i, i]));
        expect(padded!.some((p, i) => Math.abs(p.after.metric! - single[i]!.before.metric!) > 1e-3), `${label} changes something`).toBe(true);
        // With a ScoreBaseline (calibration's steps), a second scoring reuses the unsteered side and
        // the patch capture, per prompt length where the steering depends on it: same scores, fewer forwards.
        const baseline = ScoreBaseline.create();
        const batch = batchExamples(examples, examples.length)[0] as ScoreBatch;
        const forward = s.model.forward.bind(s.model);
        const counts: number[] = [];
        try {
          for (let i = 0; i < 2; i++) {
            let n = 0;
            s.model.forward = (...a: Parameters<typeof forward>) => { n++; return forward(...a); };
            const [again] = await compareBatch(s.model, [steering], batch, {}, 0, baseline);
            counts.push(n);
            expect(again!.flatMap(pick), label).toEqual(padded!.flatMap(pick));
          }
        } finally {
          s.model.forward = forward;
        }
        expect(counts[1], label).toBeLessThan(counts[0]!);
      }
    });

    it('refuses aggregation none over mixed lengths', async () => {
      const batches = batchExamples(mixedExamples(s, paired), 4);
      await expect(attribute(s.model, s.dictionaries, batches, { method: { kind: 'attrib' }, aggregation: 'none' })).rejects.toThrow(InputError);
      await expect(attribute(s.model, s.dictionaries, batches, { method: { kind: 'attrib' }, aggregation: 'none' })).rejects.toThrow(/7 different token lengths|5 different token lengths/);
    });
  });
});
