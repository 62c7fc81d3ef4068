// Reading config.json fields: typed numbers, booleans and activations with transformers' defaults,
// and the rope dict (rope_scaling / rope_parameters) validated into RopeParams. Shared by every
// architecture's parser (config.ts, decoder-config.ts).

import { ConfigError, FormatError } from '../errors.js';
import { showValue } from '../quote.js';
import { SUPPORTED_ROPE_TYPES, type RopeParams } from './rope.js';
import type { Activation, RopeType } from './spec.js';

export type Json = Record<string, unknown>;

export function num(cfg: Json, keys: readonly string[], what: string, fallback?: number): number {
  for (const k of keys) {
    const v = cfg[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new FormatError(`config.json: '${k}' must be a number, got ${showValue(v)}`);
    return v;
  }
  if (fallback !== undefined) return fallback;
  throw new FormatError(`config.json: missing '${keys[0]}' (${what})`, 'use the config.json saved with the model by Hugging Face transformers');
}

export function posInt(cfg: Json, keys: readonly string[], what: string, fallback?: number): number {
  const v = num(cfg, keys, what, fallback);
  if (!Number.isInteger(v) || v < 1) throw new FormatError(`config.json: '${keys[0]}' must be a positive integer, got ${v}`);
  return v;
}

export function bool(cfg: Json, key: string, fallback: boolean): boolean {
  const v = cfg[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new FormatError(`config.json: '${key}' must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function activation(name: unknown): Activation {
  switch (name) {
    case 'gelu': return 'gelu';
    case 'gelu_new': case 'gelu_pytorch_tanh': case 'gelu_fast': return 'gelu_new';
    case 'relu': return 'relu';
    case 'silu': case 'swish': return 'silu';
    default: throw new ConfigError(`config.json: unsupported activation ${JSON.stringify(name)}`, 'supported: gelu, gelu_new, gelu_pytorch_tanh, relu, silu');
  }
}

/**
 * The rope dict of a NeoX config.json: transformers v4 writes `rope_scaling` ({type | rope_type,
 * factor, …}, null for plain RoPE), v5 `rope_parameters` ({rope_type, rope_theta, …}); like
 * transformers, `rope_scaling` wins when both are set.
 */
export function ropeConfig(c: Json): { readonly key: string; readonly dict: Json } {
  for (const key of ['rope_scaling', 'rope_parameters']) {
    const v = c[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'object' || Array.isArray(v)) throw new FormatError(`config.json: '${key}' must be an object or null, got ${JSON.stringify(v)}`);
    return { key, dict: v as Json };
  }
  return { key: 'rope_scaling', dict: {} };
}

export function ropeParams(rope: { readonly key: string; readonly dict: Json }, c: Json, maxPositions: number): RopeParams {
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

