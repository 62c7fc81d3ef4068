// What Model hands to the backend: a recording runtime (core's reference ops, outputs of the right
// shape) on the GPT-2 fixture's config. Checks the options each segment's forward and VJP gets —
// positionOffset in backward and segmentVjp, the cache only for attention, the offset a cached
// forward defaults to — what edits are told, and that bad cached calls fail before any segment runs.

import { fileURLToPath } from 'node:url';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Backend, KvCache, KvCacheOptions, SegmentCallOptions, SegmentRuntime } from '../backend.js';
import { CapabilityError, InputError, ShapeError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { referenceOps } from '../testing/reference-ops.js';
import { LayerKvCache } from './kv-cache.js';
import { Model, weightMemory, type EditCall } from './model.js';
import { parseModelConfig } from './config.js';
import { transposedTiedUnembed } from './spec.js';
import type { ModelSpec } from './spec.js';

const GPT2 = fileURLToPath(new URL('../../../../fixtures/models/gpt2-a', import.meta.url));

interface Call { readonly kind: 'forward' | 'vjp'; readonly segment: string; readonly options: SegmentCallOptions | undefined }

/** A backend whose segments return zeros of the right shape and record every call. */
function recordingBackend(calls: Call[], kvCache = true): Backend {
  const ops = referenceOps();
  let spec: ModelSpec | undefined;
  const runtime: SegmentRuntime = {
    async forward(segment, inputs, options) {
      calls.push({ kind: 'forward', segment, options });
      const [b, s] = inputs[0]!.shape as [number, number];
      if (segment === 'unembed') return ops.zeros(options?.logits?.lastOnly ? [b, spec!.dims.vocabSize] : [b, s, spec!.dims.vocabSize]);
      if (options?.cache) {
        const cache = LayerKvCache.of<number>(options.cache, runtime);
        const offset = options.positionOffset ?? 0;
        cache.begin(segment, b, offset, s);
        cache.commit(segment, offset, offset + s, () => offset + s);
      }
      return ops.zeros([b, s, spec!.dims.dModel]);
    },
    async vjp(segment, inputs, _cotangent, options) {
      calls.push({ kind: 'vjp', segment, options });
      return segment === 'embed' ? [] : inputs.map((x) => ops.zeros(x.shape));
    },
    async createKvCache(options: KvCacheOptions): Promise<KvCache> {
      return LayerKvCache.create<number>(runtime, spec!, options, () => undefined);
    },
    dispose() {},
  };
  return {
    name: 'recording',
    capabilities: { grad: true, kvCache, devices: ['cpu'], dtypes: ['float32', 'int32'] },
    ops,
    describe: () => 'recording',
    async loadModel(s) { spec = s; return runtime; },
    async dispose() {},
  };
}

describe('Model ↔ SegmentRuntime', () => {
  let calls: Call[];
  let model: Model;
  beforeEach(async () => {
    calls = [];
    model = await Model.load(GPT2, recordingBackend(calls));
  });
  const tokens = (n: number, batch = 1) => model.tokens(Int32Array.from({ length: n * batch }, (_, i) => i % 5), batch, n);

  it('backward and segmentVjp pass the forward\'s positionOffset to every VJP', async () => {
    const { values, logits } = await model.forward(tokens(3), { positionOffset: 4 });
    calls.length = 0;
    await model.backward(values, { logits: logits! }, { targets: ['embed'], positionOffset: 4 });
    expect(calls.length).toBeGreaterThan(3);
    for (const c of calls) expect([c.kind, c.segment, c.options?.positionOffset]).toEqual(['vjp', c.segment, 4]);
    calls.length = 0;
    await model.segmentVjp('attn_1', 'resid_0', values, values.get('attn_1')!, undefined, { positionOffset: 4 });
    expect(calls.map((c) => [c.segment, c.options?.positionOffset])).toEqual([['attn_1', 4]]);
    calls.length = 0;
    await model.backward(values, { logits: logits! }, { targets: ['embed'] });
    for (const c of calls) expect(c.options?.positionOffset ?? 0).toBe(0);
  });

  it('backward keeps only its targets\' cotangents: each spent one is disposed, the caller\'s seed never', async () => {
    const { values, logits } = await model.forward(tokens(3));
    const seed = model.ops.zeros(values.get('resid_1')!.shape);
    const live = model.ops.numTensors();
    calls.length = 0;
    const grads = await model.backward(values, { logits: logits! }, { targets: ['embed'] });
    // Cotangents are made for every segment input on the way down; only the target's (and the
    // sums still pending in it) outlive the pass.
    expect(calls.filter((c) => c.kind === 'vjp').length).toBeGreaterThan(3);
    expect(model.ops.numTensors() - live).toBeLessThanOrEqual(2);
    expect(grads.get('embed')!.isDisposed).toBe(false);
    await model.backward(values, { submodule: 'resid_1', cotangent: seed }, { targets: ['embed'] });
    expect(seed.isDisposed).toBe(false);
  });

  it('lastPositions: the backend sees each row\'s position gathered (lastOnly on [B, 1, d]), never the field; bad positions fail', async () => {
    const t = tokens(4, 2);
    const { values, logits } = await model.forward(t, { logits: { lastOnly: true, lastPositions: Int32Array.of(1, 3) } });
    const un = calls.filter((c) => c.segment === 'unembed');
    expect(un.map((c) => c.options?.logits)).toEqual([{ lastOnly: true }]);
    expect(logits!.shape).toEqual([2, model.spec.dims.vocabSize]);
    calls.length = 0;
    const grads = await model.backward(values, { logits: logits! }, { targets: ['resid_1'], logits: { lastOnly: true, lastPositions: Int32Array.of(1, 3) } });
    expect(grads.get('resid_1')!.shape).toEqual([2, 4, model.spec.dims.dModel]); // scattered back to every position
    expect(calls.find((c) => c.segment === 'unembed')!.options?.logits).toEqual({ lastOnly: true });
    await expect(model.forward(t, { logits: { lastOnly: true, lastPositions: Int32Array.of(1, 4) } })).rejects.toThrow(ShapeError);
    await expect(model.forward(t, { logits: { lastPositions: Int32Array.of(1, 2) } })).rejects.toThrow(ShapeError);
  });

  it('a cached forward gives the cache to attention only, starts at cache.length, and tells edits the offset', async () => {
    const cache = await model.createKvCache({ batch: 2, maxLength: 6 });
    const seen: [string, EditCall, number][] = [];
    const edits = new Map(['embed', 'attn_0', 'resid_1'].map((n) => [n, (x: Tensor, call: EditCall) => { seen.push([n, call, x.shape[1]!]); return x; }]));
    await model.forward(tokens(4, 2), { cache, edits });
    await model.forward(tokens(1, 2), { cache, edits });
    expect(cache.length).toBe(5);
    const forwards = calls.filter((c) => c.kind === 'forward' && c.segment !== 'unembed');
    for (const c of forwards) {
      expect(c.options?.cache, c.segment).toBe(c.segment.startsWith('attn_') ? cache : undefined);
    }
    expect(forwards.filter((c) => c.segment === 'embed').map((c) => c.options?.positionOffset)).toEqual([0, 4]);
    expect(seen.map(([n, call, s]) => `${n}@${call.positionOffset}+${s}`)).toEqual(['embed@0+4', 'attn_0@0+4', 'resid_1@0+4', 'embed@4+1', 'attn_0@4+1', 'resid_1@4+1']);
    // Without a cache, edits see the forward's own offset.
    seen.length = 0;
    await model.forward(tokens(2), { positionOffset: 7, edits });
    expect(seen.map(([, call]) => call.positionOffset)).toEqual([7, 7, 7]);
  });

  it('bad cached calls fail before any segment runs', async () => {
    const cache = await model.createKvCache({ batch: 1, maxLength: 4 });
    await model.forward(tokens(3), { cache });
    calls.length = 0;
    await expect(model.forward(tokens(2), { cache })).rejects.toThrow(/at most 4 positions/);
    await expect(model.forward(tokens(1), { cache, positionOffset: 0 })).rejects.toBeInstanceOf(InputError);
    await expect(model.forward(tokens(1, 2), { cache })).rejects.toBeInstanceOf(ShapeError);
    await expect(model.forwardFrom('resid_0', model.ops.zeros([1, 1, 32]), new Map(), { cache })).rejects.toBeInstanceOf(InputError);
    cache.dispose();
    await expect(model.forward(tokens(1), { cache })).rejects.toThrow(/disposed/);
    expect(calls).toEqual([]);
  });

  it('createKvCache checks its options and the backend\'s capability', async () => {
    await expect(model.createKvCache({ batch: 1, maxLength: model.spec.dims.maxPositions + 1 })).rejects.toBeInstanceOf(InputError);
    await expect(model.createKvCache({ batch: 1.5, maxLength: 4 })).rejects.toBeInstanceOf(InputError);
    const without = await Model.load(GPT2, recordingBackend([], false));
    expect(without.supportsKvCache).toBe(false);
    await expect(without.createKvCache({ batch: 1, maxLength: 4 })).rejects.toBeInstanceOf(CapabilityError);
  });
});

describe('weightMemory', () => {
  const caps = (copiesWeights?: boolean) => ({ name: 'x', capabilities: { grad: true, devices: [], dtypes: [], ...(copiesWeights === undefined ? {} : { copiesWeights }) } }) as unknown as Backend;
  const gemma = transposedTiedUnembed(parseModelConfig({ model_type: 'gemma2', hidden_size: 8, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 4, num_hidden_layers: 1, intermediate_size: 16, vocab_size: 100 }));
  const total = 4 * [...gemma.weightShapes.values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);

  it('counts the float32 store once when the backend wraps it, and a tied embedding only once', () => {
    expect(gemma.weightShapes.has('unembed.w')).toBe(false);
    expect(weightMemory(gemma, caps(false))).toEqual([{ what: 'gemma2 weights (float32)', bytes: total }]);
  });

  it('counts a 16-bit store at 2 bytes a value, plus the float32 copy of a backend that widens at load', () => {
    const half = (caps: Record<string, unknown>) => ({ name: 'x', capabilities: { grad: true, devices: [], dtypes: [], ...caps } }) as unknown as Backend;
    expect(weightMemory(gemma, half({ copiesWeights: false, halfWeights: true }), { half: true })).toEqual([{ what: 'gemma2 weights (16-bit, as stored)', bytes: total / 2 }]);
    for (const caps of [{ copiesWeights: false }, {}]) {
      const needs = weightMemory(gemma, half(caps), { half: true });
      expect(needs.map((n) => n.bytes)).toEqual([total / 2, total + 4 * 100 * 8]);
      expect(needs[1]!.what).toMatch(/float32 copy .*widens 16-bit weights at load/);
    }
  });

  it('adds the backend copy (and its [d, vocab] copy of a tied embedding) when the backend copies; absent means it does', () => {
    for (const b of [caps(true), caps()]) {
      const needs = weightMemory(gemma, b);
      expect(needs.map((n) => n.bytes)).toEqual([total, total + 4 * 100 * 8]);
    }
  });
});
