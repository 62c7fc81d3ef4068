// Each lowered op: forward vs float64 JS reference, VJP vs float64 finite differences.

import { describe, expect, it } from 'vitest';
import { checkOp, type OpCase } from '../test-support/op-harness.js';
import * as R from '../test-support/reference-math.js';
import { activationOp, gatedActivation, geluTanh, gelu, relu, silu, softCap } from './activation.js';
import { appendPast, causalAttention, type CausalAttentionAttrs, mergeHeads, rotary, seqMajor, splitHeads } from './attention.js';
import { embeddingLookup, positionRows, sum } from './embedding.js';
import { layerNorm } from './layer-norm.js';
import { linear } from './linear.js';
import { rmsNorm } from './rms-norm.js';
import { lastPosition, selectColumns } from './logits.js';
import type { Value } from './op.js';

const f = (name: string, shape: number[], seed: number, differentiable = true, scale = 1) =>
  ({ name, elem: 'float32' as const, shape, data: R.randn(seed, R.size(shape), scale), differentiable });
const ints = (name: string, shape: number[], data: number[], elem: 'int32' | 'int64' = 'int32') =>
  ({ name, elem, shape, data, differentiable: false });

// Round inputs to fp32 first so the reference sees exactly what onnxruntime sees.
function fp32(c: OpCase): OpCase {
  return { ...c, inputs: c.inputs.map((i) => ({ ...i, data: Float64Array.from(Float32Array.from(i.data)) })) };
}

const B = 2, S = 5, D = 8, H = 2, HD = 4;

