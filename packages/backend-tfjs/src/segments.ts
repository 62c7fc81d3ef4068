// The forward math of each segment kind, exactly as Hugging Face computes GPT-NeoX, GPT-2,
// Gemma 2/3 and the Llama family (docs/architecture.md, “The segment chain” and “The segment
// contract”), over canonical weights. Each builder takes the constants of one call (shapes,
// position offset, logit selection), prepares them outside the differentiated path, and returns
// a function of the segment's summed input — the function the runtime runs forward or hands to
// tf.grads for the VJP. Nothing here may need a gradient kernel that wasm lacks (gather) or
// that tfjs does not have (greater, topk): those only touch constants.

import * as tf from '@tensorflow/tfjs';
import {
  paddedKeyMask, paddedPositions, paddedRotaryTables, rotaryTables, type AttentionSegment, type EmbedSegment, type LinearSpec, type MlpSegment, type ProjectSegment, type UnembedSegment,
} from '@sfc/core';
import { activate, applyRotary, causalMask, linear, matMul, matMulConst, norm, rmsNormOf, softcap, swapLast } from './layers.js';

export type WeightOf = (name: string) => tf.Tensor;
export type SegmentFn = (x: tf.Tensor) => tf.Tensor;

/**
 * Token ids [b, s] → the residual stream entering block 0 (GPT-2 adds positions offset…offset+s−1,
 * per row minus its left padding when given; Gemma scales).
 */
export function embedForward(seg: EmbedSegment, w: WeightOf, ids: tf.Tensor, offset: number, padding?: readonly number[]): tf.Tensor {
  let tok = tf.gather(w(seg.tokenEmbedding), ids);
  if (seg.scale !== undefined) tok = tf.mul(tok, tf.scalar(seg.scale));
  if (!seg.positionEmbedding) return tok;
  const pos = w(seg.positionEmbedding);
  const [b, s] = ids.shape as [number, number];
  if (padding) return tf.add(tok, tf.gather(pos, tf.tensor2d(paddedPositions(padding, offset, s), [b, s], 'int32')));
  return tf.add(tok, tf.slice(pos, [offset, 0], [s, pos.shape[1]!]));
}

/** Keys and values of past positions, after the k norm and rotary: [b, nKvHeads, past, hd] each. */
export interface PastKeyValues { readonly k: tf.Tensor; readonly v: tf.Tensor }

/** The attention output and the keys and values of every position it attended to (past + new). */
export interface AttentionStep { readonly y: tf.Tensor; readonly k: tf.Tensor; readonly v: tf.Tensor }

/**
 * ln → qkv → heads → q/k norms → rotary → causal (sliding-window) softmax(softcap(q·k·scale)) → ·v
 * → merge (→ out), for x [b, s, d] at positions offset…offset+s−1, attending over `past` positions
 * 0…offset−1 (when given) and the new ones. Grouped-query attention runs the nHeads / nKvHeads
 * query heads of one kv head as one matrix of rows (no repeated keys). Returns the output and the
 * concatenated keys and values (what a KV cache keeps).
 */
export function attentionStepFn(seg: AttentionSegment, w: WeightOf, seq: number, offset: number, past?: PastKeyValues,
  padding?: readonly number[]): (x: tf.Tensor) => AttentionStep {
  const { nHeads: H, nKvHeads: Hkv, headDim: hd, rotaryDims: rot } = seg;
  const rep = H / Hkv;
  const pastLength = past ? past.k.shape[2]! : 0;
  const width = pastLength + seq;
  // The mask of one head, repeated for the `rep` query heads that share a kv head.
  let mask = tf.tile(tf.tensor2d(causalMask(seq, pastLength, seg.slidingWindow), [seq, width]), [rep, 1]);
  // Left padding: no query sees a pad slot ([b, 1, 1, width] added to every row's mask).
  if (padding) mask = tf.add(mask, tf.mul(tf.sub(1, tf.tensor4d(paddedKeyMask(padding, width), [padding.length, 1, 1, width], 'float32')), 1e9 * -1));
  const scale = tf.scalar(seg.scale);
  let cos: tf.Tensor | undefined, sin: tf.Tensor | undefined;
  if (seg.rotary) {
    // Core's tables (every rope type; dynamic NTK keyed on offset + seq, the total length with a cache);
    // with left padding one table per row ([b, 1, seq, rot], broadcast over heads).
    const t = padding ? paddedRotaryTables(seg.rotary, padding, offset, seq) : rotaryTables(seg.rotary, offset, seq);
    const shape = padding ? [padding.length, 1, seq, rot] : [seq, rot];
    cos = tf.tensor(t.cos, shape);
    sin = tf.tensor(t.sin, shape);
  }
  return (x) => {
    const [b, s] = x.shape as [number, number, number];
    const h = norm(x, seg.ln, w);
    const qkv = linear(h, w(seg.qkv.weight), seg.qkv.bias ? w(seg.qkv.bias) : undefined); // columns q | k | v
    // [b, s, n·hd] → [b, n, s, hd]
    const heads = (from: number, n: number) => tf.transpose(tf.reshape(tf.slice(qkv, [0, 0, from * hd], [b, s, n * hd]), [b, s, n, hd]), [0, 2, 1, 3]);
    let q = heads(0, H);
    let k = heads(H, Hkv);
    let v = heads(H + Hkv, Hkv);
    if (seg.qNorm) q = rmsNormOf(q, seg.qNorm, w);
    if (seg.kNorm) k = rmsNormOf(k, seg.kNorm, w);
    if (cos && sin) {
      // q and k travel together through the rotary (one pass for both).
      const qk = applyRotary(tf.concat([q, k], 1), cos, sin, rot);
      q = tf.slice(qk, [0, 0, 0, 0], [b, H, s, hd]);
      k = tf.slice(qk, [0, H, 0, 0], [b, Hkv, s, hd]);
    }
    if (past) {
      k = tf.concat([past.k, k], 2);
      v = tf.concat([past.v, v], 2);
    }
    // Query heads grouped by kv head: [b, Hkv, rep·s, hd] (head h = kv·rep + r).
    const qg = rep === 1 ? q : tf.reshape(q, [b, Hkv, rep * s, hd]);
    let scores = tf.mul(matMul(qg, swapLast(k)), scale); // [b, Hkv, rep·s, past + s]
    if (seg.softcap !== undefined) scores = softcap(scores, seg.softcap);
    const mixed = matMul(tf.softmax(tf.add(scores, mask)), v); // [b, Hkv, rep·s, hd]
    const merged = tf.reshape(tf.transpose(tf.reshape(mixed, [b, H, s, hd]), [0, 2, 1, 3]), [b, s, H * hd]);
    const y = seg.out ? linear(merged, w(seg.out.weight), seg.out.bias ? w(seg.out.bias) : undefined) : merged;
    return { y, k, v };
  };
}

