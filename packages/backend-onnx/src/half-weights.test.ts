// 16-bit weights on onnx: a BF16 checkpoint (the mistral-bf16 and neox-par-r50-bf16 fixtures;
// gemma2-a's weights rounded to bf16, for the tied unembedding read transposed and the scaled
// embedding) kept 16-bit in the
// store is fed to ORT as fp16 and widened in the graph, and every segment's output and VJP is
// identical to the run on the float32-widened store (selected logits: within 1e-6). (mistral-bf16's parity with PyTorch, through
// Model.load, is test/src/model-parity.test.ts.)

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  bf16ToF32, canonicalWeights, f32ToBf16, isHalfWeight, type Checkpoint, type TensorSource, openCheckpoint, parseModelConfig, storeBytes, transposedTiedUnembed, weightMemory, widenWeight,
  type ModelSpec, type SegmentRuntime, type Tensor, type TensorOps, type WeightStore,
} from '@sfc/core';
import { tempBackend } from './test-support/temp-backend.js';
import { expectClose, segmentChain } from './test-support/segment-chain.js';

const backend = tempBackend('half');
const MODELS = fileURLToPath(new URL('../../../fixtures/models', import.meta.url));

/** A float32 checkpoint read as if saved in bf16 (every value rounded to bf16). */
function asBf16(ckpt: Checkpoint): TensorSource {
  const words = (n: string) => f32ToBf16(ckpt.get(n));
  return {
    has: (n) => ckpt.has(n), shape: (n) => ckpt.shape(n), names: () => ckpt.names(),
    get: (n) => bf16ToF32(words(n)), getRaw: (n) => ({ dtype: 'BF16', data: words(n) }),
  };
}

async function loadStores(fixture: string, roundToBf16: boolean): Promise<{ spec: ModelSpec; half: WeightStore; f32: WeightStore }> {
  const dir = join(MODELS, fixture);
  const spec = transposedTiedUnembed(parseModelConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))));
  const ckpt = await openCheckpoint(dir);
  try {
    const src = roundToBf16 ? asBf16(ckpt) : ckpt;
    // As Model.load gives them to onnx: linears (and an untied head) held as the checkpoint's [out, in].
    return { spec, half: canonicalWeights(spec, src, ckpt.label, { keep16: true, transposeLinears: true }).store, f32: canonicalWeights(spec, src, ckpt.label).store };
  } finally {
    ckpt.close();
  }
}

/** Every segment's output along the chain, and the input cotangents of every non-embed segment's VJP. */
function runChain(rt: SegmentRuntime, spec: ModelSpec, ids: Tensor): Promise<Float32Array[]> {
  return runChainOn(backend().ops, rt, spec, ids);
}

function runChainOn(ops: TensorOps, rt: SegmentRuntime, spec: ModelSpec, ids: Tensor): Promise<Float32Array[]> {
  return segmentChain(ops, rt, spec, ids);
}

