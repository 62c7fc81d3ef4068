// A submodule whose width is not the model width (Gemma 2's attn_l: o_proj's input, 4 heads × 12 =
// 48 wide in fixtures/models/gemma2-a, d_model 32) through evaluation and the model chain, on
// every algorithm backend: ablation semantics and steering checked against direct runs with plain
// edits, intermediate values (`attn_l.out`) recomputed by forwardFrom, segment VJPs composed
// through them, and no `embed` node. Node effects (attrib, ig, exact) and edges on the same model are
// checked against PyTorch in edges-parity-models.test.ts.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate, Model, type Dictionary, type Edit, type NodeEffects, type PromptBatch, type Tensor } from '@sfc/core';
import { loadDictionarySet } from '@sfc/dictionaries';
import { add, interventionsFor, scale, Steering } from '@sfc/steering';
import { ALGORITHM_BACKENDS, type OpenBackend } from './backends.js';
import { MODELS } from './paths.js';
import { type Json } from './small-a.js';
import { readFileSync } from 'node:fs';

const DIR = join(MODELS, 'gemma2-a');
const data = JSON.parse(readFileSync(join(DIR, 'edges', 'data.json'), 'utf8')) as Json;
const batch: PromptBatch = {
  size: data.n_examples, seq: data.seq_len, clean: Int32Array.from(data.clean_ids.flat()), patch: Int32Array.from(data.patch_ids.flat()),
  cleanAnswer: Int32Array.from(data.clean_answer), patchAnswer: Int32Array.from(data.patch_answer), exampleIndex: [...Array(data.n_examples).keys()],
};

const closeTo = (a: number, b: number, tol = 1e-4) => expect(Math.abs(a - b), `${a} vs ${b}`).toBeLessThanOrEqual(tol);