/** The attention segment as a differentiable function of its input (no cache). */
export function attentionFn(seg: AttentionSegment, w: WeightOf, seq: number, offset: number): SegmentFn {
  const step = attentionStepFn(seg, w, seq, offset);
  return (x) => step(x).y;
}

/** ln → fcIn (gated: act(gate) ⊙ up) → activation → fcOut (→ postNorm). */
export function mlpFn(seg: MlpSegment, w: WeightOf): SegmentFn {
  const lin = (x: tf.Tensor, l: LinearSpec) => linear(x, w(l.weight), l.bias ? w(l.bias) : undefined);
  return (x) => {
    const h = norm(x, seg.ln, w);
    const a = seg.gate ? tf.mul(activate(lin(h, seg.gate), seg.activation), lin(h, seg.fcIn)) : activate(lin(h, seg.fcIn), seg.activation);
    const y = lin(a, seg.fcOut);
    return seg.postNorm ? norm(y, seg.postNorm, w) : y;
  };
}

/** The attention output projection after a concatenated-heads submodule (Gemma): postNorm(x @ W (+ b)). */
export function projectFn(seg: ProjectSegment, w: WeightOf): SegmentFn {
  return (x) => {
    const y = linear(x, w(seg.linear.weight), seg.linear.bias ? w(seg.linear.bias) : undefined);
    return seg.postNorm ? norm(y, seg.postNorm, w) : y;
  };
}

/** The name under which a runtime keeps the [in, out] copy of a weight stored [out, in] (tied unembedding). */
export function transposedWeight(name: string): string {
  return `${name}ᵀ`;
}

export interface UnembedCall {
  readonly lastOnly: boolean;
  /** int32 [b, k] vocabulary ids, or undefined for the whole vocabulary. */
  readonly columns?: tf.Tensor;
}

/**
 * final ln → @ W [d, V]. lastOnly: only the last position ([b, V] / [b, k]). columns: only the
 * requested vocabulary columns per example, gathered from W up front (never the full vocab).
 */
export function unembedFn(seg: UnembedSegment, w: WeightOf, call: UnembedCall): SegmentFn {
  // A transposed (tied) weight is read through the runtime's [d, vocab] copy (plain matMuls on wasm).
  const W = w(seg.transposed ? transposedWeight(seg.weight.weight) : seg.weight.weight);
  const bias = seg.weight.bias ? w(seg.weight.bias) : undefined;
  let selected: tf.Tensor | undefined; // [b, d, k]
  let selectedBias: tf.Tensor | undefined; // [b, 1, k]
  if (call.columns) {
    const [b, k] = call.columns.shape as [number, number];
    const flat = tf.reshape(call.columns, [b * k]);
    selected = tf.transpose(tf.reshape(tf.gather(W, flat, 1), [W.shape[0]!, b, k]), [1, 0, 2]);
    if (bias) selectedBias = tf.reshape(tf.gather(bias, flat), [b, 1, k]);
  }
  return (x) => {
    const [b, s, d] = x.shape as [number, number, number];
    const last = call.lastOnly ? tf.slice(x, [0, s - 1, 0], [b, 1, d]) : x;
    const h = norm(last, seg.ln, w);
    let logits: tf.Tensor;
    if (selected) {
      logits = matMulConst(h, selected); // [b, s', k]
      if (selectedBias) logits = tf.add(logits, selectedBias);
    } else {
      logits = linear(h, W, bias); // [b, s', V]
    }
    if (seg.softcap !== undefined) logits = softcap(logits, seg.softcap);
    return call.lastOnly ? tf.reshape(logits, [b, logits.shape[2]!]) : logits;
  };
}
