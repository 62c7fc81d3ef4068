// Segment forward and VJP for every segment kind of small random GPT-NeoX, GPT-2, Llama,
// Mistral, Qwen 2/3 and Gemma 2/3 models (random-model.ts), and Gemma 2 with an embed submodule
// (its `scale` segment):
// forward against the float64 JS reference, VJP against float64 finite differences of it,
// logit selections, input checks and typed errors.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendError, InputError, NotFoundError, ShapeError, segmentWidth, withEmbedSubmodule, type Backend, type SegmentRuntime, type Tensor } from '@sfc/core';
import { onnxBackend } from './index.js';
import { inputWidth } from './segment-program.js';
import { weightTensors } from './segment-runtime.js';
import { randomModel, TINY_CONFIGS } from './test-support/random-model.js';
import { numericalVjp, randn, referenceSegment, relErr, t64, type SegmentOptions, type T64 } from './test-support/reference-math.js';

let backend: Backend;
let cacheDir: string;
beforeAll(async () => {
  cacheDir = mkdtempSync(join(tmpdir(), 'sfc-onnx-test-'));
  backend = await onnxBackend({ intraOpNumThreads: 1, cacheDir });
});
afterAll(async () => {
  await backend.dispose();
  rmSync(cacheDir, { recursive: true, force: true });
});

const B = 2, S = 4;
const f32 = (x: ArrayLike<number>) => Float64Array.from(Float32Array.from(x));

const GEMMA2 = TINY_CONFIGS['gemma2, soft-caps, sliding window 3, z submodule']!;
const MODELS: [string, ReturnType<typeof randomModel>][] = [
  ...Object.entries(TINY_CONFIGS).map(([label, config]): [string, ReturnType<typeof randomModel>] => [label, randomModel(config, 3)]),
  // An unscaled embed segment and the `scale` segment embed.out (withEmbedSubmodule).
  ['gemma2 with an embed submodule', (({ spec, weights }) => ({ spec: withEmbedSubmodule(spec), weights }))(randomModel(GEMMA2, 3))],
];

describe.each(MODELS)('segments of %s', (_label, { spec, weights }) => {
  const d = spec.dims.dModel;
  let rt: SegmentRuntime;
  beforeAll(async () => { rt = await backend.loadModel(spec, weights); });
  afterAll(() => rt.dispose());

  const ops = () => backend.ops;
  const activation = (seed: number, width = d) => f32(randn(seed, B * S * width, 1.5));

  for (const seg of spec.segments) {
    it(`${seg.name}: forward and VJP (position offset 3)`, async () => {
      const o = ops();
      await o.scope(async () => {
        const options = { positionOffset: 3 };
        if (seg.kind === 'embed') {
          const ids = [1, 4, 10, 0, 7, 7, 2, 9];
          const y = await rt.forward(seg.name, [o.intTensor(ids, [B, S])], options);
          const want = referenceSegment(spec, weights, seg, [t64([B, S], ids)], options);
          expect(y.shape).toEqual([B, S, d]);
          expect(relErr(await y.data(), want.data)).toBeLessThan(1e-6);
          expect(await rt.vjp(seg.name, [o.intTensor(ids, [B, S])], o.zeros([B, S, d]), options)).toEqual([]);
          return;
        }
        const widths = seg.inputs.map((_, i) => inputWidth(spec, seg, i));
        const xs = widths.map((w, i) => t64([B, S, w], activation(10 + i, w)));
        const inputs = xs.map((x) => o.tensor(Float32Array.from(x.data), [...x.shape]));
        const y = await rt.forward(seg.name, inputs, options);
        if (seg.kind === 'unembed') return; // unembed has its own tests below
        const want = referenceSegment(spec, weights, seg, xs, options);
        const out = [B, S, segmentWidth(spec, seg)];
        expect(y.shape).toEqual(out);
        expect(relErr(await y.data(), want.data)).toBeLessThan(2e-6);
        const cot = f32(randn(99, want.data.length));
        const grads = await rt.vjp(seg.name, inputs, o.tensor(Float32Array.from(cot), out), options);
        const numeric = numericalVjp((a) => referenceSegment(spec, weights, seg, a, options), xs, cot, xs.map((_, i) => i));
        expect(grads.length).toBe(xs.length);
        for (let i = 0; i < grads.length; i++) {
          expect(grads[i]!.shape).toEqual([...xs[i]!.shape]);
          expect(relErr(await grads[i]!.data(), numeric[i]!)).toBeLessThan(1e-5);
        }
      });
    });
  }

  const selections: [string, (o: ReturnType<typeof ops>) => { opts: SegmentOptions; sel?: { lastOnly?: boolean; columns?: Tensor }; shape: number[] }][] = [
    ['all logits', () => ({ opts: {}, shape: [B, S, spec.dims.vocabSize] })],
    ['last position', () => ({ opts: { lastOnly: true }, sel: { lastOnly: true }, shape: [B, spec.dims.vocabSize] })],
    ['columns', (o) => ({ opts: { columns: { data: [3, 5, 10, 3, 0, 1], k: 3 } }, sel: { columns: o.intTensor([3, 5, 10, 3, 0, 1], [B, 3]) }, shape: [B, S, 3] })],
    ['last position, columns', (o) => ({ opts: { lastOnly: true, columns: { data: [2, 8], k: 1 } }, sel: { lastOnly: true, columns: o.intTensor([2, 8], [B, 1]) }, shape: [B, 1] })],
  ];
  for (const [name, make] of selections) {
    it(`unembed with ${name}: forward and VJP`, async () => {
      const o = ops();
      await o.scope(async () => {
        const { opts, sel, shape } = make(o);
        const seg = spec.segments[spec.segments.length - 1]!;
        const x = t64([B, S, d], activation(21));
        const xt = o.tensor(Float32Array.from(x.data), [B, S, d]);
        const y = await rt.forward('unembed', [xt], { logits: sel });
        const want = referenceSegment(spec, weights, seg, [x], opts);
        expect(y.shape).toEqual(shape);
        expect(relErr(await y.data(), want.data)).toBeLessThan(2e-6);
        const cot = f32(randn(5, want.data.length));
        const [g] = await rt.vjp('unembed', [xt], o.tensor(Float32Array.from(cot), shape), { logits: sel });
        const [numeric] = numericalVjp((a) => referenceSegment(spec, weights, seg, a, opts), [x], cot, [0]);
        expect(g!.shape).toEqual([B, S, d]);
        expect(relErr(await g!.data(), numeric!)).toBeLessThan(1e-5);
      });
    });
  }
});

