// Differentiable building blocks of the transformer segments (tfjs ops, autodiff-ready).
//
// Speed rule for the wasm flavor: a matMul with a transpose flag is ~15x slower, and tfjs's
// built-in MatMul gradient uses those flags. Every product here is a plain matMul, and the
// gradients are custom: for y = x @ W with W constant, dx = (W @ dyᵀ)ᵀ, which is as fast as the
// forward (measured on wasm: 1.0 ms vs 9.9 ms with the flag at [16,2048]·[2048,512]ᵀ).

import * as tf from '@tensorflow/tfjs';
import type { Activation, NormSpec, RmsNormSpec } from '@sfc/core';

type CustomGradientFunc = Parameters<typeof tf.customGrad>[0];
type Grad2 = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
type Grad1 = (dy: tf.Tensor) => tf.Tensor;

/** Swaps the last two axes. */
export function swapLast(t: tf.Tensor): tf.Tensor {
  const r = t.rank;
  if (r === 2) return tf.transpose(t);
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return tf.transpose(t, perm);
}

/**
 * `x @ w` where only `x` is differentiated (`w` a weight or another constant). Ranks: x [n, k]
 * with w [k, m], or batched x [B, n, k] with w [B, k, m].
 */
export function matMulConst(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
  const f = tf.customGrad(((xi: tf.Tensor) => ({
    value: tf.matMul(xi, w),
    gradFunc: ((dy) => swapLast(tf.matMul(w, swapLast(dy)))) as Grad1,
  })) as unknown as CustomGradientFunc);
  return f(x);
}

/** `a @ b` with both operands differentiated (attention): gradients through explicit transposes. */
export const matMul: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: ((dy, [sa, sb]) => [tf.matMul(dy, swapLast(sb!)), tf.matMul(swapLast(sa!), dy)]) as Grad2,
  };
}) as unknown as CustomGradientFunc) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/** y = x @ W (+ b) over the last axis of x [..., in]; W is [in, out]. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const [k, m] = w.shape as [number, number];
  const y = matMulConst(tf.reshape(x, [-1, k]), w);
  return tf.reshape(b ? tf.add(y, b) : y, [...x.shape.slice(0, -1), m]);
}

/**
 * Layer norm over the last axis as torch computes it: mean, then the biased variance of the
 * centred values (two passes, not E[x²] − E[x]², which cancels badly), eps inside the sqrt.
 */
export function layerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const centred = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centred), -1, true);
  return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, tf.scalar(eps)))), w), b);
}

/**
 * RMSNorm over the last axis as transformers computes it in float32: x / √(mean(x²) + eps), then
 * ⊙ w (offset 0) or ⊙ (1 + w) (offset 1, Gemma).
 */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number, offset: 0 | 1): tf.Tensor {
  const xhat = tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), tf.scalar(eps))));
  return tf.mul(xhat, offset === 1 ? tf.add(tf.scalar(1), w) : w);
}

/** A spec's norm (layer norm or RMSNorm) over the last axis of x. */
export function norm(x: tf.Tensor, n: NormSpec, weight: (name: string) => tf.Tensor): tf.Tensor {
  return n.kind === 'layernorm' ? layerNorm(x, weight(n.weight), weight(n.bias), n.eps) : rmsNormOf(x, n, weight);
}

export function rmsNormOf(x: tf.Tensor, n: RmsNormSpec, weight: (name: string) => tf.Tensor): tf.Tensor {
  return rmsNorm(x, weight(n.weight), n.eps, n.offset);
}

/** Gemma's soft-cap: cap · tanh(x / cap), in transformers' op order. */
export function softcap(x: tf.Tensor, cap: number): tf.Tensor {
  return tf.mul(tf.tanh(tf.div(x, tf.scalar(cap))), tf.scalar(cap));
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function activate(x: tf.Tensor, kind: Activation): tf.Tensor {
  switch (kind) {
    case 'gelu': // exact: x·Φ(x) = ½x(1 + erf(x/√2))
      return tf.mul(tf.mul(x, tf.scalar(0.5)), tf.add(tf.scalar(1), tf.erf(tf.mul(x, tf.scalar(Math.SQRT1_2)))));
    case 'gelu_new': // tanh approximation (GPT-2's gelu_new, torch's gelu(approximate='tanh'))
      return tf.mul(tf.mul(x, tf.scalar(0.5)),
        tf.add(tf.scalar(1), tf.tanh(tf.mul(tf.scalar(SQRT_2_OVER_PI), tf.add(x, tf.mul(tf.scalar(0.044715), tf.mul(x, tf.square(x))))))));
    case 'relu':
      return tf.relu(x);
    case 'silu': // x·σ(x)
      return tf.mul(x, tf.sigmoid(x));
  }
}

/**
 * Rotary embedding (rotate-half convention) on the first `rot` dims of the last axis of
 * x [..., seq, headDim]; cos/sin are [seq, rot] and broadcast over the leading axes.
 */
export function applyRotary(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, rot: number): tf.Tensor {
  const hd = x.shape[x.rank - 1]!;
  const lead = x.shape.slice(0, -1);
  const part = (from: number, width: number) => tf.slice(x, [...lead.map(() => 0), from], [...lead, width]);
  const xr = rot === hd ? x : part(0, rot);
  const half = rot / 2;
  const x1 = tf.slice(xr, [...lead.map(() => 0), 0], [...lead, half]);
  const x2 = tf.slice(xr, [...lead.map(() => 0), half], [...lead, half]);
  const rotated = tf.add(tf.mul(xr, cos), tf.mul(tf.concat([tf.neg(x2), x1], -1), sin));
  return rot === hd ? rotated : tf.concat([rotated, part(rot, hd - rot)], -1);
}

/**
 * Additive causal mask [seq, past + seq] for `seq` new positions after `past` cached ones: new
 * position i sees keys 0…past+i, and with a sliding window W only keys j > past + i − W.
 * 0 where allowed, −1e9 elsewhere (softmax gives exact zeros).
 */
export function causalMask(seq: number, past = 0, window?: number): Float32Array {
  const width = past + seq;
  const m = new Float32Array(seq * width);
  for (let i = 0; i < seq; i++) {
    const q = past + i;
    for (let j = 0; j < width; j++) if (j > q || (window !== undefined && j <= q - window)) m[i * width + j] = -1e9;
  }
  return m;
}