for (const which of ALGORITHM_BACKENDS) describe(`${which.name}: gemma2-a attn_l (48 wide, d_model 32)`, () => {
  let opened: OpenBackend;
  let model: Model;
  let dicts: Map<string, Dictionary>;
  beforeAll(async () => {
    opened = await which.open();
    model = await Model.load(DIR, opened.backend);
    dicts = await loadDictionarySet(join(DIR, 'edges', 'saes'), model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel });
  });
  afterAll(async () => {
    for (const d of dicts?.values() ?? []) d.dispose();
    model?.dispose();
    await opened?.close();
  });

  /** Mean over examples of logit[clean] − logit[patch] at the last position, with `edits`. */
  async function directMetric(edits: Map<string, Edit>): Promise<number> {
    return model.ops.scope(async () => {
      const run = await model.forward(model.tokens(batch.clean, batch.size, batch.seq), { edits, logits: { lastOnly: true } });
      const l = await run.logits!.data();
      const V = run.logits!.shape[1]!;
      let total = 0;
      for (let i = 0; i < batch.size; i++) total += l[i * V + batch.cleanAnswer[i]!]! - l[i * V + batch.patchAnswer![i]!]!;
      return total / batch.size;
    });
  }

  function uniform(sub: string, value: number): NodeEffects {
    const F = dicts.get(sub)!.dSae;
    return { submodule: sub, dSae: F, positions: null, features: new Float64Array(F).fill(value), error: Float64Array.of(value) };
  }

  it('lists attn_l with its own width and hook, and no embed submodule', () => {
    expect(model.submodules[0]!.name).toBe('attn_0');
    expect(model.submodules.find((s) => s.name === 'attn_1')).toMatchObject({ width: 48, hook: 'blocks.1.attn.hook_z' });
    expect(model.submodules.find((s) => s.name === 'mlp_1')).toMatchObject({ width: 32, hook: 'blocks.1.hook_mlp_out' });
    expect(dicts.get('attn_1')!.dIn).toBe(48);
    expect(model.inputsOf('resid_1')).toEqual(['resid_0', 'attn_1', 'mlp_1']);
    expect(model.inputsOf('mlp_1')).toEqual(['resid_0', 'attn_1']);
    expect(model.inputsOf('attn_0')).toEqual([]);
  });

  it('zero-ablating attn_1 with errors removed equals running with attn_1 := its decoder bias', async () => {
    const d = dicts.get('attn_1')!;
    const ops = model.ops;
    const r = await evaluate(model, dicts, [batch], { effects: new Map([['attn_1', uniform('attn_1', 1)]]), thresholds: [2], ablation: { kind: 'zero' }, handleErrors: 'remove' });
    const want = await directMetric(new Map([['attn_1', (x: Tensor) => ops.add(ops.zeros(x.shape), d.decoderBias())]]));
    closeTo(r.rows[0]!.mEmpty, want);
    // The ablation matters: the unmodified model differs.
    expect(Math.abs(r.rows[0]!.mFull - want)).toBeGreaterThan(1e-3);
  });

  it('a circuit keeping every node of attn_1 and mlp_1 is the model; its complement is the empty circuit', async () => {
    const effects = new Map(['attn_1', 'mlp_1'].map((n) => [n, uniform(n, 1)]));
    const r = await evaluate(model, dicts, [batch], { effects, thresholds: [0.5, 2], ablation: { kind: 'mean' } });
    const [all, none] = r.rows as [typeof r.rows[0], typeof r.rows[0]];
    closeTo(all.mCircuit, all.mFull, 1e-5);
    closeTo(all.mComplement, all.mEmpty, 1e-5);
    closeTo(none.mCircuit, none.mEmpty, 1e-5);
  });

  it('steering a feature of attn_1 adds its 48-wide decoder row; scaling the error node scales the residual', async () => {
    const ops = model.ops;
    const d = dicts.get('attn_1')!;
    const k = 7;
    const steering = await Steering.create(model, dicts, [
      ...interventionsFor([{ kind: 'feature', submodule: 'attn_1', index: k, pos: null }], add(3)),
      ...interventionsFor([{ kind: 'error', submodule: 'attn_1', pos: null }], scale(0.5)),
    ]);
    const steered = await directMetric(steering.edits({ promptLength: batch.seq }));
    const row = ops.gather(d.decoderRows(), ops.intTensor([k], [1]), 0); // [1, 48]
    const want = await directMetric(new Map([['attn_1', (x: Tensor) => {
      const r = ops.sub(x, d.decode(d.encode(x)));
      return ops.add(ops.sub(x, ops.scale(r, 0.5)), ops.scale(row, 3));
    }]]));
    closeTo(steered, want);
    expect(Math.abs(steered - await directMetric(new Map()))).toBeGreaterThan(1e-3);
  });

  it('forwardFrom attn_1 recomputes attn_1.out downstream; the segment VJP composes through it', async () => {
    const ops = model.ops;
    await ops.scope(async () => {
      const tokens = model.tokens(batch.clean, batch.size, batch.seq);
      const clean = await model.forward(tokens, { logits: false });
      const x = clean.values.get('attn_1')!;
      const bumped = ops.scale(x, 1.5);
      const from = await model.forwardFrom('attn_1', bumped, clean.values, { logits: { lastOnly: true } });
      const direct = await model.forward(tokens, { edits: new Map([['attn_1', () => bumped]]), logits: { lastOnly: true } });
      const a = await from.logits!.data(), b = await direct.logits!.data();
      expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeLessThanOrEqual(1e-5);
      // Cotangent on resid_1 → attn_1 (through the sum and the projection) equals the backward pass
      // from resid_1 with mlp_1 and resid_0 stopped.
      const cot = ops.tensor(Float32Array.from({ length: batch.size * batch.seq * 32 }, (_, i) => Math.sin(i)), [batch.size, batch.seq, 32]);
      const viaEdge = await model.segmentVjp('resid_1', 'attn_1', clean.values, cot);
      expect(viaEdge.shape).toEqual([batch.size, batch.seq, 48]);
      const viaBackward = (await model.backward(clean.values, { submodule: 'resid_1', cotangent: cot },
        { targets: ['attn_1'], stopAt: new Set(['mlp_1']) })).get('attn_1')!;
      const e = await viaEdge.data(), g = await viaBackward.data();
      expect(Math.max(...e.map((v, i) => Math.abs(v - g[i]!)))).toBeLessThanOrEqual(1e-5);
    });
  });
});
