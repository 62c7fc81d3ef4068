// 16-bit weights on onnx: a BF16 checkpoint (the mistral-bf16 fixture; gemma2-a's weights rounded
// to bf16, for the tied unembedding read transposed and the scaled embedding) kept 16-bit in the
// store is fed to ORT as fp16 and widened in the graph, and every segment's output and VJP is
// identical to the run on the float32-widened store. (mistral-bf16's parity with PyTorch, through
// Model.load, is test/src/model-parity.test.ts.)

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  bf16ToF32, canonicalWeights, f32ToBf16, isHalfWeight, type Checkpoint, type TensorSource, openCheckpoint, parseModelConfig, storeBytes, transposedTiedUnembed, weightMemory, widenWeight,
  type ModelSpec, type SegmentRuntime, type Tensor, type WeightStore,
} from '@sfc/core';
import { tempBackend } from './test-support/temp-backend.js';

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
    return { spec, half: canonicalWeights(spec, src, ckpt.label, { keep16: true }).store, f32: canonicalWeights(spec, src, ckpt.label).store };
  } finally {
    ckpt.close();
  }
}

/** Every segment's output along the chain, and the input cotangents of every non-embed segment's VJP. */
async function runChain(rt: SegmentRuntime, spec: ModelSpec, ids: Tensor): Promise<Float32Array[]> {
  const ops = backend().ops;
  const values = new Map<string, Tensor>();
  const out: Float32Array[] = [];
  for (const seg of spec.segments) {
    const inputs = seg.kind === 'embed' ? [ids] : seg.inputs.map((n) => values.get(n)!);
    const y = await rt.forward(seg.name, inputs);
    values.set(seg.name, y);
    out.push(await y.data() as Float32Array);
    if (seg.kind !== 'embed') {
      const dy = ops.fill(y.shape, 1);
      for (const g of await rt.vjp(seg.name, inputs, dy)) out.push(await g.data() as Float32Array);
    }
  }
  return out;
}

describe.each([['mistral-bf16', false], ['gemma2-a', true]] as const)('16-bit weights on onnx (%s)', (fixture, roundToBf16) => {
  it('keeps the BF16 weights 16-bit in the store, exactly (widened = the float32 store)', async () => {
    const { spec, half, f32 } = await loadStores(fixture, roundToBf16);
    const names = [...spec.weightShapes.keys()];
    expect(names.filter((n) => !isHalfWeight(half.get(n)!))).toEqual([]);
    for (const n of names) expect(widenWeight(half.get(n)!).data).toEqual(f32.get(n)!.data);
    expect(storeBytes(half)).toBe(storeBytes(f32) / 2);
    // The memory check counts what is held: 2 bytes a value, no backend copy on onnx.
    expect(weightMemory(spec, backend(), { half: true })).toEqual([{ what: `${spec.architecture} weights (16-bit, as stored)`, bytes: storeBytes(half) }]);
  });

  it('gives identical segment outputs and VJPs to the float32-widened store', async () => {
    const { spec, half, f32 } = await loadStores(fixture, roundToBf16);
    const ids = backend().ops.intTensor([1, 5, 9, 3, 7, 2, 4, 8], [2, 4]);
    const rtHalf = await backend().loadModel(spec, half);
    const rtF32 = await backend().loadModel(spec, f32);
    try {
      const a = await runChain(rtHalf, spec, ids);
      const b = await runChain(rtF32, spec, ids);
      expect(a.length).toBe(b.length);
      a.forEach((x, i) => expect(x).toEqual(b[i]));
      // Selected logits (columns, or rows of a transposed tied embedding, gathered, then widened).
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
        expect(await run(rtHalf)).toEqual(await run(rtF32));
      }
    } finally {
      rtHalf.dispose();
      rtF32.dispose();
    }
  });
});
