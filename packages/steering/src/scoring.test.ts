// Steered scoring against a host recompute from the full last-position logits of a plain and a
// steered forward: metric, answer logits, top-k log-probabilities, KL, flips; sweeps reuse it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanMinusPatch, InputError, type Model } from '@sfc/core';
import { ablate, clamp, interventionsFor, parsePositions, patch, scale } from './intervention.js';
import { parseFeatureId } from './feature-ref.js';
import { compareBatch, fromCoreMetric, score, type ScoreBatch } from './scoring.js';
import { Steering } from './steering.js';
import { sweep } from './sweep.js';
import { hostForward, pairBatch, smallAPairs } from '../test/dense.js';
import { loadSmallA, type SmallA } from '../test/small-a.js';

let s: SmallA;
let model: Model;
let batch: ScoreBatch;

beforeAll(async () => {
  s = await loadSmallA();
  model = s.model;
  batch = pairBatch(model, smallAPairs().slice(0, 8));
});
afterAll(async () => { await s.dispose(); });

function logSoftmax(row: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) m = Math.max(m, row[i]!);
  let z = 0;
  for (let i = 0; i < row.length; i++) z += Math.exp(row[i]! - m);
  return Float64Array.from(row, (v) => v - m - Math.log(z));
}

const features = (list: string) => list.split(',').map(parseFeatureId);

describe('steered scoring', () => {
  it('metric, answer logits, top-k, KL and flips match a recompute from the full logits', async () => {
    const steering = await Steering.create(model, s.dictionaries, interventionsFor(features('resid_1/8,resid_1/5,resid_0/21'), scale(-6)));
    const result = await score(model, steering, [batch], { topK: 5 });
    const plain = await hostForward(model, batch.clean, batch.size, batch.seq);
    const steered = await hostForward(model, batch.clean, batch.size, batch.seq, steering.edits({ promptLength: batch.seq }));
    const V = model.spec.dims.vocabSize;
    expect(result.prompts).toHaveLength(8);
    let flips = 0;
    for (const p of result.prompts) {
      const r = p.index;
      const lb = plain.logits.data.subarray(r * V, (r + 1) * V), la = steered.logits.data.subarray(r * V, (r + 1) * V);
      const [c, q] = [batch.cleanAnswer![r]!, batch.patchAnswer![r]!];
      expect(p.before.cleanLogit).toBeCloseTo(lb[c]!, 5);
      expect(p.after.patchLogit).toBeCloseTo(la[q]!, 5);
      expect(p.before.metric).toBeCloseTo(lb[q]! - lb[c]!, 5); // discovery's logit[patch] − logit[clean]
      expect(p.after.metric).toBeCloseTo(la[q]! - la[c]!, 5);
      expect(p.after.logitDiff).toBeCloseTo(la[c]! - la[q]!, 5);
      const [pb, pa] = [logSoftmax(lb), logSoftmax(la)];
      let kl = 0;
      for (let i = 0; i < V; i++) kl += Math.exp(pb[i]!) * (pb[i]! - pa[i]!);
      expect(p.kl).toBeCloseTo(kl, 5);
      expect(p.kl).toBeGreaterThanOrEqual(0);
      const order = [...pa.keys()].sort((x, y) => pa[y]! - pa[x]!);
      expect(p.after.top.map((t) => t.id)).toEqual(order.slice(0, 5));
      expect(p.after.top[0]!.logprob).toBeCloseTo(pa[order[0]!]!, 5);
      expect(p.after.top[0]!.token).toBe(model.tokenizer.idToToken(order[0]!) ?? `<${order[0]}>`);
      const flipped = (lb[c]! > lb[q]!) !== (la[c]! > la[q]!);
      expect(p.flipped).toBe(flipped);
      flips += flipped ? 1 : 0;
    }
    expect(result.summary.flipRate).toBeCloseTo(flips / 8, 10);
    expect(result.summary.klMean).toBeGreaterThan(0.01);
    expect(result.summary.metricName).toBe('logit-diff');
    expect(result.summary.metricBefore).toBeCloseTo(result.prompts.reduce((t, p) => t + p.before.metric!, 0) / 8, 6);
  });

  it('an identity steering (scale 1) changes nothing: KL 0, same metric', async () => {
    const steering = await Steering.create(model, s.dictionaries, interventionsFor(features('resid_1/8,attn_0/err'), scale(1)));
    const { prompts, summary } = await score(model, steering, [batch]);
    for (const p of prompts) {
      expect(p.after.metric).toBeCloseTo(p.before.metric!, 5);
      expect(Math.abs(p.kl)).toBeLessThan(1e-5);
      expect(p.flipped).toBe(false);
    }
    expect(summary.flipRate).toBe(0);
    // Data batches are grouped by length: rows keep their example index.
    const regrouped = await score(model, steering, [{ ...batch, exampleIndex: [7, 6, 5, 4, 3, 2, 1, 0] }]);
    expect(regrouped.prompts.map((p) => p.example)).toEqual([7, 6, 5, 4, 3, 2, 1, 0]);
  });

  it('patch ops take the batch’s own patch prompts; custom core metrics; prompts without answers', async () => {
    // Patching every feature and the error of the last residual at the last position makes the
    // clean run's last-position logits those of the patch prompt (resid_1 is the unembed input).
    const all = Array.from({ length: 128 }, (_, i) => ({ submodule: 'resid_1', feature: i, op: patch(), positions: parsePositions('-1') }));
    const steering = await Steering.create(model, s.dictionaries, [...all, { submodule: 'resid_1', feature: 'err' as const, op: patch(), positions: parsePositions('-1') }]);
    const { prompts } = await score(model, steering, [batch], { metric: fromCoreMetric(cleanMinusPatch()) });
    const patched = await hostForward(model, batch.patch!, batch.size, batch.seq);
    const V = model.spec.dims.vocabSize;
    for (const p of prompts) {
      const lp = patched.logits.data.subarray(p.index * V, (p.index + 1) * V);
      expect(p.after.metric).toBeCloseTo(lp[batch.cleanAnswer![p.index]!]! - lp[batch.patchAnswer![p.index]!]!, 4);
    }
    const bare: ScoreBatch = { size: batch.size, seq: batch.seq, clean: batch.clean };
    const c = await Steering.create(model, s.dictionaries, interventionsFor(features('mlp_0/3'), clamp(5)));
    const r = await score(model, c, [bare]);
    expect(r.prompts[0]!.before.metric).toBeUndefined();
    expect(r.summary.flipRate).toBeUndefined();
    expect(r.summary.klMean).toBeGreaterThan(0);
    await expect(score(model, c, [bare], { metric: fromCoreMetric(cleanMinusPatch()) })).rejects.toBeInstanceOf(InputError);
    const needsPatch = await Steering.create(model, s.dictionaries, interventionsFor(features('mlp_0/3'), patch()));
    await expect(score(model, needsPatch, [bare])).rejects.toThrow(/patch prompt/);
    await expect(score(model, c, [])).rejects.toBeInstanceOf(InputError);
  });

  it('leaks no tensors', async () => {
    const steering = await Steering.create(model, s.dictionaries, interventionsFor(features('resid_1/8'), scale(3)));
    const n0 = model.ops.numTensors();
    await score(model, steering, [batch]);
    expect(model.ops.numTensors()).toBe(n0);
  });
});

