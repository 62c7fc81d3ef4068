// A trainable GPT-NeoX (Hugging Face's computation: partial rotary with the rotate-half
// convention, parallel residual, exact-erf GELU, untied unembedding) written directly in
// TensorFlow.js for the embedded model's training script, plus the export of its parameters
// in Hugging Face names and layouts.
//
// Parameters use sfc's canonical layout (packages/core/src/model/spec.ts): linear weights
// [in, out]; qkv [d, 3d] with columns q | k | v, head-major inside each block. The export
// converts to the checkpoint layout that @sfc/core's loader converts back.
//
// wasm notes (shared/DEPENDENCIES.md): matMul with transpose flags is ~15x slower, so every
// product goes through `mm`, whose gradient uses explicit transposes; gather has no gradient
// on wasm, so the embedding is oneHot · matMul (and OneHot itself must be asked for int32, below).

import * as tf from '@tensorflow/tfjs';
import { transpose } from '@sfc/core';
import type { Rng } from './rng.js';

export interface NeoxConfig {
  readonly vocabSize: number;
  readonly dModel: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly dMlp: number;
  /** Fraction of each head's dims that rotate (HF `rotary_pct`). */
  readonly rotaryPct: number;
  readonly rotaryBase: number;
  readonly maxPositions: number;
  readonly layerNormEps: number;
}

export type Params = Map<string, tf.Variable>;

const headDim = (c: NeoxConfig) => c.dModel / c.nHeads;
const rotaryDims = (c: NeoxConfig) => Math.floor(headDim(c) * c.rotaryPct);

/** Canonical parameter shapes, in a fixed order (the order of the optimizer state and of the export). */
export function paramShapes(c: NeoxConfig): [string, number[]][] {
  const { vocabSize: V, dModel: d, dMlp: m } = c;
  const out: [string, number[]][] = [['embed.tok', [V, d]]];
  for (let l = 0; l < c.nLayers; l++) {
    out.push([`l${l}.ln1.w`, [d]], [`l${l}.ln1.b`, [d]], [`l${l}.ln2.w`, [d]], [`l${l}.ln2.b`, [d]],
      [`l${l}.qkv.w`, [d, 3 * d]], [`l${l}.qkv.b`, [3 * d]], [`l${l}.attn_out.w`, [d, d]], [`l${l}.attn_out.b`, [d]],
      [`l${l}.fc_in.w`, [d, m]], [`l${l}.fc_in.b`, [m]], [`l${l}.fc_out.w`, [m, d]], [`l${l}.fc_out.b`, [d]]);
  }
  out.push(['final_ln.w', [d]], ['final_ln.b', [d]], ['unembed.w', [d, V]]);
  return out;
}

/**
 * GPT-NeoX's initialisation scheme (normal(0, 0.02); output projections scaled by
 * 1/sqrt(2·layers) as in GPT-2; layer-norm weights 1, biases 0), drawn from the seeded Rng.
 */
export function initParams(c: NeoxConfig, rng: Rng, std = 0.02): Params {
  const params: Params = new Map();
  for (const [name, shape] of paramShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (/\.ln\d?\.w$|final_ln\.w$/.test(name)) data.fill(1);
    else if (!/\.b$/.test(name)) {
      const s = /attn_out\.w$|fc_out\.w$/.test(name) ? std / Math.sqrt(2 * c.nLayers) : std;
      for (let i = 0; i < n; i++) data[i] = rng.normal() * s;
    }
    params.set(name, tf.variable(tf.tensor(data, shape), true, name));
  }
  return params;
}

/** Last two axes swapped. */
function tT(x: tf.Tensor): tf.Tensor {
  const r = x.rank;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
  return tf.transpose(x, perm);
}

/** matMul whose gradient uses explicit transposes (fast on wasm). */
const mm = tf.customGrad((a, b, save) => {
  (save as tf.GradSaveFunc)([a as tf.Tensor, b as tf.Tensor]);
  return {
    value: tf.matMul(a as tf.Tensor, b as tf.Tensor),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.matMul(dy, tT(saved[1]!)), tf.matMul(tT(saved[0]!), dy)],
  };
}) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

function layerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), w), b);
}

/** float32 one-hot rows. tfjs-wasm 4.22's OneHot kernel returns all zeros when asked for float32 directly. */
const oneHot = (ids: tf.Tensor, depth: number): tf.Tensor => tf.cast(tf.oneHot(ids as tf.Tensor1D, depth), 'float32');

const gelu = (x: tf.Tensor): tf.Tensor => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));

