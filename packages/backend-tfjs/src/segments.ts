// The forward math of each segment kind, exactly as Hugging Face computes GPT-NeoX and GPT-2
// (docs/architecture.md, “The segment chain”), over canonical weights. Each builder takes the constants of one call (shapes,
// position offset, logit selection), prepares them outside the differentiated path, and returns
// a function of the segment's summed input — the function the runtime runs forward or hands to
// tf.grads for the VJP. Nothing here may need a gradient kernel that wasm lacks (gather) or
// that tfjs does not have (greater, topk): those only touch constants.

import * as tf from '@tensorflow/tfjs';
import { rotaryTables, type AttentionSegment, type EmbedSegment, type MlpSegment, type UnembedSegment } from '@sfc/core';
import { activate, applyRotary, causalMask, layerNorm, linear, matMul, matMulConst, swapLast } from './layers.js';

export type WeightOf = (name: string) => tf.Tensor;
export type SegmentFn = (x: tf.Tensor) => tf.Tensor;

/** Token ids [b, s] → the residual stream entering block 0 (GPT-2 adds positions offset…offset+s−1). */
export function embedForward(seg: EmbedSegment, w: WeightOf, ids: tf.Tensor, offset: number): tf.Tensor {
  const tok = tf.gather(w(seg.tokenEmbedding), ids);
  if (!seg.positionEmbedding) return tok;
  const pos = w(seg.positionEmbedding);
  const [s] = ids.shape.slice(1) as [number];
  return tf.add(tok, tf.slice(pos, [offset, 0], [s, pos.shape[1]!]));
}

/** Keys and values of past positions, after rotary: [b, H, past, hd] each. */
export interface PastKeyValues { readonly k: tf.Tensor; readonly v: tf.Tensor }

/** The attention output and the keys and values of every position it attended to (past + new). */
export interface AttentionStep { readonly y: tf.Tensor; readonly k: tf.Tensor; readonly v: tf.Tensor }

/**
 * ln → qkv → heads → rotary → causal softmax(q·k·scale) → ·v → merge → out, for x [b, s, d] at
 * positions offset…offset+s−1, attending over `past` positions 0…offset−1 (when given) and the new
 * ones. Returns the output and the concatenated keys and values (what a KV cache keeps).
 */
export function attentionStepFn(seg: AttentionSegment, w: WeightOf, seq: number, offset: number, past?: PastKeyValues): (x: tf.Tensor) => AttentionStep {
  const { nHeads: H, headDim: hd, rotaryDims: rot } = seg;
  const pastLength = past ? past.k.shape[2]! : 0;
  const mask = tf.tensor2d(causalMask(seq, pastLength), [seq, pastLength + seq]);
  const scale = tf.scalar(seg.scale);
  let cos: tf.Tensor | undefined, sin: tf.Tensor | undefined;
  if (seg.rotary) {
    // Core's tables (every rope type; dynamic NTK keyed on offset + seq, the total length with a cache).
    const t = rotaryTables(seg.rotary, offset, seq);
    cos = tf.tensor2d(t.cos, [seq, rot]);
    sin = tf.tensor2d(t.sin, [seq, rot]);
  }
  return (x) => {
    const [b, s, d] = x.shape as [number, number, number];
    const h = layerNorm(x, w(seg.ln.weight), w(seg.ln.bias), seg.ln.eps);
    const qkv = linear(h, w(seg.qkv.weight), seg.qkv.bias ? w(seg.qkv.bias) : undefined); // [b, s, 3d], columns q | k | v
    // [b, s, n·hd] → [b, n, s, hd]; q and k travel together through the rotary (one pass for both).
    const heads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [b, s, -1, hd]), [0, 2, 1, 3]);
    let qk = heads(tf.slice(qkv, [0, 0, 0], [b, s, 2 * d]));
    if (cos && sin) qk = applyRotary(qk, cos, sin, rot);
    const q = tf.slice(qk, [0, 0, 0, 0], [b, H, s, hd]);
    let k = tf.slice(qk, [0, H, 0, 0], [b, H, s, hd]);
    let v = heads(tf.slice(qkv, [0, 0, 2 * d], [b, s, d]));
    if (past) {
      k = tf.concat([past.k, k], 2);
      v = tf.concat([past.v, v], 2);
    }
    const scores = tf.add(tf.mul(matMul(q, swapLast(k)), scale), mask); // [b, H, s, past + s]
    const mixed = matMul(tf.softmax(scores), v); // [b, H, s, hd]
    const merged = tf.reshape(tf.transpose(mixed, [0, 2, 1, 3]), [b, s, d]);
    return { y: linear(merged, w(seg.out.weight), seg.out.bias ? w(seg.out.bias) : undefined), k, v };
  };
}

/** The attention segment as a differentiable function of its input (no cache). */
export function attentionFn(seg: AttentionSegment, w: WeightOf, seq: number, offset: number): SegmentFn {
  const step = attentionStepFn(seg, w, seq, offset);
  return (x) => step(x).y;
}

/** ln → fcIn → activation → fcOut. */
export function mlpFn(seg: MlpSegment, w: WeightOf): SegmentFn {
  return (x) => {
    const h = layerNorm(x, w(seg.ln.weight), w(seg.ln.bias), seg.ln.eps);
    const a = activate(linear(h, w(seg.fcIn.weight), seg.fcIn.bias ? w(seg.fcIn.bias) : undefined), seg.activation);
    return linear(a, w(seg.fcOut.weight), seg.fcOut.bias ? w(seg.fcOut.bias) : undefined);
  };
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
  const W = w(seg.weight.weight);
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
    const h = layerNorm(last, w(seg.ln.weight), w(seg.ln.bias), seg.ln.eps);
    let logits: tf.Tensor;
    if (selected) {
      logits = matMulConst(h, selected); // [b, s', k]
      if (selectedBias) logits = tf.add(logits, selectedBias);
    } else {
      logits = linear(h, W, bias); // [b, s', V]
    }
    return call.lastOnly ? tf.reshape(logits, [b, logits.shape[2]!]) : logits;
  };
}