describe.each([['mistral-bf16', false], ['gemma2-a', true], ['neox-par-r50-bf16', false]] as const)('16-bit weights on onnx (%s)', (fixture, roundToBf16) => {
  it('keeps the BF16 weights 16-bit in the store, exactly (widened = the float32 store)', async () => {
    const { spec, half, f32 } = await loadStores(fixture, roundToBf16);
    const names = [...spec.weightShapes.keys()];
    expect(names.filter((n) => !isHalfWeight(half.get(n)!))).toEqual([]);
    for (const n of names) expect(widenWeight(half.get(n)!).data).toEqual(f32.get(n)!.data);
    expect(storeBytes(half)).toBe(storeBytes(f32) / 2);
    // The memory check counts what is held: 2 bytes a value, no backend copy on onnx.
    expect(weightMemory(spec, backend(), { half: true })).toEqual([{ what: `${spec.architecture} weights (16-bit, as stored)`, bytes: storeBytes(half) }]);
  });

  it('gives identical segment outputs and VJPs to the float32-widened store (selected logits within 1e-6)', async () => {
    const { spec, half, f32 } = await loadStores(fixture, roundToBf16);
    const ids = backend().ops.intTensor([1, 5, 9, 3, 7, 2, 4, 8], [2, 4]);
    const rtHalf = await backend().loadModel(spec, half);
    const rtF32 = await backend().loadModel(spec, f32);
    try {
      const a = await runChain(rtHalf, spec, ids);
      const b = await runChain(rtF32, spec, ids);
      expect(a.length).toBe(b.length);
      a.forEach((x, i) => expect(x).toEqual(b[i]));
      // Selected logits (rows of the [vocab, d] table — a tied embedding, or the 16-bit head held
      // as the checkpoint's [vocab, d] — gathered, then widened; the float32 head gathers columns
      // of [d, vocab], so the products are summed in another order: within 1e-6).
      const un = spec.segments[spec.segments.length - 1]!;
      const cols = backend().ops.intTensor([3, 1, 4, 1], [2, 2]);
      const x = backend().ops.fill([2, 4, spec.dims.dModel], 0.5);
      for (const lastOnly of [false, true]) {
        const opts = { logits: { columns: cols, lastOnly } };
        const run = async (rt: SegmentRuntime) => {
          const y = await rt.forward(un.name, [x], opts);
          const [dx] = await rt.vjp(un.name, [x], backend().ops.fill(y.shape, 1), opts);
          return [await y.data(), await dx!.data()];
        };
        const [h, f] = [await run(rtHalf), await run(rtF32)];
        h.forEach((x, i) => expectClose(x, f[i]!, 1e-6));
      }
    } finally {
      rtHalf.dispose();
      rtF32.dispose();
    }
  });
});

/** Every value of `a` within `rel` of `b`, relative to b's largest magnitude. */

// Widening chunk by chunk (linears held transposed, the tied unembedding) and per-row factors: gemma2-a's weights rounded to bf16, with the odd input channels of layer 0's gate and
// some token rows scaled so far down that one power-of-two scale per tensor cannot hold them
// (per row it can). Chunks of 3 rows force many parts on the tiny model.
describe('16-bit weights widened in chunks, with per-row factors (gemma2-a)', () => {
  const chunked = tempBackend('half-chunks', { rowChunkBytes: 4 * 3 * 64 });
  const TINY = 2 ** -40;

  async function stores(): Promise<{ spec: ModelSpec; half: WeightStore; f32: WeightStore }> {
    const dir = join(MODELS, 'gemma2-a');
    const spec = transposedTiedUnembed(parseModelConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))));
    const ckpt = await openCheckpoint(dir);
    try {
      const base = asBf16(ckpt);
      const scaled = (n: string): Uint16Array => {
        const v = bf16ToF32(base.getRaw!(n).data as Uint16Array);
        const [rows, cols] = ckpt.shape(n) as [number, number];
        if (n.endsWith('layers.0.mlp.gate_proj.weight')) for (let r = 1; r < rows; r += 2) for (let c = 0; c < cols; c++) v[r * cols + c]! *= TINY;
        if (n.endsWith('embed_tokens.weight')) for (let r = 10; r < rows; r += 3) for (let c = 0; c < cols; c++) v[r * cols + c]! *= TINY;
        return f32ToBf16(v);
      };
      const src: TensorSource = { ...base, get: (n) => bf16ToF32(scaled(n)), getRaw: (n) => ({ dtype: 'BF16', data: scaled(n) }) };
      return { spec, half: canonicalWeights(spec, src, ckpt.label, { keep16: true, transposeLinears: true }).store, f32: canonicalWeights(spec, src, ckpt.label).store };
    } finally {
      ckpt.close();
    }
  }

  it('stores per-row factors and transposed linears exactly', async () => {
    const { spec, half, f32 } = await stores();
    const gate = half.get('l0.gate.w')!;
    const embed = half.get('embed.tok')!;
    expect(isHalfWeight(gate) && typeof gate.scale !== 'number' && gate.transposed).toBe(true);
    expect(isHalfWeight(embed) && typeof embed.scale !== 'number').toBe(true);
    for (const n of spec.weightShapes.keys()) expect(widenWeight(half.get(n)!).data).toEqual(f32.get(n)!.data);
  });

  it('gives the float32 store\'s segment outputs and VJPs within 1e-6 (chunks split the output; the VJP sums them)', async () => {
    const { spec, half, f32 } = await stores();
    const ops = chunked().ops;
    const ids = ops.intTensor([1, 5, 9, 3, 7, 2, 4, 8], [2, 4]);
    const rtHalf = await chunked().loadModel(spec, half);
    const rtF32 = await chunked().loadModel(spec, f32);
    try {
      const a = await runChainOn(ops, rtHalf, spec, ids);
      const b = await runChainOn(ops, rtF32, spec, ids);
      expect(a.length).toBe(b.length);
      a.forEach((x, i) => expectClose(x, b[i]!, 1e-6));
      const un = spec.segments[spec.segments.length - 1]!;
      const cols = ops.intTensor([13, 1, 4, 16], [2, 2]);
      const x = ops.fill([2, 4, spec.dims.dModel], 0.5);
      for (const lastOnly of [false, true]) {
        const opts = { logits: { columns: cols, lastOnly } };
        const run = async (rt: SegmentRuntime) => {
          const y = await rt.forward(un.name, [x], opts);
          const [dx] = await rt.vjp(un.name, [x], ops.fill(y.shape, 1), opts);
          return [await y.data(), await dx!.data()];
        };
        expect(await run(rtHalf)).toEqual(await run(rtF32));
      }
    } finally {
      rtHalf.dispose();
      rtF32.dispose();
    }
  });
});