/** cos and sin tables [T, rot] of HF's GPT-NeoX rotary embedding (frequencies repeated twice). */
function rotaryTables(c: NeoxConfig, T: number): { cos: tf.Tensor; sin: tf.Tensor } {
  const rot = rotaryDims(c);
  const cos = new Float32Array(T * rot), sin = new Float32Array(T * rot);
  for (let t = 0; t < T; t++) for (let i = 0; i < rot / 2; i++) {
    const ang = t / Math.pow(c.rotaryBase, (2 * i) / rot);
    for (const j of [i, i + rot / 2]) { cos[t * rot + j] = Math.cos(ang); sin[t * rot + j] = Math.sin(ang); }
  }
  return { cos: tf.tensor(cos, [T, rot]), sin: tf.tensor(sin, [T, rot]) };
}

/** x [B, H, T, hd]: the first `rot` dims rotate (x·cos + rotate_half(x)·sin), the rest pass. */
function applyRotary(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, rot: number, hd: number): tf.Tensor {
  if (rot === 0) return x;
  const [B, H, T] = x.shape as number[];
  const xr = tf.slice(x, [0, 0, 0, 0], [B!, H!, T!, rot]);
  const x1 = tf.slice(xr, [0, 0, 0, 0], [B!, H!, T!, rot / 2]);
  const x2 = tf.slice(xr, [0, 0, 0, rot / 2], [B!, H!, T!, rot / 2]);
  const rotated = tf.add(tf.mul(xr, cos), tf.mul(tf.concat([tf.neg(x2), x1], -1), sin));
  if (rot === hd) return rotated;
  return tf.concat([rotated, tf.slice(x, [0, 0, 0, rot], [B!, H!, T!, hd - rot])], -1);
}

/** Logits [B, T, V] for token ids [B, T] (int32); position 0 is the first token. */
export function forward(c: NeoxConfig, P: Params, ids: tf.Tensor2D): tf.Tensor3D {
  const [B, T] = ids.shape;
  const { dModel: d, nHeads: H, vocabSize: V } = c;
  const hd = headDim(c), rot = rotaryDims(c);
  const p = (n: string) => P.get(n)!;
  const N = B * T;
  const { cos, sin } = rotaryTables(c, T);
  const maskData = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) maskData[i * T + j] = -1e9;
  const mask = tf.tensor(maskData, [T, T]);
  const heads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [B, T, H, hd]), [0, 2, 1, 3]);

  let x = mm(oneHot(tf.reshape(ids, [N]), V), p('embed.tok')); // [N, d]
  for (let l = 0; l < c.nLayers; l++) {
    const L = `l${l}.`;
    const h = layerNorm(x, p(`${L}ln1.w`), p(`${L}ln1.b`), c.layerNormEps);
    const qkv = tf.add(mm(h, p(`${L}qkv.w`)), p(`${L}qkv.b`));
    const q = applyRotary(heads(tf.slice(qkv, [0, 0], [N, d])), cos, sin, rot, hd);
    const k = applyRotary(heads(tf.slice(qkv, [0, d], [N, d])), cos, sin, rot, hd);
    const v = heads(tf.slice(qkv, [0, 2 * d], [N, d]));
    const scores = tf.add(tf.mul(mm(q, tT(k)), 1 / Math.sqrt(hd)), mask);
    const z = mm(tf.softmax(scores, -1), v); // [B, H, T, hd]
    const merged = tf.reshape(tf.transpose(z, [0, 2, 1, 3]), [N, d]);
    const attn = tf.add(mm(merged, p(`${L}attn_out.w`)), p(`${L}attn_out.b`));
    const h2 = layerNorm(x, p(`${L}ln2.w`), p(`${L}ln2.b`), c.layerNormEps);
    const mlp = tf.add(mm(gelu(tf.add(mm(h2, p(`${L}fc_in.w`)), p(`${L}fc_in.b`))), p(`${L}fc_out.w`)), p(`${L}fc_out.b`));
    x = tf.add(tf.add(x, attn), mlp); // parallel residual
  }
  const out = mm(layerNorm(x, p('final_ln.w'), p('final_ln.b'), c.layerNormEps), p('unembed.w'));
  return tf.reshape(out, [B, T, V]);
}

