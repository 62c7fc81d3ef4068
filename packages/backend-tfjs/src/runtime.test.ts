// The segment runtime on tiny random models (NeoX parallel/sequential, gelu/relu, GPT-2 with
// gelu_new; Gemma 2 with an embed submodule for the scale segment), on the cpu and wasm flavors:
// every segment kind's VJP against central finite differences of its forward, logit selections,
// position offsets, input checks, no leaks.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InputError, NotFoundError, ShapeError, parseModelConfig, rotaryTables, withEmbedSubmodule,
  type AttentionSegment, type Backend, type ModelSpec, type SegmentCallOptions, type SegmentRuntime, type Tensor, type TensorOps, type WeightStore, type WeightTensor,
} from '@sfc/core';
import { rng } from '@sfc/core/testing';
import { tfjsBackend } from './index.js';

/** Deterministic normal samples (core's seeded mulberry32 + Box–Muller). */
function normals(seed: number): () => number {
  const uni = rng(seed).next;
  return () => Math.sqrt(-2 * Math.log(uni() + 1e-12)) * Math.cos(2 * Math.PI * uni());
}

function randomWeights(spec: ModelSpec, seed: number): WeightStore {
  const normal = normals(seed);
  const out = new Map<string, WeightTensor>();
  for (const [name, shape] of spec.weightShapes) {
    const n = shape.reduce((p, d) => p * d, 1);
    const data = new Float32Array(n);
    const isLnWeight = /ln\d?\.w$|final_ln\.w$/.test(name);
    const scale = shape.length === 2 ? 1 / Math.sqrt(shape[0]!) : 0.1;
    for (let i = 0; i < n; i++) data[i] = (isLnWeight ? 1 : 0) + scale * normal();
    if (name.startsWith('embed.')) for (let i = 0; i < n; i++) data[i] = normal() * 0.5;
    out.set(name, { shape, data });
  }
  return out;
}

const MODELS: Record<string, object> = {
  'neox-parallel-gelu': { model_type: 'gpt_neox', hidden_size: 16, num_attention_heads: 2, num_hidden_layers: 1, intermediate_size: 24, vocab_size: 20, rotary_pct: 0.5, max_position_embeddings: 32 },
  'neox-sequential-relu': { model_type: 'gpt_neox', hidden_size: 12, num_attention_heads: 3, num_hidden_layers: 1, intermediate_size: 20, vocab_size: 15, rotary_pct: 1, use_parallel_residual: false, hidden_act: 'relu', layer_norm_eps: 1e-3 },

  'gpt2': { model_type: 'gpt2', n_embd: 16, n_head: 4, n_layer: 2, vocab_size: 20, n_positions: 12, scale_attn_by_inverse_layer_idx: true },
};

const B = 2, S = 5;

async function dataOf(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.data());
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * Checks ⟨vjp(c), u_i⟩ against the central difference of ⟨c, f(x + εu)⟩ for random directions u,
 * every input perturbed (inputs enter a segment through their sum, so each gets its own direction).
 * A ReLU MLP is piecewise linear: a step that crosses a kink breaks the difference, so it gets a
 * step small enough that no pre-activation of these fixed seeds crosses zero.
 */
async function checkVjp(rt: SegmentRuntime, ops: TensorOps, segment: string, inputs: Tensor[], options: SegmentCallOptions | undefined, seed: number, eps = 1e-2): Promise<number> {
  const normal = normals(seed);
  const y0 = await rt.forward(segment, inputs, options);
  const c = Float32Array.from({ length: y0.shape.reduce((p, d) => p * d, 1) }, () => normal());
  const cot = ops.tensor(c, y0.shape);
  const grads = await rt.vjp(segment, inputs, cot, options);
  expect(grads.length).toBe(inputs.length);
  let worst = 0;
  for (let k = 0; k < inputs.length; k++) {
    expect(grads[k]!.shape).toEqual(inputs[k]!.shape);
    const x = await inputs[k]!.data();
    const u = Float32Array.from({ length: x.length }, () => normal());
    const shifted = async (sign: number) => {
      const xs = inputs.map((t, j) => (j === k ? ops.tensor(Float32Array.from(x, (v, i) => v + sign * eps * u[i]!), t.shape) : t));
      return dot(c, await dataOf(await rt.forward(segment, xs, options)));
    };
    const fd = ((await shifted(1)) - (await shifted(-1))) / (2 * eps);
    const analytic = dot(await dataOf(grads[k]!), u);
    const err = Math.abs(fd - analytic) / Math.max(1, Math.abs(analytic));
    worst = Math.max(worst, err);
    expect(err, `${segment} input ${k}: analytic ${analytic} vs finite difference ${fd}`).toBeLessThan(2e-3);
  }
  return worst;
}

