// The steering outcome (docs/concepts.md): on-target per prompt (default target: the patch
// answer; explicit targets; a case's answers), the answer's top-1 rate before steering,
// calibration of a strength for a target on-target rate, and the fluency of generated text —
// each checked against a host recompute from full logits on the small-a fixture.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, type Model } from '@sfc/core';
import { calibrate, chooseStrength } from './calibrate.js';
import { parseFeatureId } from './feature-ref.js';
import { continuationLogProbs, generationFluency, meanFluency } from './fluency.js';
import { generateSideBySide } from './generation.js';
import { ablate, interventionsFor, parsePositions, patch, scale, type Intervention } from './intervention.js';
import { score, type ScoreBatch } from './scoring.js';
import { Steering } from './steering.js';
import { targetsByCase, withTargets } from './targets.js';
import type { SweepRow } from './sweep.js';
import { hostForward, pairBatch, smallAPairs } from '../test/dense.js';
import { loadSmallA, type SmallA } from '../test/small-a.js';

let s: SmallA;
let model: Model;
let batch: ScoreBatch;
/** Every resid_1 feature and its error at the last position: patch(k) moves the unembed input k of the way. */
let patchAll: (strength?: number) => Intervention[];

beforeAll(async () => {
  s = await loadSmallA();
  model = s.model;
  batch = pairBatch(model, smallAPairs().slice(0, 8));
  patchAll = (k) => [
    ...Array.from({ length: 128 }, (_, i) => ({ submodule: 'resid_1', feature: i, op: patch(k), positions: parsePositions('-1') })),
    { submodule: 'resid_1', feature: 'err' as const, op: patch(k), positions: parsePositions('-1') },
  ];
});
afterAll(async () => { await s.dispose(); });

function argmaxRows(data: Float32Array, rows: number, vocab: number): number[] {
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let v = 1; v < vocab; v++) if (data[r * vocab + v]! > data[r * vocab + best]!) best = v;
    return best;
  });
}

describe('on target', () => {
  it('default target: the patch answer; the answer’s top-1 rate before steering', async () => {
    const steering = await Steering.create(model, s.dictionaries, patchAll());
    const { prompts, summary } = await score(model, steering, [batch]);
    const V = model.spec.dims.vocabSize;
    // Full patch at the unembed input: the steered logits are the patch prompt's.
    const patchedTop = argmaxRows((await hostForward(model, batch.patch!, batch.size, batch.seq)).logits.data, batch.size, V);
    const cleanTop = argmaxRows((await hostForward(model, batch.clean, batch.size, batch.seq)).logits.data, batch.size, V);
    prompts.forEach((p, r) => {
      expect(p.onTarget).toBe(patchedTop[r] === batch.patchAnswer![r]);
      expect(p.answerTop1Before).toBe(cleanTop[r] === batch.cleanAnswer![r]);
    });
    const rate = (f: (r: number) => boolean) => prompts.filter((_, r) => f(r)).length / prompts.length;
    expect(summary.onTargetRate).toBeCloseTo(rate((r) => patchedTop[r] === batch.patchAnswer![r]), 12);
    expect(summary.answerTop1RateBefore).toBeCloseTo(rate((r) => cleanTop[r] === batch.cleanAnswer![r]), 12);
  });

  it('explicit targets per prompt; a case’s answers; none without a target', async () => {
    const steering = await Steering.create(model, s.dictionaries, interventionsFor([parseFeatureId('resid_1/8')], scale(-4)));
    const plain = await score(model, steering, [batch]);
    const tops = plain.prompts.map((p) => p.after.top[0]!.id);
    const hit = await score(model, steering, withTargets([batch], (i) => [tops[i]!, 3]));
    expect(hit.summary.onTargetRate).toBe(1);
    const miss = await score(model, steering, withTargets([batch], (i) => [(tops[i]! + 1) % model.spec.dims.vocabSize]));
    expect(miss.summary.onTargetRate).toBe(0);
    const bare: ScoreBatch = { size: batch.size, seq: batch.seq, clean: batch.clean };
    expect((await score(model, steering, [bare])).summary.onTargetRate).toBeUndefined();
    await expect(score(model, steering, [{ ...bare, targets: [[1]] }])).rejects.toBeInstanceOf(InputError);

    const ex = [{ case: 'a', patchAnswerId: 7 }, { case: 'b', patchAnswerId: 9 }, { case: 'a', patchAnswerId: 5 }, { case: 'a', patchAnswerId: 7 }];
    const of = targetsByCase(ex);
    expect([of(0), of(1), of(2)]).toEqual([[5, 7], [9], [5, 7]]);
    expect(() => targetsByCase([{ patchAnswerId: 1 }])).toThrow(/case/);
    expect(() => targetsByCase([{ case: 'a' }])).toThrow(/no patch answer/);
    expect(() => targetsByCase([{ case: 'c', patchAnswerId: 1 }], ex)).toThrow(/case "c"/);
  });
});