// forwardKeeping: the forward also returns its linears' results, and a VJP given them reads them
// instead of recomputing those products. Same outputs and cotangents as forward + vjp, for 16-bit
// (chunked) and float32 weights.
describe.each([['mistral-bf16', false], ['gemma2-a', true], ['neox-par-r50-bf16', false]] as const)('forwardKeeping on onnx (%s)', (fixture, roundToBf16) => {
  it('keeps the linears\' results and gives forward\'s output and vjp\'s cotangents with them', async () => {
    const { spec, half, f32 } = await loadStores(fixture, roundToBf16);
    const ops = backend().ops;
    const ids = ops.intTensor([1, 5, 9, 3, 7, 2, 4, 8], [2, 4]);
    for (const store of [half, f32]) {
      const rt = await backend().loadModel(spec, store);
      try {
        const values = new Map<string, Tensor>();
        let keptSegments = 0;
        for (const seg of spec.segments) {
          if (seg.kind === 'unembed') break;
          const inputs = seg.kind === 'embed' ? [ids] : seg.inputs.map((n) => values.get(n)!);
          const y = await rt.forward(seg.name, inputs);
          values.set(seg.name, y);
          if (seg.kind === 'embed' || seg.kind === 'sum' || seg.kind === 'scale') continue;
          const { output, kept } = await rt.forwardKeeping!(seg.name, inputs);
          expect(await output.data()).toEqual(await y.data());
          expect(kept.length).toBeGreaterThan(0);
          for (const k of kept) expect(k.shape.slice(0, 2)).toEqual([2, 4]);
          keptSegments++;
          const dy = ops.tensor(Float32Array.from({ length: y.shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i)), y.shape);
          const plain = await rt.vjp(seg.name, inputs, dy);
          const withKept = await rt.vjp(seg.name, inputs, dy, undefined, kept);
          expect(withKept.length).toBe(plain.length);
          for (const [i, g] of withKept.entries()) expectClose(await g.data(), await plain[i]!.data(), 1e-6);
          if (seg.kind === 'mlp') {
            // The kept values are read: other values give other cotangents.
            const [other] = await rt.vjp(seg.name, inputs, dy, undefined, kept.map((k) => ops.scale(k, 2)));
            expect(await other!.data()).not.toEqual(await plain[0]!.data());
          }
        }
        expect(keptSegments).toBeGreaterThanOrEqual(2 * spec.dims.nLayers);
        // A kept value of another batch is refused before anything runs.
        const seg = spec.segments.find((s) => s.kind === 'mlp')!;
        const inputs = seg.inputs.map((n) => values.get(n)!);
        const { kept } = await rt.forwardKeeping!(seg.name, inputs);
        const y = values.get(seg.name)!;
        await expect(rt.vjp(seg.name, inputs, ops.fill(y.shape, 1), undefined, [ops.fill([1, 4, 8], 0), ...kept.slice(1)])).rejects.toThrow(/kept value 0/);
      } finally {
        rt.dispose();
      }
    }
  });
});