describe.each(['cpu', 'wasm'] as const)('segment runtime on tfjs-%s', (flavor) => {
  let backend: Backend;
  let ops: TensorOps;
  beforeAll(async () => {
    backend = await tfjsBackend({ flavor });
    ops = backend.ops;
  });
  afterAll(async () => { await backend.dispose(); });

  describe.each(Object.keys(MODELS))('%s', (modelName) => {
    const spec = parseModelConfig(MODELS[modelName]);
    const d = spec.dims.dModel, V = spec.dims.vocabSize;
    let rt: SegmentRuntime;
    beforeAll(async () => { rt = await backend.loadModel(spec, randomWeights(spec, 7)); });
    afterAll(() => rt.dispose());

    const randomInput = (seed: number) => {
      const normal = normals(seed);
      return ops.tensor(Float32Array.from({ length: B * S * d }, () => normal()), [B, S, d]);
    };
    const ids = () => ops.intTensor(Array.from({ length: B * S }, (_, i) => (i * 7 + 3) % V), [B, S]);

    it('VJP of every attention, mlp and sum segment matches finite differences', async () => {
      await ops.scope(async () => {
        for (const seg of spec.segments) {
          if (seg.kind === 'embed' || seg.kind === 'unembed') continue;
          const inputs = seg.inputs.map((_, i) => randomInput(100 + i));
          const relu = seg.kind === 'mlp' && seg.activation === 'relu';
          await checkVjp(rt, ops, seg.name, inputs, undefined, 3, relu ? 1e-3 : 1e-2);
        }
      });
    });

    it('VJP of the unembed matches finite differences for every logit selection', async () => {
      await ops.scope(async () => {
        const x = randomInput(5);
        const columns = ops.intTensor([3, 0, 7, 3, 1, 2], [B, 3]);
        for (const logits of [undefined, { lastOnly: true }, { columns }, { lastOnly: true, columns }]) {
          await checkVjp(rt, ops, 'unembed', [x], { logits }, 11);
        }
      });
    });

    it('logit selections equal the matching entries of the full logits', async () => {
      await ops.scope(async () => {
        const x = randomInput(6);
        const full = await rt.forward('unembed', [x]);
        expect(full.shape).toEqual([B, S, V]);
        const fv = await full.data();
        const cols = [[3, 0, 7], [3, 1, 2]];
        const columns = ops.intTensor(cols.flat(), [B, 3]);
        const last = await rt.forward('unembed', [x], { logits: { lastOnly: true } });
        expect(last.shape).toEqual([B, V]);
        const sel = await rt.forward('unembed', [x], { logits: { columns } });
        expect(sel.shape).toEqual([B, S, 3]);
        const both = await rt.forward('unembed', [x], { logits: { lastOnly: true, columns } });
        expect(both.shape).toEqual([B, 3]);
        const [lv, sv, bv] = [await last.data(), await sel.data(), await both.data()];
        for (let b = 0; b < B; b++) {
          for (let v = 0; v < V; v++) expect(lv[b * V + v]).toBeCloseTo(fv[(b * S + S - 1) * V + v]!, 5);
          for (let s = 0; s < S; s++) {
            cols[b]!.forEach((c, j) => expect(sv[(b * S + s) * 3 + j]).toBeCloseTo(fv[(b * S + s) * V + c]!, 5));
          }
          cols[b]!.forEach((c, j) => expect(bv[b * 3 + j]).toBeCloseTo(fv[(b * S + S - 1) * V + c]!, 5));
        }
      });
    });

    it('embed: rows of the token embedding (+ positions from the offset); VJP is empty', async () => {
      await ops.scope(async () => {
        const weights = randomWeights(spec, 7);
        const tok = weights.get('embed.tok')!.data, pos = weights.get('embed.pos')?.data;
        const idv = await ids().data();
        for (const offset of [0, 3]) {
          const e = await rt.forward('embed', [ids()], { positionOffset: offset });
          expect(e.shape).toEqual([B, S, d]);
          const ev = await e.data();
          for (let r = 0; r < B * S; r++) {
            const s = r % S;
            for (let j = 0; j < d; j++) {
              const want = tok[idv[r]! * d + j]! + (pos ? pos[(offset + s) * d + j]! : 0);
              expect(Math.abs(ev[r * d + j]! - want)).toBeLessThan(1e-6);
            }
          }
        }
        expect(await rt.vjp('embed', [ids()], ops.zeros([B, S, d]))).toEqual([]);
      });
    });

    it('forward and VJP leave no tensors behind', async () => {
      const x = randomInput(8);
      const tokens = ids();
      const columns = ops.intTensor([1, 2, 3, 4], [B, 2]);
      const before = ops.numTensors();
      for (const seg of spec.segments) {
        const inputs = seg.kind === 'embed' ? [tokens] : seg.inputs.map(() => x);
        const options = seg.kind === 'unembed' ? { logits: { lastOnly: true, columns } } : undefined;
        const y = await rt.forward(seg.name, inputs, options);
        const grads = await rt.vjp(seg.name, inputs, y, options);
        expect(ops.numTensors()).toBe(before + 1 + grads.length);
        y.dispose();
        // Each input's cotangent is its own tensor: disposing one leaves the others readable.
        grads[0]?.dispose();
        for (const g of grads.slice(1)) expect((await g.data()).length).toBe(B * S * d);
        for (const g of grads) g.dispose();
        expect(ops.numTensors()).toBe(before);
      }
      x.dispose(); tokens.dispose(); columns.dispose();
    });

    it('refuses bad inputs with typed errors', async () => {
      await ops.scope(async () => {
        const x = randomInput(9);
        const attn = spec.segments.find((s) => s.kind === 'attention')!;
        await expect(rt.forward('nope', [x])).rejects.toThrow(NotFoundError);
        await expect(rt.forward(attn.name, [])).rejects.toThrow(InputError);
        await expect(rt.forward(attn.name, [ops.zeros([B, S, d + 1])])).rejects.toThrow(ShapeError);
        await expect(rt.forward('embed', [x])).rejects.toThrow(ShapeError);
        await expect(rt.forward('embed', [ops.intTensor([V], [1, 1])])).rejects.toThrow(InputError);
        await expect(rt.forward('unembed', [x], { logits: { columns: ops.intTensor([V, 0], [B, 1]) } })).rejects.toThrow(InputError);
        await expect(rt.forward('unembed', [x], { logits: { columns: ops.intTensor([0], [1, 1]) } })).rejects.toThrow(ShapeError);
        await expect(rt.vjp(attn.name, [x], ops.zeros([2 * B, S, d]))).rejects.toThrow(ShapeError);
        await expect(rt.forward(attn.name, [x], { positionOffset: -1 })).rejects.toThrow(InputError);
        if (spec.architecture === 'gpt2') {
          await expect(rt.forward('embed', [ids()], { positionOffset: spec.dims.maxPositions - S + 1 })).rejects.toThrow(/learned positions/);
        }
      });
    });
  });

  it('rotary attention depends on relative positions only, and the offset moves the tables', async () => {
    const head8 = parseModelConfig({ model_type: 'gpt_neox', hidden_size: 8, num_attention_heads: 1, num_hidden_layers: 1, vocab_size: 4, rotary_pct: 1 });
    const rotary = (head8.segments[1] as AttentionSegment).rotary!;
    const t0 = rotaryTables(rotary, 0, 6), t3 = rotaryTables(rotary, 3, 3);
    expect(Array.from(t3.cos)).toEqual(Array.from(t0.cos.slice(3 * 8)));
    expect(Array.from(t3.sin)).toEqual(Array.from(t0.sin.slice(3 * 8)));
    expect(t0.cos[8 + 1]).toBeCloseTo(Math.cos(1 / 10000 ** (2 / 8)), 6);
    expect(t0.sin[8 + 5]).toBeCloseTo(Math.sin(1 / 10000 ** (2 / 8)), 6); // emb = cat(freqs, freqs)
    const spec = parseModelConfig(MODELS['neox-sequential-relu']);
    const rt = await backend.loadModel(spec, randomWeights(spec, 3));
    await ops.scope(async () => {
      const normal = normals(4);
      const x = ops.tensor(Float32Array.from({ length: S * spec.dims.dModel }, () => normal()), [1, S, spec.dims.dModel]);
      const a = await (await rt.forward('attn_0', [x])).data();
      const b = await (await rt.forward('attn_0', [x], { positionOffset: 9 })).data();
      let diff = 0;
      a.forEach((v, i) => { diff = Math.max(diff, Math.abs(v - b[i]!)); });
      expect(diff).toBeLessThan(1e-4);
    });
    rt.dispose();
  });

  it('a disposed model refuses calls; disposing the backend disposes its models', async () => {
    const spec = parseModelConfig(MODELS.gpt2);
    const before = ops.numTensors();
    const rt = await backend.loadModel(spec, randomWeights(spec, 1));
    expect(ops.numTensors()).toBe(before + spec.weightShapes.size);
    rt.dispose();
    expect(ops.numTensors()).toBe(before);
    await expect(rt.forward('embed', [ops.intTensor([0], [1, 1])])).rejects.toThrow(/disposed/);
  });

  it('weights loaded inside a scope survive it', async () => {
    const spec = parseModelConfig(MODELS.gpt2);
    const before = ops.numTensors();
    let rt!: SegmentRuntime;
    await ops.scope(async () => { rt = await backend.loadModel(spec, randomWeights(spec, 2)); });
    expect(ops.numTensors()).toBe(before + spec.weightShapes.size);
    await ops.scope(async () => {
      const y = await rt.forward('embed', [ops.intTensor([1, 2], [1, 2])]);
      expect(y.shape).toEqual([1, 2, spec.dims.dModel]);
    });
    rt.dispose();
    expect(ops.numTensors()).toBe(before);
  });

  it('refuses weights that do not match the spec', async () => {
    const spec = parseModelConfig(MODELS.gpt2);
    const w = new Map(randomWeights(spec, 1));
    w.delete('l0.qkv.w');
    await expect(backend.loadModel(spec, w)).rejects.toThrow(NotFoundError);
    const bad = new Map(randomWeights(spec, 1));
    bad.set('l0.qkv.b', { shape: [3], data: new Float32Array(3) });
    await expect(backend.loadModel(spec, bad)).rejects.toThrow(ShapeError);
  });
});

