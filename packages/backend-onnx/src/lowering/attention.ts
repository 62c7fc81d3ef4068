// Causal self-attention, as the ops it is made of: split the fused qkv projection into heads,
// rotary position embedding (rotate-half on the first `rotaryDims` of each head, with cos/sin
// tables that core computes per call and the runtime feeds), softmax attention under a causal
// mask, and merging the heads back; for KV caches, prepending the cached keys/values and handing
// the new ones out sequence-major. Each op's VJP sits beside it.

import type { GraphBuilder } from '../onnx-graph.js';
import { seqLen } from './embedding.js';
import type { OpLowering } from './op.js';
import { zerosLike } from './op.js';

export interface HeadAttrs { readonly nHeads: number; readonly headDim: number }

// [b, s, 3, h, hd] → [3, b, h, s, hd] and back.
const SPLIT_PERM = [2, 0, 3, 1, 4];
const SPLIT_INV = [1, 3, 0, 2, 4];
const SWAP_LAST = [0, 1, 3, 2];

/** inputs: qkv [b, s, 3d] (columns q | k | v, head-major) → q, k, v [b, h, s, hd] */
export const splitHeads: OpLowering<HeadAttrs> = {
  name: 'splitHeads',
  forward(g, [qkv], { nHeads, headDim }) {
    const t = g.node('Transpose', [g.node('Reshape', [qkv!, g.constI64([0, 0, 3, nHeads, headDim])])], { perm: SPLIT_PERM });
    const parts = g.nodeN('Split', [t], { axis: 0, num_outputs: 3 }, 3);
    return { outputs: parts.map((p) => g.node('Squeeze', [p, g.constI64([0])])) };
  },
  vjp(g, { outputs }, dOut) {
    const parts = dOut.map((d, i) => g.node('Unsqueeze', [d ?? zerosLike(g, outputs[i]!), g.constI64([0])]));
    const stacked = g.node('Transpose', [g.node('Concat', parts, { axis: 0 })], { perm: SPLIT_INV });
    return [g.node('Reshape', [stacked, g.constI64([0, 0, -1])])];
  },
};

/** inputs: x [b, h, s, hd] → [b, s, h·hd] */
export const mergeHeads: OpLowering<HeadAttrs> = {
  name: 'mergeHeads',
  forward(g, [x]) {
    return { outputs: [g.node('Reshape', [g.node('Transpose', [x!], { perm: [0, 2, 1, 3] }), g.constI64([0, 0, -1])])] };
  },
  vjp(g, { attrs: { nHeads, headDim } }, [dy]) {
    return [g.node('Transpose', [g.node('Reshape', [dy!, g.constI64([0, 0, nHeads, headDim])])], { perm: [0, 2, 1, 3] })];
  },
};

export interface RotateAttrs { readonly rotaryDims: number; readonly headDim: number }

function lastSlice(g: GraphBuilder, x: string, from: number, to: number): string {
  return g.node('Slice', [x, g.constI64([from]), g.constI64([to]), g.constI64([-1])]);
}

/**
 * inputs: x [b, h, s, hd], cos, sin [s, r] (constants: core's rotaryTables) → x with its first r
 * dims rotated: x_r·cos + R(x_r)·sin, R(x) = [−x₂, x₁] (rotate-half). R is linear with Rᵀ(y) = [y₂, −y₁].
 */
export const rotary: OpLowering<RotateAttrs> = {
  name: 'rotary',
  forward(g, [x, cos, sin], { rotaryDims: r, headDim }) {
    const xr = r === headDim ? x! : lastSlice(g, x!, 0, r);
    const rot = g.node('Concat', [g.node('Neg', [lastSlice(g, xr, r / 2, r)]), lastSlice(g, xr, 0, r / 2)], { axis: -1 });
    const yr = g.node('Add', [g.node('Mul', [xr, cos!]), g.node('Mul', [rot, sin!])]);
    return { outputs: [r === headDim ? yr : g.node('Concat', [yr, lastSlice(g, x!, r, headDim)], { axis: -1 })] };
  },
  vjp(g, { inputs: [, cos, sin], attrs: { rotaryDims: r, headDim } }, [dy]) {
    const gr = r === headDim ? dy! : lastSlice(g, dy!, 0, r);
    const a = g.node('Mul', [gr, sin!]);
    const rt = g.node('Concat', [lastSlice(g, a, r / 2, r), g.node('Neg', [lastSlice(g, a, 0, r / 2)])], { axis: -1 });
    const dr = g.node('Add', [g.node('Mul', [gr, cos!]), rt]);
    return [r === headDim ? dr : g.node('Concat', [dr, lastSlice(g, dy!, r, headDim)], { axis: -1 }), undefined, undefined];
  },
};