describe('segment runtime checks: widths other than d (Gemma\'s concatenated heads)', () => {
  const { spec, weights } = randomModel(GEMMA2, 5);
  let rt: SegmentRuntime;
  beforeAll(async () => { rt = await backend.loadModel(spec, weights); });
  afterAll(() => rt.dispose());

  it('attention outputs nHeads × headDim; the project segment takes that width and refuses d', async () => {
    const o = backend.ops;
    const z = spec.dims.nHeads * spec.dims.headDim, d = spec.dims.dModel;
    expect(z).not.toBe(d);
    await o.scope(async () => {
      const y = await rt.forward('attn_0', [o.fill([1, 3, d], 0.2)]);
      expect(y.shape).toEqual([1, 3, z]);
      expect((await rt.forward('attn_0.out', [y])).shape).toEqual([1, 3, d]);
      await expect(rt.forward('attn_0.out', [o.fill([1, 3, d], 0.2)])).rejects.toThrow(new RegExp(`\\[batch, seq, ${z}\\]`));
      await expect(rt.vjp('attn_0', [o.fill([1, 3, d], 0.2)], o.zeros([1, 3, d]))).rejects.toThrow(ShapeError);
    });
  });
});

describe('segment runtime checks', () => {
  const { spec, weights } = randomModel(TINY_CONFIGS['gpt2, gelu_new, learned positions']!, 4);
  let rt: SegmentRuntime;
  beforeAll(async () => { rt = await backend.loadModel(spec, weights); });
  afterAll(() => rt.dispose());

  it('weights are fed from the WeightStore arrays themselves (no copy)', () => {
    const w = weightTensors(spec, weights);
    for (const [name, t] of w) expect(t.data).toBe(weights.get(name)!.data);
  });

  it('refuses bad inputs before running, with typed errors', async () => {
    const o = backend.ops;
    await o.scope(async () => {
      const x = o.zeros([1, 3, 8]);
      await expect(rt.forward('attn_7', [x])).rejects.toThrow(NotFoundError);
      await expect(rt.forward('attn_0', [o.zeros([1, 3, 7])])).rejects.toThrow(ShapeError);
      await expect(rt.forward('attn_0', [x, x])).rejects.toThrow(ShapeError);
      await expect(rt.forward('mlp_0', [x])).rejects.toThrow(ShapeError); // sequential MLP takes two inputs
      await expect(rt.forward('embed', [o.intTensor([1, 2, 11], [1, 3])])).rejects.toThrow(InputError);
      await expect(rt.forward('embed', [o.intTensor([1, 2, 3], [1, 3])], { positionOffset: 14 })).rejects.toThrow(/exceed/);
      await expect(rt.vjp('attn_0', [x], o.zeros([1, 2, 8]))).rejects.toThrow(ShapeError);
      await expect(rt.forward('unembed', [x], { logits: { columns: o.intTensor([1], [1, 1]) } })).resolves.toBeDefined();
      await expect(rt.forward('unembed', [x], { logits: { columns: o.intTensor([1, 2], [2, 1]) } })).rejects.toThrow(ShapeError);
    });
  });

  it('an onnxruntime failure is a BackendError naming the segment and op', async () => {
    const o = backend.ops;
    await o.scope(async () => {
      const err = await rt.forward('unembed', [o.zeros([1, 3, 8])], { logits: { columns: o.intTensor([99], [1, 1]) } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendError);
      expect((err as Error).message).toMatch(/segment 'unembed' forward, op 'columns'/);
    });
  });

  it('the sum segment adds its inputs and passes the cotangent to each', async () => {
    const o = backend.ops;
    await o.scope(async () => {
      const a = o.fill([1, 2, 8], 1), b = o.fill([1, 2, 8], 2), c = o.fill([1, 2, 8], 4);
      const y = await rt.forward('resid_0', [a, b, c]);
      expect(Array.from(await y.data())).toEqual(new Array(16).fill(7));
      const g = o.fill([1, 2, 8], 0.5);
      const gs = await rt.vjp('resid_0', [a, b, c], g);
      expect(gs.length).toBe(3);
      for (const x of gs) expect(Array.from(await x.data())).toEqual(new Array(16).fill(0.5));
    });
  });

  it('batch and sequence sizes are dynamic: one model serves many shapes', async () => {
    const o = backend.ops;
    await o.scope(async () => {
      for (const [b, s] of [[1, 1], [3, 5], [2, 9]] as const) {
        const y = await rt.forward('attn_0', [o.fill([b, s, 8], 0.3)]);
        expect(y.shape).toEqual([b, s, 8]);
      }
    });
  });
});
