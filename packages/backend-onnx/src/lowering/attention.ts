// Causal self-attention, as the ops it is made of: split the fused qkv projection into heads
// (fewer key/value heads for grouped-query attention), rotary position embedding (rotate-half on
// the first `rotaryDims` of each head, with cos/sin tables that core computes per call and the
// runtime feeds), softmax attention under a causal mask (optionally a sliding window, with
// optionally soft-capped scores), and merging the heads back; for KV caches, prepending the cached
// keys/values and handing the new ones out sequence-major. Each op's VJP sits beside it. The math
// is docs/architecture.md's segment contract.

import type { GraphBuilder } from '../onnx-graph.js';
import { softCapForward, softCapVjp } from './activation.js';
import { seqLen } from './embedding.js';
import type { OpLowering } from './op.js';
import { zerosLike } from './op.js';

// [b, s, 3, h, hd] → [3, b, h, s, hd] and back.
const SPLIT_PERM = [2, 0, 3, 1, 4];
const SPLIT_INV = [1, 3, 0, 2, 4];
const SWAP_LAST = [0, 1, 3, 2];

/** Query heads and, for grouped-query attention, fewer key/value heads (each shared by nHeads / nKvHeads queries). */
export interface HeadAttrs { readonly nHeads: number; readonly headDim: number; readonly nKvHeads?: number }

/**
 * inputs: qkv [b, s, (h + 2·kvh)·hd] (columns q | k | v, each head-major) → q [b, h, s, hd],
 * k, v [b, kvh, s, hd]. With kvh = h one reshape and transpose split all three.
 */
export const splitHeads: OpLowering<HeadAttrs> = {
  name: 'splitHeads',
  forward(g, [qkv], { nHeads, headDim, nKvHeads = nHeads }) {
    if (nKvHeads !== nHeads) {
      const widths = [nHeads, nKvHeads, nKvHeads].map((n) => n * headDim);
      const parts = g.nodeN('Split', [qkv!, g.constI64(widths)], { axis: -1 }, 3);
      return { outputs: parts.map((p, i) => toHeadsNode(g, p, i === 0 ? nHeads : nKvHeads, headDim)) };
    }
    const t = g.node('Transpose', [g.node('Reshape', [qkv!, g.constI64([0, 0, 3, nHeads, headDim])])], { perm: SPLIT_PERM });
    const parts = g.nodeN('Split', [t], { axis: 0, num_outputs: 3 }, 3);
    return { outputs: parts.map((p) => g.node('Squeeze', [p, g.constI64([0])])) };
  },
  vjp(g, { outputs, attrs: { nHeads, nKvHeads = nHeads } }, dOut) {
    const ds = dOut.map((d, i) => d ?? zerosLike(g, outputs[i]!));
    if (nKvHeads !== nHeads) return [g.node('Concat', ds.map((d) => mergeHeadsNode(g, d)), { axis: -1 })];
    const parts = ds.map((d) => g.node('Unsqueeze', [d, g.constI64([0])]));
    const stacked = g.node('Transpose', [g.node('Concat', parts, { axis: 0 })], { perm: SPLIT_INV });
    return [g.node('Reshape', [stacked, g.constI64([0, 0, -1])])];
  },
};

/** [b, s, n·hd] → [b, n, s, hd] */
function toHeadsNode(g: GraphBuilder, x: string, n: number, hd: number): string {
  return g.node('Transpose', [g.node('Reshape', [x, g.constI64([0, 0, n, hd])])], { perm: [0, 2, 1, 3] });
}

/** [b, n, s, hd] → [b, s, n·hd] */
function mergeHeadsNode(g: GraphBuilder, x: string): string {
  return g.node('Reshape', [g.node('Transpose', [x], { perm: [0, 2, 1, 3] }), g.constI64([0, 0, -1])]);
}