describe.each(['cpu', 'wasm'] as const)('the scale segment on tfjs-%s (Gemma 2 with an embed submodule)', (flavor) => {
  const plain = parseModelConfig({
    model_type: 'gemma2', hidden_size: 8, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 4, num_hidden_layers: 1,
    intermediate_size: 12, vocab_size: 11, max_position_embeddings: 16,
  });
  const spec = withEmbedSubmodule(plain);
  const factor = Math.fround(Math.sqrt(8));
  let backend: Backend;
  let ops: TensorOps;
  let rt: SegmentRuntime;
  let rtPlain: SegmentRuntime;
  beforeAll(async () => {
    backend = await tfjsBackend({ flavor });
    ops = backend.ops;
    rt = await backend.loadModel(spec, randomWeights(spec, 4));
    rtPlain = await backend.loadModel(plain, randomWeights(plain, 4));
  });
  afterAll(async () => { rt.dispose(); rtPlain.dispose(); await backend.dispose(); });

  it('embed is the unscaled lookup and embed.out times it by √d: together, bit for bit the default chain\'s embed', async () => {
    await ops.scope(async () => {
      const ids = ops.intTensor([1, 4, 10, 0, 7, 7], [2, 3]);
      const e = await rt.forward('embed', [ids]);
      const scaled = await rt.forward('embed.out', [e]);
      expect(await scaled.data()).toEqual((await e.data()).map((v) => Math.fround(v * factor)));
      expect(await scaled.data()).toEqual(await (await rtPlain.forward('embed', [ids])).data());
      expect(await e.data()).not.toEqual(await scaled.data());
    });
  });

  it('the VJP of embed.out is the cotangent times √d (and matches finite differences)', async () => {
    await ops.scope(async () => {
      const x = ops.tensor(Float32Array.from({ length: 2 * 3 * 8 }, (_, i) => Math.sin(i)), [2, 3, 8]);
      const c = Float32Array.from({ length: 2 * 3 * 8 }, (_, i) => Math.cos(3 * i));
      const [g] = await rt.vjp('embed.out', [x], ops.tensor(c, [2, 3, 8]));
      expect(await g!.data()).toEqual(c.map((v) => Math.fround(v * factor)));
      await checkVjp(rt, ops, 'embed.out', [x], undefined, 9);
    });
  });
});