describe('sweeps', () => {
  it('each row equals scoring at that strength; strength 1 of scale is the unsteered model', async () => {
    const base = await Steering.create(model, s.dictionaries, interventionsFor(features('resid_1/8,resid_1/5,resid_0/21'), scale(0)));
    const half = pairBatch(model, smallAPairs().slice(8, 12));
    const { rows } = await sweep(model, base, [-4, 1, 6], [batch, half]);
    expect(rows.map((r) => r.strength)).toEqual([-4, 1, 6]);
    for (const row of rows) {
      const direct = await score(model, base.withStrength(row.strength), [batch, half]);
      expect(row.prompts).toBe(12);
      expect(row.metricAfter).toBeCloseTo(direct.summary.metricAfter!, 6);
      expect(row.flipRate).toBe(direct.summary.flipRate);
      expect(row.klMean).toBeCloseTo(direct.summary.klMean, 6);
    }
    expect(rows[1]!.metricAfter).toBeCloseTo(rows[1]!.metricBefore!, 5);
    expect(rows[1]!.flipRate).toBe(0);
    expect(rows[0]!.metricAfter).not.toBeCloseTo(rows[2]!.metricAfter!, 2);
    // One unsteered forward per batch is shared: compareBatch returns one list per variant.
    const per = await compareBatch(model, [base.withStrength(2), base.withStrength(3)], batch);
    expect(per).toHaveLength(2);
    expect(per[0]![0]!.before).toEqual(per[1]![0]!.before);
  });

  it('patch strength: 0 is the unsteered model, 1 the full patch', async () => {
    const base = await Steering.create(model, s.dictionaries, interventionsFor(features('resid_1/8,resid_0/21'), patch()));
    const { rows } = await sweep(model, base, [0, 1], [batch]);
    const full = await score(model, base, [batch]);
    expect(rows[0]!.klMean).toBeLessThan(1e-6);
    expect(rows[1]!.klMean).toBeCloseTo(full.summary.klMean, 6);
    expect(rows[1]!.metricAfter).toBeCloseTo(full.summary.metricAfter!, 5);
  });

  it('nothing to sweep is a typed error', async () => {
    const ab = await Steering.create(model, s.dictionaries, interventionsFor(features('resid_1/8'), ablate()));
    expect(() => ab.withStrength(2)).toThrow(InputError);
  });
});
