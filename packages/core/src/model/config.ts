// Hugging Face config.json → ModelSpec, for the architectures sfc runs (gpt_neox, gpt2).

import { ConfigError, FormatError } from '../errors.js';
import type { Architecture } from '../submodule.js';
import type { Activation, LayerNormSpec, ModelDims, ModelSpec, SegmentSpec } from './spec.js';

type Json = Record<string, unknown>;

function num(cfg: Json, keys: readonly string[], what: string, fallback?: number): number {
  for (const k of keys) {
    const v = cfg[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new FormatError(`config.json: '${k}' must be a number, got ${JSON.stringify(v)}`);
    return v;
  }
  if (fallback !== undefined) return fallback;
  throw new FormatError(`config.json: missing '${keys[0]}' (${what})`, 'use the config.json saved with the model by Hugging Face transformers');
}

function posInt(cfg: Json, keys: readonly string[], what: string, fallback?: number): number {
  const v = num(cfg, keys, what, fallback);
  if (!Number.isInteger(v) || v < 1) throw new FormatError(`config.json: '${keys[0]}' must be a positive integer, got ${v}`);
  return v;
}

function bool(cfg: Json, key: string, fallback: boolean): boolean {
  const v = cfg[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new FormatError(`config.json: '${key}' must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function activation(name: unknown): Activation {
  switch (name) {
    case 'gelu': return 'gelu';
    case 'gelu_new': case 'gelu_pytorch_tanh': case 'gelu_fast': return 'gelu_new';
    case 'relu': return 'relu';
    default: throw new ConfigError(`config.json: unsupported activation ${JSON.stringify(name)}`, 'supported: gelu, gelu_new, gelu_pytorch_tanh, relu');
  }
}

export const SUPPORTED_MODEL_TYPES = ['gpt_neox', 'gpt2'] as const;

export function parseModelConfig(cfg: unknown): ModelSpec {
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) throw new FormatError('config.json is not a JSON object');
  const c = cfg as Json;
  const type = c.model_type;
  if (type === 'gpt_neox') return neoxSpec(c);
  if (type === 'gpt2') return gpt2Spec(c);
  throw new ConfigError(`unsupported model_type ${JSON.stringify(type)} in config.json`,
    `sfc runs ${SUPPORTED_MODEL_TYPES.join(' and ')} models (Pythia, GPT-2); convert the model or pick one of those`);
}

function ln(prefix: string, eps: number): LayerNormSpec {
  return { weight: `${prefix}.w`, bias: `${prefix}.b`, eps };
}

function buildSpec(arch: Architecture, dims: ModelDims, parallel: boolean, eps: number, act: Activation,
  rotaryDims: number, rotaryBase: number, scaleForLayer: (l: number) => number, positional: boolean): ModelSpec {
  const { dModel: d, nLayers, dMlp, vocabSize, maxPositions, nHeads, headDim } = dims;
  const segments: SegmentSpec[] = [{ kind: 'embed', name: 'embed', inputs: [], tokenEmbedding: 'embed.tok', ...(positional ? { positionEmbedding: 'embed.pos' } : {}) }];
  const shapes = new Map<string, number[]>([['embed.tok', [vocabSize, d]]]);
  if (positional) shapes.set('embed.pos', [maxPositions, d]);
  const vec = (name: string, n: number) => shapes.set(name, [n]);
  let prev = 'embed';
  for (let l = 0; l < nLayers; l++) {
    const p = `l${l}`;
    segments.push({
      kind: 'attention', name: `attn_${l}`, layer: l, inputs: [prev], ln: ln(`${p}.ln1`, eps),
      qkv: { weight: `${p}.qkv.w`, bias: `${p}.qkv.b` }, out: { weight: `${p}.attn_out.w`, bias: `${p}.attn_out.b` },
      nHeads, headDim, rotaryDims, rotaryBase, scale: scaleForLayer(l),
    });
    segments.push({
      kind: 'mlp', name: `mlp_${l}`, layer: l, inputs: parallel ? [prev] : [prev, `attn_${l}`], ln: ln(`${p}.ln2`, eps),
      fcIn: { weight: `${p}.fc_in.w`, bias: `${p}.fc_in.b` }, fcOut: { weight: `${p}.fc_out.w`, bias: `${p}.fc_out.b` }, activation: act,
    });
    segments.push({ kind: 'sum', name: `resid_${l}`, layer: l, inputs: [prev, `attn_${l}`, `mlp_${l}`] });
    vec(`${p}.ln1.w`, d); vec(`${p}.ln1.b`, d); vec(`${p}.ln2.w`, d); vec(`${p}.ln2.b`, d);
    shapes.set(`${p}.qkv.w`, [d, 3 * d]); vec(`${p}.qkv.b`, 3 * d);
    shapes.set(`${p}.attn_out.w`, [d, d]); vec(`${p}.attn_out.b`, d);
    shapes.set(`${p}.fc_in.w`, [d, dMlp]); vec(`${p}.fc_in.b`, dMlp);
    shapes.set(`${p}.fc_out.w`, [dMlp, d]); vec(`${p}.fc_out.b`, d);
    prev = `resid_${l}`;
  }
  segments.push({ kind: 'unembed', name: 'unembed', inputs: [prev], ln: ln('final_ln', eps), weight: { weight: 'unembed.w' } });
  vec('final_ln.w', d); vec('final_ln.b', d);
  shapes.set('unembed.w', [d, vocabSize]);
  return { architecture: arch, dims, parallelResidual: parallel, segments, weightShapes: shapes };
}

function neoxSpec(c: Json): ModelSpec {
  const d = posInt(c, ['hidden_size'], 'model width');
  const nHeads = posInt(c, ['num_attention_heads'], 'attention heads');
  if (d % nHeads !== 0) throw new FormatError(`config.json: hidden_size ${d} is not divisible by num_attention_heads ${nHeads}`);
  const headDim = d / nHeads;
  const nLayers = posInt(c, ['num_hidden_layers'], 'layers');
  // transformers v5 moves rotary settings into `rope_parameters`; NeoX defaults are 0.25 and 10000.
  const rope = (typeof c.rope_parameters === 'object' && c.rope_parameters !== null ? c.rope_parameters : {}) as Json;
  const rotaryPct = num({ ...rope, ...c }, ['rotary_pct', 'partial_rotary_factor'], 'rotary fraction', 0.25);
  if (!(rotaryPct >= 0 && rotaryPct <= 1)) throw new FormatError(`config.json: rotary_pct must be in [0, 1], got ${rotaryPct}`);
  const rotaryDims = Math.floor(headDim * rotaryPct);
  if (rotaryDims % 2 !== 0) throw new FormatError(`config.json: rotary dims ${rotaryDims} (head_dim × rotary_pct) must be even`);
  const ropeScaling = c.rope_scaling;
  if (ropeScaling !== undefined && ropeScaling !== null) {
    throw new ConfigError(`config.json: rope_scaling ${JSON.stringify(ropeScaling)} is not supported`, 'sfc supports plain rotary embeddings (rope_scaling: null)');
  }
  if (bool(c, 'attention_bias', true) === false) throw new ConfigError('config.json: attention_bias false is not supported', 'Pythia models use attention_bias: true');
  const dims: ModelDims = {
    dModel: d, nLayers, nHeads, headDim,
    dMlp: posInt(c, ['intermediate_size'], 'MLP width', 4 * d),
    vocabSize: posInt(c, ['vocab_size'], 'vocabulary size'),
    maxPositions: posInt(c, ['max_position_embeddings'], 'context length', 2048),
  };
  return buildSpec('gpt_neox', dims, bool(c, 'use_parallel_residual', true), num(c, ['layer_norm_eps'], 'layer norm epsilon', 1e-5),
    activation(c.hidden_act ?? 'gelu'), rotaryDims, num({ ...rope, ...c }, ['rotary_emb_base', 'rope_theta'], 'rotary base', 10000),
    () => 1 / Math.sqrt(headDim), false);
}

function gpt2Spec(c: Json): ModelSpec {
  const d = posInt(c, ['n_embd', 'hidden_size'], 'model width');
  const nHeads = posInt(c, ['n_head', 'num_attention_heads'], 'attention heads');
  if (d % nHeads !== 0) throw new FormatError(`config.json: n_embd ${d} is not divisible by n_head ${nHeads}`);
  const headDim = d / nHeads;
  if (bool(c, 'reorder_and_upcast_attn', false)) {
    // Numerically the same attention in fp32; accepted.
  }
  const scaleWeights = bool(c, 'scale_attn_weights', true);
  const byLayer = bool(c, 'scale_attn_by_inverse_layer_idx', false);
  const dims: ModelDims = {
    dModel: d, nLayers: posInt(c, ['n_layer', 'num_hidden_layers'], 'layers'), nHeads, headDim,
    dMlp: posInt(c, ['n_inner'], 'MLP width', 4 * d),
    vocabSize: posInt(c, ['vocab_size'], 'vocabulary size'),
    maxPositions: posInt(c, ['n_positions', 'n_ctx', 'max_position_embeddings'], 'context length', 1024),
  };
  return buildSpec('gpt2', dims, false, num(c, ['layer_norm_epsilon'], 'layer norm epsilon', 1e-5),
    activation(c.activation_function ?? 'gelu_new'), 0, 10000,
    (l) => (scaleWeights ? 1 / Math.sqrt(headDim) : 1) / (byLayer ? l + 1 : 1), true);
}
