// Circuit evaluation on fixtures/small-a: the ablation semantics of feature-circuits'
// ablation.py, checked against direct model runs written here with plain edits (not through the
// ablation code), plus the faithfulness / completeness bookkeeping, on every algorithm backend of
// backends.ts (tfjs-wasm, onnx), and the two backends' faithfulness rows against each other.
import { describe, expect, it } from 'vitest';
import { evaluate, type Ablation, type Edit, type ErrorHandling, type NodeEffects, type Tensor } from '@sfc/core';
import { ALGORITHM_BACKENDS } from './backends.js';
import { ref, refNodeEffects, useSmallA, type SmallA } from './small-a.js';

/** Mean over examples of logit[clean] − logit[patch] at the last position, with `edits`, computed from full-vocabulary logits. */
async function directMetric(s: SmallA, edits: Map<string, Edit>): Promise<number> {
  const b = s.batches[0]!;
  const ops = s.model.ops;
  return ops.scope(async () => {
    const run = await s.model.forward(s.model.tokens(b.clean, b.size, b.seq), { edits, logits: { lastOnly: true } });
    const l = await run.logits!.data();
    const V = run.logits!.shape[1]!;
    let total = 0;
    for (let i = 0; i < b.size; i++) total += l[i * V + b.cleanAnswer[i]!]! - l[i * V + b.patchAnswer![i]!]!;
    return total / b.size;
  });
}

/** Effects that put every node of `sub` at `value` (so a threshold below keeps all, above drops all). */
function uniform(s: SmallA, sub: string, value: number): NodeEffects {
  const F = s.dictionaries.get(sub)!.dSae;
  return { submodule: sub, dSae: F, positions: null, features: new Float64Array(F).fill(value), error: Float64Array.of(value) };
}

const closeTo = (a: number, b: number, tol = 1e-4) => expect(Math.abs(a - b), `${a} vs ${b}`).toBeLessThanOrEqual(tol);

// small-a on every backend, loaded once for the file: the cross-backend test uses them all.
const setups = new Map(ALGORITHM_BACKENDS.map((b) => [b.name, useSmallA(b)]));