export interface CausalAttentionAttrs { readonly scale: number }

/** Lowest fp32: the masked score (as transformers uses torch.finfo.min), exp() of it underflows to 0. */
const MASKED = -3.4028234663852886e38;

/**
 * inputs: q [b, h, s, hd], k, v [b, h, t, hd] with t ≥ s → softmax(scale·q kᵀ, causal) v. The s
 * queries are the last s of the t key positions (t − s cached positions come first): query i
 * sees keys 0…t − s + i. VJP with p the probabilities: dv = pᵀ dy; dp = dy vᵀ;
 * ds = p ⊙ (dp − Σ_j dp ⊙ p); dq = scale·ds k; dk = scale·dsᵀ q.
 */
export const causalAttention: OpLowering<CausalAttentionAttrs> = {
  name: 'causalAttention',
  forward(g, [q, k, v], { scale }) {
    const scores = g.node('Mul', [g.node('MatMul', [q!, g.node('Transpose', [k!], { perm: SWAP_LAST })]), g.constF(scale)]);
    const s = seqLen(g, q!, 2), t = seqLen(g, k!, 2);
    const keys = g.node('Range', [g.constI64(0), t, g.constI64(1)]);
    const queries = g.node('Range', [g.node('Sub', [t, s]), t, g.constI64(1)]);
    const allowed = g.node('LessOrEqual', [g.node('Unsqueeze', [keys, g.constI64([0])]), g.node('Unsqueeze', [queries, g.constI64([1])])]);
    const p = g.node('Softmax', [g.node('Where', [allowed, scores, g.constF(MASKED)])], { axis: -1 });
    return { outputs: [g.node('MatMul', [p, v!])], saved: { p } };
  },
  vjp(g, { inputs: [q, k, v], saved: { p }, attrs: { scale } }, [dy]) {
    const dv = g.node('MatMul', [g.node('Transpose', [p!], { perm: SWAP_LAST }), dy!]);
    const dp = g.node('MatMul', [dy!, g.node('Transpose', [v!], { perm: SWAP_LAST })]);
    const rowDot = g.node('ReduceSum', [g.node('Mul', [dp, p!]), g.constI64([-1])], { keepdims: 1 });
    const ds = g.node('Mul', [g.node('Mul', [p!, g.node('Sub', [dp, rowDot])]), g.constF(scale)]);
    const dq = g.node('MatMul', [ds, k!]);
    const dk = g.node('MatMul', [g.node('Transpose', [ds], { perm: SWAP_LAST }), q!]);
    return [dq, dk, dv];
  },
};

// Sequence-major [s, b, h, hd] ↔ head-major [b, h, s, hd]. A KV cache stores keys sequence-major,
// so the positions held so far are a prefix of its buffer: fed without a copy, appended in place.
const TO_SEQ_MAJOR = [2, 0, 1, 3];
const FROM_SEQ_MAJOR = [1, 2, 0, 3];
/** Slice ends past any real length ("to the end"). */
const TO_END = Number.MAX_SAFE_INTEGER;

/** inputs: x [b, h, s, hd] → [s, b, h, hd] (what a KV cache appends). */
export const seqMajor: OpLowering<void> = {
  name: 'seqMajor',
  forward(g, [x]) {
    return { outputs: [g.node('Transpose', [x!], { perm: TO_SEQ_MAJOR })] };
  },
  vjp(g, _ctx, [dy]) {
    return [g.node('Transpose', [dy!], { perm: FROM_SEQ_MAJOR })];
  },
};

/** inputs: past [p, b, h, hd] (sequence-major, from a KV cache), x [b, h, s, hd] → [b, h, p + s, hd]. */
export const appendPast: OpLowering<void> = {
  name: 'appendPast',
  forward(g, [past, x]) {
    return { outputs: [g.node('Concat', [g.node('Transpose', [past!], { perm: FROM_SEQ_MAJOR }), x!], { axis: 2 })] };
  },
  vjp(g, { inputs: [past], needs }, [dy]) {
    const p = g.node('Shape', [past!], { start: 0, end: 1 });
    const axis = g.constI64([2]);
    const dx = g.node('Slice', [dy!, p, g.constI64([TO_END]), axis]);
    const dPast = needs[0] ? g.node('Transpose', [g.node('Slice', [dy!, g.constI64([0]), p, axis])], { perm: TO_SEQ_MAJOR }) : undefined;
    return [dPast, dx];
  },
};