/** Mean next-token cross-entropy over the positions where `weights` [B, T] is 1. */
export function nextTokenLoss(c: NeoxConfig, P: Params, inputs: tf.Tensor2D, targets: tf.Tensor2D, weights: tf.Tensor2D): tf.Scalar {
  const [B, T] = inputs.shape;
  const logits = tf.reshape(forward(c, P, inputs), [B * T, c.vocabSize]);
  const logp = tf.logSoftmax(logits, -1);
  const nll = tf.neg(tf.sum(tf.mul(logp, oneHot(tf.reshape(targets, [B * T]), c.vocabSize)), -1));
  const w = tf.reshape(weights, [B * T]);
  return tf.div(tf.sum(tf.mul(nll, w)), tf.maximum(tf.sum(w), 1)) as tf.Scalar;
}

/**
 * The parameters as a Hugging Face GPTNeoXForCausalLM state dict: weights [out, in];
 * `query_key_value` rows interleaved per head as (head, {q, k, v}, head_dim).
 */
export async function toHfTensors(c: NeoxConfig, P: Params): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const { dModel: d, dMlp: m, vocabSize: V, nHeads: H } = c;
  const hd = headDim(c);
  const get = async (n: string) => new Float32Array(await P.get(n)!.data());
  const T = transpose; // core's [rows, cols] → [cols, rows], the inverse of what its loader applies
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  out.set('gpt_neox.embed_in.weight', { shape: [V, d], data: await get('embed.tok') });
  for (let l = 0; l < c.nLayers; l++) {
    const L = `gpt_neox.layers.${l}.`;
    const w = await get(`l${l}.qkv.w`), b = await get(`l${l}.qkv.b`);
    const qw = new Float32Array(3 * d * d), qb = new Float32Array(3 * d);
    for (let h = 0; h < H; h++) for (let t = 0; t < 3; t++) for (let i = 0; i < hd; i++) {
      const row = h * 3 * hd + t * hd + i, col = t * d + h * hd + i;
      qb[row] = b[col]!;
      for (let k = 0; k < d; k++) qw[row * d + k] = w[k * 3 * d + col]!;
    }
    out.set(`${L}input_layernorm.weight`, { shape: [d], data: await get(`l${l}.ln1.w`) });
    out.set(`${L}input_layernorm.bias`, { shape: [d], data: await get(`l${l}.ln1.b`) });
    out.set(`${L}post_attention_layernorm.weight`, { shape: [d], data: await get(`l${l}.ln2.w`) });
    out.set(`${L}post_attention_layernorm.bias`, { shape: [d], data: await get(`l${l}.ln2.b`) });
    out.set(`${L}attention.query_key_value.weight`, { shape: [3 * d, d], data: qw });
    out.set(`${L}attention.query_key_value.bias`, { shape: [3 * d], data: qb });
    out.set(`${L}attention.dense.weight`, { shape: [d, d], data: T(await get(`l${l}.attn_out.w`), d, d) });
    out.set(`${L}attention.dense.bias`, { shape: [d], data: await get(`l${l}.attn_out.b`) });
    out.set(`${L}mlp.dense_h_to_4h.weight`, { shape: [m, d], data: T(await get(`l${l}.fc_in.w`), d, m) });
    out.set(`${L}mlp.dense_h_to_4h.bias`, { shape: [m], data: await get(`l${l}.fc_in.b`) });
    out.set(`${L}mlp.dense_4h_to_h.weight`, { shape: [d, m], data: T(await get(`l${l}.fc_out.w`), m, d) });
    out.set(`${L}mlp.dense_4h_to_h.bias`, { shape: [d], data: await get(`l${l}.fc_out.b`) });
  }
  out.set('gpt_neox.final_layer_norm.weight', { shape: [d], data: await get('final_ln.w') });
  out.set('gpt_neox.final_layer_norm.bias', { shape: [d], data: await get('final_ln.b') });
  out.set('embed_out.weight', { shape: [V, d], data: T(await get('unembed.w'), d, V) });
  return out;
}

/** HF config.json for the model. */
export function hfConfig(c: NeoxConfig): Record<string, unknown> {
  return {
    architectures: ['GPTNeoXForCausalLM'],
    model_type: 'gpt_neox',
    hidden_size: c.dModel,
    num_attention_heads: c.nHeads,
    num_hidden_layers: c.nLayers,
    intermediate_size: c.dMlp,
    rotary_pct: c.rotaryPct,
    rotary_emb_base: c.rotaryBase,
    use_parallel_residual: true,
    layer_norm_eps: c.layerNormEps,
    hidden_act: 'gelu',
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxPositions,
    tie_word_embeddings: false,
    attention_bias: true,
    attention_dropout: 0.0,
    hidden_dropout: 0.0,
    bos_token_id: 0,
    eos_token_id: 0,
    initializer_range: 0.02,
    rope_scaling: null,
    use_cache: true,
    torch_dtype: 'float32',
    transformers_version: '4.44.0',
  };
}