for (const which of ALGORITHM_BACKENDS) describe(which.name, () => {
  const s = setups.get(which.name)!;

  describe('evaluation (ablation.py semantics)', () => {
    it('m̄(M) is the unmodified clean metric logit[clean] − logit[patch]', async () => {
      const r = await evaluate(s.model, s.dictionaries, s.batches, { effects: new Map([['resid_1', uniform(s, 'resid_1', 1)]]), thresholds: [0.5] });
      closeTo(r.rows[0]!.mFull, -ref('ig_sum').metric.clean_mean);
    });

    it('a circuit keeping every node is the unmodified model; its complement ablates every node', async () => {
      // Every node kept (the splice is skipped) against the full model; the complement (every node
      // ablated: the splice is the ablation value, no encode) against the empty circuit.
      const effects = new Map(['resid_0', 'attn_1', 'mlp_1'].map((n) => [n, uniform(s, n, 1)]));
      const r = await evaluate(s.model, s.dictionaries, s.batches, { effects, thresholds: [0.5, 2], ablation: { kind: 'mean' } });
      const [all, none] = r.rows as [typeof r.rows[0], typeof r.rows[0]];
      closeTo(all.mCircuit, all.mFull, 1e-5);
      closeTo(all.mComplement, all.mEmpty, 1e-5);
      expect(all.faithfulness).toBeCloseTo(1, 5);
      closeTo(none.mCircuit, none.mEmpty, 1e-5);
      closeTo(none.mComplement, none.mFull, 1e-5);
    });

    it('zero ablation of every node with errors removed replaces the output by the decoder bias', async () => {
      const d = s.dictionaries.get('resid_1')!;
      const r = await evaluate(s.model, s.dictionaries, s.batches, {
        effects: new Map([['resid_1', uniform(s, 'resid_1', 1)]]), thresholds: [2], ablation: { kind: 'zero' }, handleErrors: 'remove',
      });
      const ops = s.model.ops;
      const want = await directMetric(s, new Map([['resid_1', (x: Tensor) => ops.add(ops.zeros(x.shape), d.decoderBias())]]));
      closeTo(r.rows[0]!.mEmpty, want);
      expect(r.rows[0]!.nodes).toBe(0);
      closeTo(r.rows[0]!.mCircuit, r.rows[0]!.mEmpty, 0);
      expect(r.rows[0]!.faithfulness).toBe(0);
    });

    it('mean ablation with errors removed gives the per-position mean over the patch prompts', async () => {
      const ops = s.model.ops;
      const b = s.batches[0]!;
      const patchRun = await s.model.forward(s.model.tokens(b.patch!, b.size, b.seq), { logits: false });
      const x = patchRun.values.get('resid_1')!;
      const [B, S, D] = x.shape as number[];
      const v = await x.data();
      const mean = new Float32Array(S! * D!);
      for (let i = 0; i < B!; i++) for (let j = 0; j < S! * D!; j++) mean[j]! += v[i * S! * D! + j]! / B!;
      const meanT = ops.tensor(mean, [1, S!, D!]);
      const want = await directMetric(s, new Map([['resid_1', (y: Tensor) => ops.add(ops.zeros(y.shape), meanT)]]));
      const r = await evaluate(s.model, s.dictionaries, s.batches, {
        effects: new Map([['resid_1', uniform(s, 'resid_1', 1)]]), thresholds: [2], ablation: { kind: 'mean' }, handleErrors: 'remove',
      });
      closeTo(r.rows[0]!.mEmpty, want);
    });

    it('keeps circuit features at their clean values, errors live with keep, the rest at the patch mean', async () => {
      const ops = s.model.ops;
      const d = s.dictionaries.get('resid_1')!;
      const b = s.batches[0]!;
      // The circuit: the 5 features of resid_1 with the largest |ig effect|.
      const ig = ref('ig_sum').nodes.resid_1.act as number[];
      const top = [...ig.keys()].sort((i, j) => Math.abs(ig[j]!) - Math.abs(ig[i]!)).slice(0, 5);
      const effects = uniform(s, 'resid_1', 0);
      for (const i of top) effects.features[i] = 1;
      // Expected: f' = where(keep, f_clean, mean_b f_patch), x' = dec(f') + r_clean.
      const patchRun = await s.model.forward(s.model.tokens(b.patch!, b.size, b.seq), { logits: false });
      const fp = d.encode(patchRun.values.get('resid_1')!);
      const fMean = ops.mean(fp, 0, true);
      const keep = ops.tensor(Float32Array.from({ length: d.dSae }, (_, i) => (top.includes(i) ? 1 : 0)), [d.dSae]);
      const want = await directMetric(s, new Map([['resid_1', (x: Tensor) => {
        const f = d.encode(x);
        const r = ops.sub(x, d.decode(f));
        return ops.add(d.decode(ops.where(ops.add(ops.zeros(f.shape), keep), f, ops.add(ops.zeros(f.shape), fMean))), r);
      }]]));
      const r = await evaluate(s.model, s.dictionaries, s.batches, { effects: new Map([['resid_1', effects]]), thresholds: [0.5], handleErrors: 'keep' });
      expect(r.rows[0]!.nodes).toBe(5);
      closeTo(r.rows[0]!.mCircuit, want);
    });

    it('ablates in forward order: a later submodule sees the already ablated earlier one', async () => {
      const ops = s.model.ops;
      const d0 = s.dictionaries.get('resid_0')!;
      // resid_0 fully zero-ablated (error included), resid_1 fully kept: equals running with resid_0 := b_dec.
      const effects = new Map([['resid_0', uniform(s, 'resid_0', 0)], ['resid_1', uniform(s, 'resid_1', 1)]]);
      const r = await evaluate(s.model, s.dictionaries, s.batches, { effects, thresholds: [0.5], ablation: { kind: 'zero' } });
      const want = await directMetric(s, new Map([['resid_0', (x: Tensor) => ops.add(ops.zeros(x.shape), d0.decoderBias())]]));
      closeTo(r.rows[0]!.mCircuit, want);
      // The complement keeps resid_0 and ablates every resid_1 node: resid_1 := b_dec.
      const d1 = s.dictionaries.get('resid_1')!;
      closeTo(r.rows[0]!.mComplement, await directMetric(s, new Map([['resid_1', (x: Tensor) => ops.add(ops.zeros(x.shape), d1.decoderBias())]])));
    });

    it('faithfulness and completeness over thresholds (ig effects), start layer, resample', async () => {
      // The reference's ig effects: attribution-parity checks that attribute() gives these (to
      // 1e-3), and reading them saves an ig run per backend.
      const ig = { effects: refNodeEffects('ig_sum') };
      const thresholds = [0, 0.05, 0.1, 0.2, 1e9];
      const r = await evaluate(s.model, s.dictionaries, s.batches, { effects: ig.effects, thresholds });
      expect(r.rows.map((x) => x.threshold)).toEqual(thresholds);
      // embed is not ablated by default, as in feature-circuits' ablation.py (include_embed=False).
      expect(r.submodules).toEqual(['attn_0', 'mlp_0', 'resid_0', 'attn_1', 'mlp_1', 'resid_1']);
      const withEmbed = await evaluate(s.model, s.dictionaries, s.batches, { effects: ig.effects, thresholds: [0.1], includeEmbed: true });
      expect(withEmbed.submodules).toEqual(['embed', 'attn_0', 'mlp_0', 'resid_0', 'attn_1', 'mlp_1', 'resid_1']);
      for (const row of r.rows) {
        closeTo(row.faithfulness!, (row.mCircuit - row.mEmpty) / (row.mFull - row.mEmpty), 1e-9);
        closeTo(row.completeness!, (row.mComplement - row.mEmpty) / (row.mFull - row.mEmpty), 1e-9);
      }
      const counts = r.rows.map((x) => x.nodes);
      expect([...counts].sort((a, b) => b - a)).toEqual(counts); // higher threshold, fewer nodes
      const all = r.rows[0]!, none = r.rows[r.rows.length - 1]!;
      expect(none.nodes).toBe(0);
      expect(none.faithfulness).toBe(0);
      closeTo(none.completeness!, 1, 1e-3);  // complement of nothing = everything kept
      closeTo(all.faithfulness!, 1, 0.05);   // every node with a nonzero effect kept
      expect(Math.abs(all.mFull - all.mEmpty)).toBeGreaterThan(0.5);

      const late = await evaluate(s.model, s.dictionaries, s.batches, { effects: ig.effects, thresholds: [0.1], startLayer: 1 });
      expect(late.submodules).toEqual(['attn_1', 'mlp_1', 'resid_1']);
      const a = await evaluate(s.model, s.dictionaries, s.batches, { effects: ig.effects, thresholds: [0.1], ablation: { kind: 'resample', seed: 3 } });
      const b = await evaluate(s.model, s.dictionaries, s.batches, { effects: ig.effects, thresholds: [0.1], ablation: { kind: 'resample', seed: 3 } });
      expect(a.rows).toEqual(b.rows);
      expect(a.rows[0]!.mEmpty).not.toBe(r.rows[2]!.mEmpty);
      expect(s.model.ops.numTensors()).toBeLessThan(200);
    });
  });
});

