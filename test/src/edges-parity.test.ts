// Edge parity with the PyTorch reference (fixtures/small-a/ref/ig_*.json `edges`) on every
// algorithm backend of backends.ts (tfjs-wasm, onnx): every edge pair (docs/concepts.md, “Edges”) plus
// resid_last → y, aggregation sum and none. Entries above the reference's 2e-3 floor must agree
// at |a − r| ≤ 1e-3·|r| + 1e-5 (and max|Δ|/max|ref| ≤ 1e-3 per pair), the row and nonzero counts
// and the sums must match, and so must the downstream nodes selected per example and position
// and the thresholded circuit. Sequential-residual models are checked by finite differences.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildCircuit, discover, edgePairs, Model, PythonRandom, singlePromptBatch,
  type Dictionary, type DiscoveryResult, type PromptBatch, type Tensor,
} from '@sfc/core';
import { ReluDictionary } from '@sfc/dictionaries';
import { ALGORITHM_BACKENDS } from './backends.js';
import { checkCircuit, checkDownstreamNodes, checkEdgePairs, checkEdgeSets, checkLastToY } from './edge-compare.js';
import { FIXTURES } from './paths.js';
import { ref, useSmallA, type Json } from './small-a.js';

for (const which of ALGORITHM_BACKENDS) describe(which.name, () => {
  const s = useSmallA(which);

  /** discover with the reference's options; each aggregation runs once and is shared by the tests below. */
  const refOptions = (aggregation: 'sum' | 'none') => {
    const expected = ref(`ig_${aggregation}`);
    return { aggregation, nodeThreshold: expected.node_threshold as number, steps: expected.steps as number, maxRows: 512 };
  };
  const runs = new Map<string, Promise<DiscoveryResult>>();
  const refRun = (aggregation: 'sum' | 'none'): Promise<DiscoveryResult> => {
    if (!runs.has(aggregation)) runs.set(aggregation, discover(s.model, s.dictionaries, s.batches, refOptions(aggregation)));
    return runs.get(aggregation)!;
  };

  it('a discover run leaves no tensor alive', async () => {
    await refRun('sum'); // also builds what dictionaries build lazily and keep (transposes)
    const before = s.backend.ops.numTensors();
    // The none run normally starts here (this is the first test); if it already ran, run it again.
    if (runs.has('none')) await discover(s.model, s.dictionaries, s.batches, refOptions('none'));
    else await refRun('none');
    expect(s.backend.ops.numTensors(), 'tensors left alive by discover').toBe(before);
  });

  for (const aggregation of ['sum', 'none'] as const) {
    describe(`edges match feature-circuits (small-a, aggregation ${aggregation})`, () => {
      const expected = ref(`ig_${aggregation}`);
      let result: DiscoveryResult;
      beforeAll(async () => { result = await refRun(aggregation); });

      it('computes every edge pair (parallel residual)', () => {
        checkEdgePairs(s.model, result, expected);
      });

      it('selects the same downstream nodes per example and position', () => {
        checkDownstreamNodes(result, expected);
      });

      it('matches every edge entry, count and sum', () => {
        expect(checkEdgeSets(result, expected)).toBeGreaterThan(0);
      });

      it('resid_last → y is the node effect of the last resid', () => {
        checkLastToY(result, expected);
      });

      it('thresholds to the same circuit', () => {
        checkCircuit(result, expected);
      });
    });
  }

  describe('discovery options', () => {
    it('nodes only, and a subset of submodules (no embed: no edges into layer 0 from below); no tensor left alive', async () => {
      // The full run first: it also builds what dictionaries build lazily and keep (transposes).
      const full = await refRun('sum');
      const before = s.backend.ops.numTensors();
      const nodes = await discover(s.model, s.dictionaries, s.batches, { nodesOnly: true });
      expect(nodes.edges).toEqual([]);
      const c = buildCircuit(nodes);
      expect(c.nodesOnly).toBe(true);
      expect(c.edges).toEqual([]);
      expect(c.nodes.length).toBeGreaterThan(1);
      const noEmbed = await discover(s.model, s.dictionaries, s.batches, { ...refOptions('sum'), submodules: ['attn_0', 'mlp_0', 'resid_0', 'attn_1', 'mlp_1', 'resid_1'] });
      expect(s.backend.ops.numTensors(), 'tensors left alive by discover').toBe(before);
      const pairs = noEmbed.edges.map((e) => `${e.upstream}>${e.downstream}`);
      expect(pairs).toHaveLength(1 + 2 + 5);
      expect(pairs.some((p) => p.startsWith('embed'))).toBe(false);
      // The remaining edges do not depend on which other submodules were included.
      const a = noEmbed.edges.find((e) => e.upstream === 'resid_0' && e.downstream === 'attn_1')!;
      const b = full.edges.find((e) => e.upstream === 'resid_0' && e.downstream === 'attn_1')!;
      expect(Array.from(a.weight)).toEqual(Array.from(b.weight));
    });
  });

  // Sequential-residual models have no PyTorch edge reference here, so their edges are checked
  // against the definition by central finite differences: for a downstream feature (s_d, k) and an
  // upstream direction v at position s_u (a decoder row scaled by Δf, or the error delta Δr),
  //   weight = (Ḡ_D[s_d]·W_dec_D[k]) · ∂f_k(x_D(x_U + εv))/∂ε,
  // with the other inputs of D's segment (the midstream submodules) held at their clean values.
  // Ḡ_D[s_d]·W_dec_D[k] comes from the node effect: effect / Δf (one example, aggregation none).
  describe.each(['neox-seq-r100', 'gpt2-b'])('sequential residual edges by finite differences (%s)', (name) => {
    let seq: { model: Model; dictionaries: Map<string, Dictionary> };
    let result: DiscoveryResult;
    let batch: PromptBatch;
    beforeAll(async () => {
      const model = await Model.load(join(FIXTURES, 'models', name), s.backend);
      const rng = new PythonRandom(5);
      const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.random())) * Math.cos(2 * Math.PI * rng.random());
      const d = model.spec.dims.dModel, F = 24;
      const dictionaries = new Map<string, Dictionary>();
      for (const sub of model.submodules) {
        const wDec = Float32Array.from({ length: F * d }, gauss);
        for (let i = 0; i < F; i++) {
          const row = wDec.subarray(i * d, (i + 1) * d);
          const n = Math.hypot(...row);
          row.forEach((v, j) => { row[j] = v / n; });
        }
        const wEnc = new Float32Array(d * F);
        for (let i = 0; i < F; i++) for (let j = 0; j < d; j++) wEnc[j * F + i] = wDec[i * d + j]! + 0.3 * gauss();
        dictionaries.set(sub.name, new ReluDictionary(model.ops, {
          W_enc: { shape: [d, F], data: wEnc }, b_enc: { shape: [F], data: Float32Array.from({ length: F }, () => 0.1 * gauss()) },
          W_dec: { shape: [F, d], data: wDec }, b_dec: { shape: [d], data: Float32Array.from({ length: d }, () => 0.05 * gauss()) },
          applyBDecToInput: true,
        }, { source: `random SAE for ${sub.name}` }));
      }
      seq = { model, dictionaries };
      const clean = [5, 9, 12, 7, 20];
      const patch = [5, 14, 12, 7, 20];
      batch = singlePromptBatch([clean], [30]);
      batch = { ...batch, patch: Int32Array.from(patch), patchAnswer: Int32Array.of(31) };
      result = await discover(model, dictionaries, [batch], { aggregation: 'none', nodeThreshold: 1e-3 });
    });
    afterAll(() => {
      if (!seq) return;
      for (const dd of seq.dictionaries.values()) dd.dispose();
      seq.model.dispose();
    });

    it('has the sequential pairs, attn_l → mlp_l included', () => {
      const pairs = new Set(edgePairs(seq.model, result.submodules).map((p) => `${p.upstream}>${p.downstream}`));
      for (let l = 0; l < seq.model.spec.dims.nLayers; l++) {
        const prev = l === 0 ? 'embed' : `resid_${l - 1}`;
        for (const p of [`mlp_${l}>resid_${l}`, `attn_${l}>resid_${l}`, `attn_${l}>mlp_${l}`, `${prev}>mlp_${l}`, `${prev}>attn_${l}`, `${prev}>resid_${l}`]) {
          expect(pairs.has(p), p).toBe(true);
        }
      }
      expect(pairs.size).toBe(6 * seq.model.spec.dims.nLayers);
    });

    it('edge weights are the directional derivatives they claim to be', async () => {
      const { model, dictionaries } = seq;
      const ops = model.ops;
      const S = batch.seq;
      const clean = await model.forward(model.tokens(batch.clean, 1, S), { logits: false });
      const patch = await model.forward(model.tokens(batch.patch!, 1, S), { logits: false });
      const host = async (t: Tensor) => Float32Array.from(await t.data());
      const state = async (sub: string, values: Map<string, Tensor>) => {
        const dict = dictionaries.get(sub)!;
        const x = values.get(sub)!;
        const f = dict.encode(x);
        return { x: await host(x), f: await host(f), r: await host(ops.sub(x, dict.decode(f))) };
      };
      const segOf = (name: string) => model.spec.segments.find((g) => g.name === name)!;
      // f_k at (s_d) of D after moving U's output by t·v at position s_u, midstream held clean.
      const fAfter = async (down: string, up: string, sU: number, v: Float32Array, t: number, sD: number, k: number): Promise<number> => ops.scope(async () => {
        const d = v.length;
        const xu = Float32Array.from(await clean.values.get(up)!.data());
        for (let i = 0; i < d; i++) xu[sU * d + i]! += t * v[i]!;
        const seg = segOf(down);
        const inputs = seg.inputs.map((n) => (n === up ? ops.tensor(xu, [1, S, d]) : clean.values.get(n)!));
        const xd = seg.kind === 'sum' ? inputs.reduce((a, b) => ops.add(a, b)) : await model.runtime.forward(down, inputs);
        const f = await dictionaries.get(down)!.encode(xd).data();
        return f[sD * dictionaries.get(down)!.dSae + k]!;
      });
      let checked = 0;
      for (const set of result.edges) {
        if (set.downstream === 'y') continue;
        const FD = set.downNodes - 1, FU = set.upNodes - 1;
        const dState = await state(set.downstream, clean.values), dPatch = await state(set.downstream, patch.values);
        const uState = await state(set.upstream, clean.values), uPatch = await state(set.upstream, patch.values);
        const effect = result.effects.get(set.downstream)!;
        const wDecU = await host(dictionaries.get(set.upstream)!.decoderRows());
        const d = model.spec.dims.dModel;
        // The largest entries of feature rows, up to 8 per pair.
        const order = [...set.weight.keys()].filter((n) => set.down[n]! % set.downNodes < FD)
          .sort((a, b) => Math.abs(set.weight[b]!) - Math.abs(set.weight[a]!)).slice(0, 8);
        for (const n of order) {
          const sD = Math.floor(set.down[n]! / set.downNodes), k = set.down[n]! % set.downNodes;
          const sU = Math.floor(set.up[n]! / set.upNodes), j = set.up[n]! % set.upNodes;
          const dfD = dPatch.f[sD * FD + k]! - dState.f[sD * FD + k]!;
          const coef = effect.features[sD * FD + k]! / dfD;
          let v: Float32Array, scale: number;
          if (j < FU) { v = wDecU.slice(j * d, (j + 1) * d); scale = uPatch.f[sU * FU + j]! - uState.f[sU * FU + j]!; }
          else { v = Float32Array.from({ length: d }, (_, i) => uPatch.r[sU * d + i]! - uState.r[sU * d + i]!); scale = 1; }
          const eps = 1e-2 / Math.max(1e-6, Math.hypot(...v));
          const fp = await fAfter(set.downstream, set.upstream, sU, v, eps, sD, k);
          const fm = await fAfter(set.downstream, set.upstream, sU, v, -eps, sD, k);
          if (fp === 0 || fm === 0) continue; // a ReLU kink inside the stencil
          const want = coef * ((fp - fm) / (2 * eps)) * scale;
          expect(Math.abs(set.weight[n]! - want), `${set.upstream}→${set.downstream} [${sD},${k}]←[${sU},${j}]: ${set.weight[n]} vs ${want}`)
            .toBeLessThanOrEqual(2e-2 * Math.abs(want) + 1e-4);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(40);
    });
  });
});