/** inputs: x [b, h, s, hd] → [b, s, h·hd] */
export const mergeHeads: OpLowering<HeadAttrs> = {
  name: 'mergeHeads',
  forward(g, [x]) {
    return { outputs: [mergeHeadsNode(g, x!)] };
  },
  vjp(g, { attrs: { nHeads, headDim } }, [dy]) {
    return [toHeadsNode(g, dy!, nHeads, headDim)];
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

export interface CausalAttentionAttrs {
  /** Multiplies q·k. */
  readonly scale: number;
  /** Grouped-query attention: query heads per key/value head (default 1) and the key/value heads. */
  readonly groups?: number;
  readonly nKvHeads?: number;
  /** Gemma 2: scores become cap·tanh(scores / cap) before the mask. */
  readonly softCap?: number;
  /** Sliding window: query i sees keys j with i − window < j ≤ i (transformers' sliding_window_overlay). */
  readonly window?: number;
  /**
   * Left-padded KV cache: a 4th input, bool [b, t], false for a pad key, which no query of that
   * row sees (a pad query then sees nothing: finite, meaningless). Forward only (cached graphs).
   */
  readonly keyMask?: boolean;
}

/** Lowest fp32: the masked score (as transformers uses torch.finfo.min), exp() of it underflows to 0. */
const MASKED = -3.4028234663852886e38;

/**
 * [s, t] true where a query may see a key: the s queries are the last s of the t key positions
 * (t − s cached positions come first), query i sits at position t − s + i and sees keys
 * j ≤ t − s + i (and j > t − s + i − window). With g query heads per key head the query rows are
 * g copies of the s positions ([g·s, t]).
 */
function allowedKeys(g: GraphBuilder, q: string, k: string, window: number | undefined, groups: number): string {
  const s = seqLen(g, q, 2), t = seqLen(g, k, 2);
  const keys = g.node('Range', [g.constI64(0), t, g.constI64(1)]);
  const queries = g.node('Range', [g.node('Sub', [t, s]), t, g.constI64(1)]);
  const row = g.node('Unsqueeze', [keys, g.constI64([0])]), col = g.node('Unsqueeze', [queries, g.constI64([1])]);
  let allowed = g.node('LessOrEqual', [row, col]);
  if (window !== undefined) allowed = g.node('And', [allowed, g.node('Greater', [row, g.node('Sub', [col, g.constI64(window)])])]);
  if (groups === 1) return allowed;
  return g.node('Flatten', [g.node('Tile', [g.node('Unsqueeze', [allowed, g.constI64([0])]), g.constI64([groups, 1, 1])])], { axis: 2 });
}

/** q [b, h, s, hd] → [b, kvh, g·s, hd] (query heads of one key head are adjacent: no copy of k or v). */
const grouped = (g: GraphBuilder, x: string, nKvHeads: number): string => g.node('Reshape', [x, g.constI64([0, nKvHeads, -1, 0])]);

/**
 * inputs: q [b, h, s, hd], k, v [b, kvh, t, hd] with t ≥ s and h = groups·kvh →
 * softmax(mask(cap(scale·q kᵀ))) v, each query head attending with key head ⌊head / groups⌋
 * (transformers' repeat_kv). VJP with p the probabilities and c = tanh(scale·q kᵀ / cap):
 * dv = pᵀ dy; dp = dy vᵀ; dl = p ⊙ (dp − Σ_j dp ⊙ p); ds = scale·dl ⊙ (1 − c²) (no cap: scale·dl);
 * dq = ds k; dk = dsᵀ q — summed over the queries of a group by the grouped matmuls.
 */
export const causalAttention: OpLowering<CausalAttentionAttrs> = {
  name: 'causalAttention',
  forward(g, [q, k, v, keys], { scale, groups = 1, nKvHeads, softCap, window, keyMask }) {
    const qg = groups === 1 ? q! : grouped(g, q!, nKvHeads!);
    let scores = g.node('Mul', [g.node('MatMul', [qg, g.node('Transpose', [k!], { perm: SWAP_LAST })]), g.constF(scale)]);
    let capped: string | undefined;
    if (softCap !== undefined) ({ y: scores, t: capped } = softCapForward(g, scores, softCap));
    let allowed = allowedKeys(g, q!, k!, window, groups);
    // [g·s, t] and [b, 1, 1, t] → [b, 1, g·s, t], broadcast over the key heads.
    if (keyMask) allowed = g.node('And', [allowed, g.node('Unsqueeze', [keys!, g.constI64([1, 2])])]);
    const p = g.node('Softmax', [g.node('Where', [allowed, scores, g.constF(MASKED)])], { axis: -1 });
    const out = g.node('MatMul', [p, v!]);
    const saved: Record<string, string> = { p, qg };
    if (capped) saved.capped = capped;
    return { outputs: [groups === 1 ? out : g.node('Reshape', [out, g.node('Shape', [q!])])], saved };
  },
  vjp(g, { inputs: [q, k, v], saved: { p, qg, capped }, attrs: { scale, groups = 1, nKvHeads, keyMask } }, [dy]) {
    if (keyMask) throw new Error('internal: no VJP through a padded KV cache');
    const dyg = groups === 1 ? dy! : grouped(g, dy!, nKvHeads!);
    const dv = g.node('MatMul', [g.node('Transpose', [p!], { perm: SWAP_LAST }), dyg]);
    const dp = g.node('MatMul', [dyg, g.node('Transpose', [v!], { perm: SWAP_LAST })]);
    const rowDot = g.node('ReduceSum', [g.node('Mul', [dp, p!]), g.constI64([-1])], { keepdims: 1 });
    let dl = g.node('Mul', [p!, g.node('Sub', [dp, rowDot])]);
    if (capped) dl = softCapVjp(g, capped, dl);
    const ds = g.node('Mul', [dl, g.constF(scale)]);
    const dq = g.node('MatMul', [ds, k!]);
    const dk = g.node('MatMul', [g.node('Transpose', [ds], { perm: SWAP_LAST }), qg!]);
    return [groups === 1 ? dq : g.node('Reshape', [dq, g.node('Shape', [q!])]), dk, dv];
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