describe('evaluate on small-a: onnx and tfjs-wasm agree', () => {
  // Both get the same effects (the reference's), so the circuits are identical node for node and
  // any difference comes from evaluate's forward passes on each backend.
  const variants: [string, 'sum' | 'none', Ablation, ErrorHandling][] = [
    ['mean ablation, errors as features (sum effects)', 'sum', { kind: 'mean' }, 'default'],
    ['resample, errors removed (sum effects)', 'sum', { kind: 'resample', seed: 3 }, 'remove'],
    ['zero ablation, errors kept (per-position effects)', 'none', { kind: 'zero' }, 'keep'],
  ];
  it.each(variants)('%s: faithfulness rows within 1e-4', async (_label, aggregation, ablation, handleErrors) => {
    const so = setups.get('onnx')!, st = setups.get('tfjs-wasm')!;
    const effects = refNodeEffects(`ig_${aggregation}`);
    // From ~all nodes down to a handful: four different circuits.
    const thresholds = [0, 0.01, 0.1, 0.3];
    const options = { effects, thresholds, ablation, handleErrors };
    const a = await evaluate(so.model, so.dictionaries, so.batches, options);
    const b = await evaluate(st.model, st.dictionaries, st.batches, options);
    expect(a.rows.map((r) => r.nodes)).toEqual(b.rows.map((r) => r.nodes));
    expect(new Set(a.rows.map((r) => r.nodes)).size, 'thresholds giving distinct circuits').toBe(thresholds.length);
    for (let i = 0; i < thresholds.length; i++) {
      const x = a.rows[i]!, y = b.rows[i]!;
      for (const k of ['mFull', 'mEmpty', 'mCircuit', 'mComplement', 'faithfulness', 'completeness'] as const) {
        expect(x[k], `threshold ${thresholds[i]} ${k}`).not.toBeNull();
        expect(Math.abs(x[k]! - y[k]!), `threshold ${thresholds[i]} ${k}: onnx ${x[k]} vs tfjs ${y[k]}`).toBeLessThanOrEqual(1e-4);
      }
    }
  });
});