const cases: OpCase[] = [
  {
    name: 'layerNorm', inputs: [f('x', [B, S, D], 1, true, 2), f('w', [D], 2, false), f('b', [D], 3, false)], outShape: [B, S, D],
    build: (p, [x, w, b]) => p.apply1(layerNorm, [x!, w!, b!], { eps: 1e-5 }),
    reference: ([x, w, b]) => R.layerNorm(x!, w!.data, b!.data, 1e-5),
  },
  {
    name: 'linear', inputs: [f('x', [B, S, D], 4), f('w', [D, 6], 5, false), f('b', [6], 6, false)], outShape: [B, S, 6],
    build: (p, [x, w, b]) => p.apply1(linear, [x!, w!, b!], undefined),
    reference: ([x, w, b]) => R.linear(x!, w!.data, D, 6, b!.data),
  },
  {
    name: 'linear (no bias)', inputs: [f('x', [B, S, D], 7), f('w', [D, 3], 8, false)], outShape: [B, S, 3],
    build: (p, [x, w]) => p.apply1(linear, [x!, w!], undefined),
    reference: ([x, w]) => R.linear(x!, w!.data, D, 3),
  },
  {
    name: 'gelu', inputs: [f('x', [B, S, D], 9, true, 3)], outShape: [B, S, D],
    build: (p, [x]) => p.apply1(gelu, [x!], undefined), reference: ([x]) => R.geluExact(x!),
  },
  {
    name: 'gelu_new', inputs: [f('x', [B, S, D], 10, true, 3)], outShape: [B, S, D],
    build: (p, [x]) => p.apply1(geluTanh, [x!], undefined), reference: ([x]) => R.geluTanh(x!),
  },
  {
    name: 'relu', inputs: [f('x', [B, S, D], 11, true, 3)], outShape: [B, S, D],
    build: (p, [x]) => p.apply1(relu, [x!], undefined), reference: ([x]) => R.relu(x!),
  },
  {
    name: 'sum (with broadcast)', inputs: [f('a', [B, S, D], 12), f('b', [B, S, D], 13), f('c', [S, D], 14)], outShape: [B, S, D],
    build: (p, [a, b, c]) => p.apply1(sum, [a!, b!, c!], { ranks: [3, 3, 2] }),
    reference: ([a, b, c]) => R.add(R.add(a!, b!), c!),
  },
  {
    name: 'splitHeads → mergeHeads of q·2 + k + v', inputs: [f('qkv', [B, S, 3 * D], 15)], outShape: [B, S, D],
    build: (p, [qkv]) => {
      const [q, k, v] = p.apply(splitHeads, [qkv!], { nHeads: H, headDim: HD }, 3) as [Value, Value, Value];
      const s = p.apply1(sum, [q, q, k, v], { ranks: [4, 4, 4, 4] });
      return p.apply1(mergeHeads, [s], { nHeads: H, headDim: HD });
    },
    reference: ([qkv]) => {
      const [q, k, v] = R.splitHeads(qkv!, H, HD);
      return R.mergeHeads(R.add(R.add(R.add(q, q), k), v));
    },
  },
  ...[2, 4].map((r): OpCase => {
    // Tables of positions 3…3+S−1 (base 100, scaled by 1.25 like a YaRN attention factor); constants of the op.
    const { cos, sin } = R.rotaryTables(Array.from({ length: r / 2 }, (_, i) => 1 / 100 ** ((2 * i) / r)), 3, S, 1.25);
    const table = (name: string, t: R.T64) => ({ name, elem: 'float32' as const, shape: [...t.shape], data: t.data, differentiable: false });
    return {
      name: `rotary (r=${r} of ${HD}, offset 3)`, inputs: [f('x', [B, H, S, HD], 16), table('cos', cos), table('sin', sin)], outShape: [B, H, S, HD],
      build: (p, [x, c, s]) => p.apply1(rotary, [x!, c!, s!], { rotaryDims: r, headDim: HD }),
      reference: ([x, c, s]) => R.rotary(x!, c!, s!),
    };
  }),
  {
    name: 'causalAttention', inputs: [f('q', [B, H, S, HD], 17), f('k', [B, H, S, HD], 18), f('v', [B, H, S, HD], 19)], outShape: [B, H, S, HD],
    build: (p, [q, k, v]) => p.apply1(causalAttention, [q!, k!, v!], { scale: 0.7 }),
    reference: ([q, k, v]) => R.causalAttention(q!, k!, v!, 0.7),
  },
  {
    // 3 cached positions before the 5 new queries: query i sees keys 0…3 + i.
    name: 'causalAttention over cached keys (t = s + 3)', inputs: [f('q', [B, H, S, HD], 26), f('k', [B, H, S + 3, HD], 27), f('v', [B, H, S + 3, HD], 28)],
    outShape: [B, H, S, HD],
    build: (p, [q, k, v]) => p.apply1(causalAttention, [q!, k!, v!], { scale: 0.7 }),
    reference: ([q, k, v]) => R.causalAttention(q!, k!, v!, 0.7),
  },
  ...[false, true].map((unitOffset): OpCase => ({
    name: `rmsNorm (${unitOffset ? '(1 + w), Gemma' : 'w, Llama'})`, inputs: [f('x', [B, S, D], 40, true, 2), f('w', [D], 41, false)], outShape: [B, S, D],
    build: (p, [x, w]) => p.apply1(rmsNorm, [x!, w!], { eps: 1e-6, unitOffset }),
    reference: ([x, w]) => R.rmsNorm(x!, w!.data, 1e-6, unitOffset),
  })),
  {
    name: 'rmsNorm per head (q/k norm, [b, h, s, hd] with w [hd])', inputs: [f('x', [B, H, S, HD], 42, true, 2), f('w', [HD], 43, false)], outShape: [B, H, S, HD],
    build: (p, [x, w]) => p.apply1(rmsNorm, [x!, w!], { eps: 1e-6, unitOffset: true }),
    reference: ([x, w]) => R.rmsNorm(x!, w!.data, 1e-6, true),
  },
  {
    name: 'silu', inputs: [f('x', [B, S, D], 44, true, 4)], outShape: [B, S, D],
    build: (p, [x]) => p.apply1(silu, [x!], undefined), reference: ([x]) => R.silu(x!),
  },
  {
    name: 'gelu_pytorch_tanh', inputs: [f('x', [B, S, D], 45, true, 3)], outShape: [B, S, D],
    build: (p, [x]) => p.apply1(activationOp('gelu_pytorch_tanh' as never), [x!], undefined), reference: ([x]) => R.geluTanh(x!),
  },
  ...(['silu', 'gelu_pytorch_tanh'] as const).map((activation): OpCase => ({
    name: `gatedActivation (${activation})`, inputs: [f('gate', [B, S, D], 46, true, 3), f('up', [B, S, D], 47)], outShape: [B, S, D],
    build: (p, [gate, up]) => p.apply1(gatedActivation, [gate!, up!], { activation }),
    reference: ([gate, up]) => R.mul(activation === 'silu' ? R.silu(gate!) : R.geluTanh(gate!), up!),
  })),
  {
    name: 'softCap (cap 2)', inputs: [f('x', [B, S, D], 48, true, 5)], outShape: [B, S, D],
    build: (p, [x]) => p.apply1(softCap, [x!], { cap: 2 }), reference: ([x]) => R.softCap(x!, 2),
  },
  {
    name: 'splitHeads, grouped (4 query heads, 2 key/value heads, bias-free widths)', inputs: [f('qkv', [B, S, (4 + 2 * 2) * 3], 49)],
    outShape: [B, S, 4 * 3],
    build: (p, [qkv]) => {
      const [q, k, v] = p.apply(splitHeads, [qkv!], { nHeads: 4, headDim: 3, nKvHeads: 2 }, 3) as [Value, Value, Value];
      // k and v differ in shape from q: use them through a grouped attention so all three get cotangents.
      const ctx = p.apply1(causalAttention, [q, k, v], { scale: 0.6, groups: 2, nKvHeads: 2 });
      return p.apply1(mergeHeads, [ctx], { nHeads: 4, headDim: 3 });
    },
    reference: ([qkv]) => {
      const heads = (from: number, n: number) => R.toHeads(R.columns(qkv!, from * 3, n * 3), n, 3);
      return R.mergeHeads(R.causalAttention(heads(0, 4), heads(4, 2), heads(6, 2), 0.6));
    },
  },
  ...([
    ['grouped, 2 per key head', { groups: 2, nKvHeads: 2 }, 2, 0],
    ['multi-query, 4 per key head', { groups: 4, nKvHeads: 1 }, 1, 0],
    ['soft-capped (cap 1.5)', { softCap: 1.5 }, 4, 0],
    ['sliding window 2', { window: 2 }, 4, 0],
    ['sliding window 3 over 3 cached positions, grouped, soft-capped', { window: 3, groups: 2, nKvHeads: 2, softCap: 2 }, 2, 3],
    ['window longer than the sequence', { window: 50 }, 4, 2],
  ] as [string, Omit<CausalAttentionAttrs, 'scale'>, number, number][]).map(([label, attrs, kvh, past], i): OpCase => ({
    name: `causalAttention ${label}`,
    inputs: [f('q', [B, 4, S, HD], 50 + i, true, 2), f('k', [B, kvh, S + past, HD], 60 + i, true, 2), f('v', [B, kvh, S + past, HD], 70 + i)],
    outShape: [B, 4, S, HD],
    build: (p, [q, k, v]) => p.apply1(causalAttention, [q!, k!, v!], { scale: 0.7, ...attrs }),
    reference: ([q, k, v]) => R.causalAttention(q!, k!, v!, 0.7, attrs),
  })),
  {
    name: 'seqMajor', inputs: [f('x', [B, H, S, HD], 29)], outShape: [S, B, H, HD],
    build: (p, [x]) => p.apply1(seqMajor, [x!], undefined), reference: ([x]) => R.transpose4(x!, [2, 0, 1, 3]),
  },
  ...[0, 3].map((P): OpCase => ({
    name: `appendPast (${P} cached positions)`, inputs: [f('past', [P, B, H, HD], 30), f('x', [B, H, S, HD], 31)], outShape: [B, H, P + S, HD],
    build: (p, [past, x]) => p.apply1(appendPast, [past!, x!], undefined),
    reference: ([past, x]) => R.concatAxis2(R.transpose4(past!, [1, 2, 0, 3]), x!),
  })),
  {
    name: 'embedding + positions (offset 2)',
    inputs: [f('tok', [10, D], 20, false), f('pos', [12, D], 21, false), ints('ids', [B, S], [1, 3, 5, 7, 9, 0, 2, 4, 6, 8]), ints('offset', [], [2], 'int64')],
    outShape: [B, S, D],
    build: (p, [tok, pos, ids, off]) => {
      const e = p.apply1(embeddingLookup, [tok!, ids!], undefined);
      const q = p.apply1(positionRows, [pos!, off!, ids!], { seqAxis: 1 });
      return p.apply1(sum, [e, q], { ranks: [3, 2] });
    },
    reference: ([tok, pos, ids]) => {
      const out = new Float64Array(B * S * D);
      for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let j = 0; j < D; j++) {
        out[(b * S + s) * D + j] = tok!.data[ids!.data[b * S + s]! * D + j]! + pos!.data[(2 + s) * D + j]!;
      }
      return R.t64([B, S, D], out);
    },
  },
  {
    name: 'lastPosition', inputs: [f('x', [B, S, D], 22)], outShape: [B, D],
    build: (p, [x]) => p.apply1(lastPosition, [x!], undefined), reference: ([x]) => R.lastPosition(x!),
  },
  ...[true, false].map((hasSeq): OpCase => ({
    name: `selectColumns (${hasSeq ? 'all positions' : 'last position'}, bias)`,
    inputs: [f('h', hasSeq ? [B, S, D] : [B, D], 23), f('w', [D, 11], 24, false), ints('cols', [B, 3], [0, 10, 4, 4, 2, 7]), f('bias', [11], 25, false)],
    outShape: hasSeq ? [B, S, 3] : [B, 3],
    build: (p, [h, w, c, b]) => p.apply1(selectColumns, [h!, w!, c!, b!], { hasSeq }),
    reference: ([h, w, c, b]) => R.selectColumns(h!, w!.data, 11, c!.data, 3, b!.data),
  })),
];

describe('lowered ops: forward vs float64 reference, VJP vs finite differences', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const r = await checkOp(fp32(c));
      expect(r.forwardErr).toBeLessThan(2e-6);
      // Measured: forward ≤ 1e-7, VJP ≤ 3e-7 relative to the largest entry.
      for (const e of r.vjpErr) expect(e).toBeLessThan(1e-5);
    });
  }
});

describe('VJP checks can fail', () => {
  it('a deliberately wrong reference is caught', async () => {
    const c = fp32(cases.find((x) => x.name === 'gelu')!);
    const r = await checkOp({ ...c, reference: ([x]) => R.geluTanh(R.map(x!, (v) => v * 1.01)) });
    expect(r.forwardErr).toBeGreaterThan(1e-3);
    expect(r.vjpErr[0]).toBeGreaterThan(1e-3);
  });
});