describe('calibration', () => {
  const row = (strength: number, onTargetRate: number, klMean: number) => ({ strength, onTargetRate, klMean, prompts: 1, top1ChangeRate: 0 }) as SweepRow;

  it('chooses the smallest KL that reaches the target, else the best measured', () => {
    const rows = [row(0.5, 0.4, 1), row(0.75, 0.92, 3), row(1, 1, 8), row(-1, 0.95, 2.5)];
    expect(chooseStrength(rows, 0.9)).toEqual({ reached: true, best: rows[3] });
    expect(chooseStrength(rows, 0.99)).toEqual({ reached: true, best: rows[2] });
    expect(chooseStrength(rows.slice(0, 2), 0.99)).toEqual({ reached: false, best: rows[1] });
    expect(() => chooseStrength([{ ...row(1, 0, 0), onTargetRate: undefined }], 0.9)).toThrow(/target/);
  });

  it('bisects the boundary of the grid: the chosen strength reaches the target, a slightly weaker one does not', async () => {
    const steering = await Steering.create(model, s.dictionaries, patchAll());
    // Targets: the top-1 of each patch prompt (what the full patch gives), so strength 1 is all on target.
    const full = await score(model, steering, [batch]);
    const targeted = withTargets([batch], (i) => [full.prompts[i]!.after.top[0]!.id]);
    const reachable = 0.75;
    // Counting forwards: the unsteered one and the patch capture are made once for all steps.
    const forward = model.forward.bind(model);
    let forwards = 0;
    model.forward = (...a: Parameters<Model['forward']>) => { forwards++; return forward(...a); };
    let c: Awaited<ReturnType<typeof calibrate>>;
    try {
      c = await calibrate(model, steering, targeted, { targetRate: reachable, strengths: [0, 0.5, 1], refine: 5 });
    } finally {
      model.forward = forward;
    }
    expect(forwards).toBe(c.tried.length + 2);
    expect(c.reached).toBe(true);
    expect(c.best.onTargetRate).toBeGreaterThanOrEqual(reachable);
    expect(c.tried.length).toBeGreaterThan(3);
    for (const r of c.tried) if (r.onTargetRate! >= reachable) expect(r.klMean).toBeGreaterThanOrEqual(c.best.klMean);
    // The row is what scoring at that strength measures.
    const again = await score(model, steering.withStrength(c.best.strength), targeted);
    expect(again.summary.klMean).toBeCloseTo(c.best.klMean, 6);
    expect(again.summary.onTargetRate).toBe(c.best.onTargetRate);
    expect(c.tried.find((r) => r.strength === 1)!.onTargetRate).toBe(1);
    expect(c.tried.find((r) => r.strength === 0)!.klMean).toBeLessThan(1e-6);
    // The bisection closed in on the boundary: the largest failing strength is within 0.5/2⁵ of the chosen one.
    const below = c.tried.filter((r) => r.onTargetRate! < reachable && r.strength < c.best.strength).map((r) => r.strength);
    expect(c.best.strength - Math.max(...below)).toBeLessThanOrEqual(0.5 / 32 + 1e-9);
    // Out of reach: says so, and carries the best measured row.
    const impossible = await calibrate(model, steering, targeted, { targetRate: 1, strengths: [0, 0.25], refine: 0 });
    expect(impossible.tried.every((r) => r.onTargetRate! < 1)).toBe(true);
    expect(impossible.reached).toBe(false);
    expect(impossible.best.onTargetRate).toBe(Math.max(...impossible.tried.map((r) => r.onTargetRate!)));
  });

  it('needs targets, one op with a strength, and a grid for clamp/add', async () => {
    const steering = await Steering.create(model, s.dictionaries, interventionsFor([parseFeatureId('resid_1/8')], scale(1)));
    await expect(calibrate(model, steering, [{ size: batch.size, seq: batch.seq, clean: batch.clean }])).rejects.toThrow(/target/);
    const ab = await Steering.create(model, s.dictionaries, interventionsFor([parseFeatureId('resid_1/8')], ablate()));
    await expect(calibrate(model, ab, [batch])).rejects.toBeInstanceOf(InputError);
    const cl = await Steering.create(model, s.dictionaries, interventionsFor([parseFeatureId('resid_1/8')], { kind: 'clamp', value: 0 }));
    await expect(calibrate(model, cl, [batch])).rejects.toThrow(/strengths to search/);
    await expect(calibrate(model, steering, [batch], { targetRate: 0 })).rejects.toBeInstanceOf(InputError);
  });
});

describe('fluency', () => {
  it('mean log-prob of a continuation under the unsteered model matches a host recompute', async () => {
    const steering = await Steering.create(model, s.dictionaries, interventionsFor([parseFeatureId('resid_1/8')], scale(-8)));
    const text = smallAPairs()[0]!.clean;
    const sbs = await generateSideBySide(model, text, steering, { maxNewTokens: 4 });
    const [fl] = await generationFluency(model, [sbs]);
    for (const side of ['before', 'after'] as const) {
      // One last-position forward per prefix: token t predicted from the prompt and tokens < t.
      const ids = [...sbs.promptIds, ...sbs[side].ids];
      let sum = 0;
      for (const [t, id] of sbs[side].ids.entries()) {
        const n = sbs.promptIds.length + t;
        const row = (await hostForward(model, Int32Array.from(ids.slice(0, n)), 1, n)).logits.data;
        const m = Math.max(...row);
        sum += row[id]! - m - Math.log(row.reduce((z, v) => z + Math.exp(v - m), 0));
      }
      expect(fl![side]).toBeCloseTo(sum / sbs[side].ids.length, 4);
    }
    // Greedy unsteered text is the model's own choice at every step: no steered text beats it.
    expect(fl!.before!).toBeGreaterThanOrEqual(fl!.after! - 1e-6);
    expect(await continuationLogProbs(model, [{ promptIds: sbs.promptIds, ids: [] }])).toEqual([null]);
    expect(meanFluency([null, -1, -3])).toBe(-2);
    expect(meanFluency([null])).toBeNull();
  });
});
