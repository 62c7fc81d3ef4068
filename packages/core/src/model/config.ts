// Hugging Face config.json → ModelSpec, for the architectures sfc runs (gpt_neox, gpt2).

import { ConfigError, FormatError } from '../errors.js';
import { showValue } from '../quote.js';
import { checkConfigBounds } from './config-bounds.js';
import type { Architecture } from '../submodule.js';
import { ropeContextLength, rotarySpec, SUPPORTED_ROPE_TYPES, type RopeParams } from './rope.js';
import type { Activation, LayerNormSpec, ModelDims, ModelSpec, RopeType, RotarySpec, SegmentSpec } from './spec.js';

type Json = Record<string, unknown>;

function num(cfg: Json, keys: readonly string[], what: string, fallback?: number): number {
  for (const k of keys) {
    const v = cfg[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new FormatError(`config.json: '${k}' must be a number, got ${showValue(v)}`);
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

/** What differs between the architectures' attention segments. */
interface AttentionOptions {
  readonly rotaryDims: number;
  readonly rotary?: RotarySpec;
  /** q/k/v and output projections have biases (NeoX `attention_bias`, always for GPT-2). */
  readonly bias: boolean;
  readonly scaleForLayer: (l: number) => number;
}

function buildSpec(arch: Architecture, dims: ModelDims, parallel: boolean, eps: number, act: Activation,
  attention: AttentionOptions, positional: boolean): ModelSpec {
  checkConfigBounds(dims, eps);
  const { dModel: d, nLayers, dMlp, vocabSize, maxPositions, nHeads, headDim } = dims;
  const segments: SegmentSpec[] = [{ kind: 'embed', name: 'embed', inputs: [], tokenEmbedding: 'embed.tok', ...(positional ? { positionEmbedding: 'embed.pos' } : {}) }];
  const shapes = new Map<string, number[]>([['embed.tok', [vocabSize, d]]]);
  if (positional) shapes.set('embed.pos', [maxPositions, d]);
  const vec = (name: string, n: number) => shapes.set(name, [n]);
  const { rotaryDims, rotary, bias, scaleForLayer } = attention;
  let prev = 'embed';
  for (let l = 0; l < nLayers; l++) {
    const p = `l${l}`;
    segments.push({
      kind: 'attention', name: `attn_${l}`, layer: l, inputs: [prev], ln: ln(`${p}.ln1`, eps),
      qkv: { weight: `${p}.qkv.w`, ...(bias ? { bias: `${p}.qkv.b` } : {}) },
      out: { weight: `${p}.attn_out.w`, ...(bias ? { bias: `${p}.attn_out.b` } : {}) },
      nHeads, headDim, rotaryDims, ...(rotary ? { rotary } : {}), scale: scaleForLayer(l),
    });
    segments.push({
      kind: 'mlp', name: `mlp_${l}`, layer: l, inputs: parallel ? [prev] : [prev, `attn_${l}`], ln: ln(`${p}.ln2`, eps),
      fcIn: { weight: `${p}.fc_in.w`, bias: `${p}.fc_in.b` }, fcOut: { weight: `${p}.fc_out.w`, bias: `${p}.fc_out.b` }, activation: act,
    });
    segments.push({ kind: 'sum', name: `resid_${l}`, layer: l, inputs: [prev, `attn_${l}`, `mlp_${l}`] });
    vec(`${p}.ln1.w`, d); vec(`${p}.ln1.b`, d); vec(`${p}.ln2.w`, d); vec(`${p}.ln2.b`, d);
    shapes.set(`${p}.qkv.w`, [d, 3 * d]);
    if (bias) vec(`${p}.qkv.b`, 3 * d);
    shapes.set(`${p}.attn_out.w`, [d, d]);
    if (bias) vec(`${p}.attn_out.b`, d);
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
  const maxPositions = posInt(c, ['max_position_embeddings'], 'context length', 2048);
  const rope = ropeConfig(c);
  // Rotary fraction and base: inside the rope dict first (transformers v5), then the top-level
  // NeoX keys (where transformers v4 lets rotary_pct and rotary_emb_base win); defaults 0.25 and 10000.
  const rotaryPct = num(rope.dict, ['partial_rotary_factor'], 'rotary fraction', num(c, ['rotary_pct', 'partial_rotary_factor'], 'rotary fraction', 0.25));
  if (!(rotaryPct >= 0 && rotaryPct <= 1)) throw new FormatError(`config.json: rotary_pct must be in [0, 1], got ${rotaryPct}`);
  const rotaryDims = Math.floor(headDim * rotaryPct);
  if (rotaryDims % 2 !== 0) throw new FormatError(`config.json: rotary dims ${rotaryDims} (head_dim × rotary_pct) must be even`);
  const base = num(rope.dict, ['rope_theta'], 'rotary base', num(c, ['rotary_emb_base', 'rope_theta'], 'rotary base', 10000));
  if (!(base > 1)) throw new FormatError(`config.json: the rotary base (rotary_emb_base / rope_theta) must be > 1, got ${base}`);
  const params = ropeParams(rope, c, maxPositions);
  if (params.type === 'dynamic' && rotaryDims > 0 && rotaryDims <= 2) {
    throw new ConfigError(`config.json: dynamic rope scaling needs more than 2 rotary dims per head, got ${rotaryDims}`,
      'transformers divides by (rotary dims − 2); use another rope type or a larger rotary_pct');
  }
  const dims: ModelDims = {
    dModel: d, nLayers, nHeads, headDim,
    dMlp: posInt(c, ['intermediate_size'], 'MLP width', 4 * d),
    vocabSize: posInt(c, ['vocab_size'], 'vocabulary size'),
    maxPositions: ropeContextLength(params, maxPositions),
  };
  const eps = num(c, ['layer_norm_eps'], 'layer norm epsilon', 1e-5);
  checkConfigBounds(dims, eps); // before the rotary tables, whose size follows the head width
  const rotary = rotaryDims > 0 ? rotarySpec(params, rotaryDims, base, maxPositions) : undefined;
  const spec = buildSpec('gpt_neox', dims, bool(c, 'use_parallel_residual', true), eps,
    activation(c.hidden_act ?? 'gelu'),
    { rotaryDims, ...(rotary ? { rotary } : {}), bias: bool(c, 'attention_bias', true), scaleForLayer: () => 1 / Math.sqrt(headDim) }, false);
  return { ...spec, tieWordEmbeddings: bool(c, 'tie_word_embeddings', false) }; // transformers' GPTNeoXConfig default
}

/**
 * The rope dict of a NeoX config.json: transformers v4 writes `rope_scaling` ({type | rope_type,
 * factor, …}, null for plain RoPE), v5 `rope_parameters` ({rope_type, rope_theta, …}); like
 * transformers, `rope_scaling` wins when both are set.
 */
function ropeConfig(c: Json): { readonly key: string; readonly dict: Json } {
  for (const key of ['rope_scaling', 'rope_parameters']) {
    const v = c[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'object' || Array.isArray(v)) throw new FormatError(`config.json: '${key}' must be an object or null, got ${JSON.stringify(v)}`);
    return { key, dict: v as Json };
  }
  return { key: 'rope_scaling', dict: {} };
}

function ropeParams(rope: { readonly key: string; readonly dict: Json }, c: Json, maxPositions: number): RopeParams {
  const { key, dict } = rope;
  const raw = dict.rope_type ?? dict.type ?? 'default';
  const type = raw as RopeType;
  if (typeof raw !== 'string' || !SUPPORTED_ROPE_TYPES.includes(type)) {
    throw new ConfigError(`config.json: ${key}.rope_type ${JSON.stringify(raw)} is not supported`,
      `sfc supports the rope types ${SUPPORTED_ROPE_TYPES.join(', ')} (frequencies fixed per model, or dynamic NTK); longrope and other types are not`);
  }
  const field = (name: string) => `${key}.${name}`;
  const optionalNumber = (name: string): number | undefined => {
    const v = dict[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new FormatError(`config.json: '${field(name)}' must be a number, got ${showValue(v)}`);
    return v;
  };
  const required = (name: string): number => {
    const v = optionalNumber(name);
    if (v === undefined) throw new FormatError(`config.json: missing '${field(name)}' (rope type '${type}' needs it)`, 'use the config.json saved with the model by Hugging Face transformers');
    return v;
  };
  const checkFactor = (v: number): number => {
    if (!(v >= 1)) throw new FormatError(`config.json: '${field('factor')}' must be a number ≥ 1, got ${v}`, 'the factor is (scaled context) / (trained context)');
    return v;
  };
  // transformers v5 prefers a top-level original_max_position_embeddings (Phi-3 style), then the
  // rope dict's, then max_position_embeddings.
  const originalMax = (): number => {
    const top = c.original_max_position_embeddings;
    const v = top !== undefined && top !== null ? top : (dict.original_max_position_embeddings ?? maxPositions);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new FormatError(`config.json: original_max_position_embeddings must be a positive integer, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  switch (type) {
    case 'default':
      return { type };
    case 'linear':
    case 'dynamic':
      return { type, factor: checkFactor(required('factor')) };
    case 'llama3': {
      const lowFreqFactor = required('low_freq_factor'), highFreqFactor = required('high_freq_factor');
      if (!(lowFreqFactor > 0 && highFreqFactor > lowFreqFactor)) {
        throw new FormatError(`config.json: ${field('low_freq_factor')} ${lowFreqFactor} and ${field('high_freq_factor')} ${highFreqFactor} must satisfy 0 < low < high`);
      }
      return { type, factor: checkFactor(required('factor')), lowFreqFactor, highFreqFactor, originalMaxPositions: originalMax() };
    }
    case 'yarn': {
      const originalMaxPositions = originalMax();
      // transformers v5: a null factor is max_position_embeddings / original_max_position_embeddings.
      const factor = checkFactor(dict.factor === null ? maxPositions / originalMaxPositions : required('factor'));
      const attentionFactor = optionalNumber('attention_factor');
      if (attentionFactor !== undefined && !(attentionFactor > 0)) throw new FormatError(`config.json: '${field('attention_factor')}' must be > 0, got ${attentionFactor}`);
      const truncate = dict.truncate ?? true;
      if (typeof truncate !== 'boolean') throw new FormatError(`config.json: '${field('truncate')}' must be true or false, got ${JSON.stringify(truncate)}`);
      const mscale = optionalNumber('mscale'), mscaleAllDim = optionalNumber('mscale_all_dim');
      return {
        type, factor, originalMaxPositions, truncate,
        // `or` defaults, as transformers: 0 and null mean 32 and 1.
        betaFast: optionalNumber('beta_fast') || 32, betaSlow: optionalNumber('beta_slow') || 1,
        ...(attentionFactor !== undefined ? { attentionFactor } : {}),
        ...(mscale !== undefined ? { mscale } : {}), ...(mscaleAllDim !== undefined ? { mscaleAllDim } : {}),
      };
    }
  }
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
    activation(c.activation_function ?? 'gelu_new'),
    { rotaryDims: 0, bias: true, scaleForLayer: (l) => (scaleWeights ? 1 / Math.sqrt(headDim) : 1) / (byLayer ? l + 1 : 1) }, true);
}
