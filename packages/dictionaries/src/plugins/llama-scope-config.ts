// Llama Scope `hyperparams.json` (OpenMOSS lm-saes 1.x `SAEConfig.save_hyperparameters`, the
// layout of the fnlp/Llama-Scope releases): one pure function from the JSON object to the fields
// inference needs, with lm-saes 1.x's defaults (src/lm_saes/config.py, SAEConfig) and every value
// checked. Keys that only matter for training (lr, l1_coefficient, init_*, …) are ignored.

import { CapabilityError, FormatError, quoteName, showValue } from '@sfc/core';

export type LlamaScopeActivation = 'jumprelu' | 'topk' | 'relu';

export interface LlamaScopeConfig {
  readonly dModel: number;
  readonly dSae: number;
  readonly hookIn: string;
  readonly hookOut: string;
  /** After lm-saes' own rule: `topk` with a positive `jump_relu_threshold` runs as `jumprelu`. */
  readonly activation: LlamaScopeActivation;
  /** As written (`act_fn`), for `sfc dict info`. */
  readonly actFn: string;
  readonly threshold: number;
  readonly topK?: number;
  /** `norm_activation: dataset-wise`: √d_model / the dataset's average norm, in and out; else 1 and 1. */
  readonly scaleIn: number;
  readonly scaleOut: number;
  readonly normActivation: string;
  readonly useDecoderBias: boolean;
  readonly applyDecoderBiasToPreEncoder: boolean;
  readonly sparsityIncludeDecoderNorm: boolean;
}

const HINT = 'a Llama Scope hyperparams.json is what lm-saes\' SAEConfig.save_hyperparameters writes (fnlp/Llama-Scope releases)';
/** lm-saes 1.x's compute_norm_factor: only these three scale by a norm; anything else is factor 1. */
const PER_BATCH_NORMS = ['token-wise', 'batch-wise'];

/** `cfg[key]` as a positive integer, undefined when absent; anything else a FormatError (shared with lm-saes-config.ts). */
export function positiveInt(cfg: Record<string, unknown>, key: string, source: string, hint = HINT): number | undefined {
  const v = cfg[key];
  if (v === undefined || v === null) return undefined;
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw new FormatError(`${source}: ${key} must be a positive integer, got ${showValue(v)}`, hint);
  return v as number;
}

export function bool(cfg: Record<string, unknown>, key: string, fallback: boolean, source: string, hint = HINT): boolean {
  const v = cfg[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new FormatError(`${source}: ${key} must be true or false, got ${showValue(v)}`, hint);
  return v;
}

export function hook(cfg: Record<string, unknown>, key: string, source: string, hint = HINT): string | undefined {
  const v = cfg[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new FormatError(`${source}: ${key} must be a hook name such as 'blocks.15.hook_resid_post', got ${showValue(v)}`, hint);
  return v;
}

/**
 * The dataset average norm at one side: `{"in": …, "out": …}` (lm-saes 1.x) or keyed by the hook
 * point (later lm-saes versions). Must be a finite positive number.
 */
function averageNorm(norms: Record<string, unknown>, side: 'in' | 'out', hookPoint: string, source: string): number {
  const v = norms[side] ?? norms[hookPoint];
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new FormatError(`${source}: dataset_average_activation_norm.${side} must be a finite positive number, got ${showValue(v)}`,
      'norm_activation "dataset-wise" scales inputs by sqrt(d_model) / this norm; the file is damaged or incomplete');
  }
  return v;
}

function scales(cfg: Record<string, unknown>, normActivation: string, dModel: number, hookIn: string, hookOut: string, source: string): [number, number] {
  if (PER_BATCH_NORMS.includes(normActivation)) {
    throw new CapabilityError(`${source}: norm_activation ${quoteName(normActivation)} scales every token (or batch) by its own norm, which sfc does not support for Llama Scope files`,
      'supported: "dataset-wise" (the Llama Scope releases), "inference" and "none"');
  }
  if (normActivation !== 'dataset-wise') return [1, 1];
  const norms = cfg.dataset_average_activation_norm;
  if (typeof norms !== 'object' || norms === null || Array.isArray(norms)) {
    throw new FormatError(`${source}: norm_activation is "dataset-wise" but dataset_average_activation_norm is ${showValue(norms)}`,
      'it must be {"in": <average norm>, "out": <average norm>}');
  }
  const n = norms as Record<string, unknown>;
  return [Math.sqrt(dModel) / averageNorm(n, 'in', hookIn, source), Math.sqrt(dModel) / averageNorm(n, 'out', hookOut, source)];
}

/** A transcoder (hook_point_out ≠ hook_point_in) is a CapabilityError naming what sfc loads instead. */
export function refuseTranscoder(hookIn: string, hookOut: string, source: string): void {
  if (hookOut === hookIn) return;
  throw new CapabilityError(`${source}: a transcoder (reads ${quoteName(hookIn)}, writes ${quoteName(hookOut)}); sfc's dictionaries reconstruct the value they read`,
    'use an SAE trained with hook_point_out = hook_point_in (Llama Scope\'s LXR, LXA and LXM releases, not its transcoders LXTC)');
}

/** Reads and checks a parsed hyperparams.json; `source` names the file in errors. */
export function parseLlamaScopeConfig(raw: unknown, source = 'hyperparams.json'): LlamaScopeConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new FormatError(`${source}: not a JSON object`, HINT);
  const cfg = raw as Record<string, unknown>;
  const dModel = positiveInt(cfg, 'd_model', source);
  if (dModel === undefined) throw new FormatError(`${source}: no d_model`, HINT);
  const dSae = positiveInt(cfg, 'd_sae', source) ?? (positiveInt(cfg, 'expansion_factor', source) ?? 128) * dModel;
  const hookIn = hook(cfg, 'hook_point_in', source);
  if (hookIn === undefined) throw new FormatError(`${source}: no hook_point_in`, `${HINT}; it names where the SAE reads, e.g. 'blocks.15.hook_resid_post'`);
  const hookOut = hook(cfg, 'hook_point_out', source) ?? hookIn;
  refuseTranscoder(hookIn, hookOut, source);
  if (bool(cfg, 'use_glu_encoder', false, source)) {
    throw new CapabilityError(`${source}: use_glu_encoder is true; sfc does not support gated-linear-unit encoders`, 'use an SAE trained without use_glu_encoder');
  }

  const actFn = cfg.act_fn ?? 'relu';
  if (typeof actFn !== 'string' || !['jumprelu', 'topk', 'relu'].includes(actFn.toLowerCase())) {
    throw new FormatError(`${source}: unknown act_fn ${showValue(actFn)}`, 'lm-saes SAEs use "jumprelu", "topk" or "relu"');
  }
  const threshold = cfg.jump_relu_threshold ?? 0;
  if (typeof threshold !== 'number' || !Number.isFinite(threshold)) {
    throw new FormatError(`${source}: jump_relu_threshold must be a finite number, got ${showValue(threshold)}`, HINT);
  }
  let activation = actFn.toLowerCase() as LlamaScopeActivation;
  // lm-saes' from_config: a TopK SAE with a threshold set runs as JumpReLU ("features independent").
  if (activation === 'topk' && threshold > 0) activation = 'jumprelu';
  if (activation === 'jumprelu' && threshold < 0) {
    throw new FormatError(`${source}: jump_relu_threshold ${threshold} is negative`,
      'lm-saes would pass negative pre-activations above it through; Llama Scope thresholds are ≥ 0, so the file is not one of them');
  }
  const topK = activation === 'topk' ? positiveInt(cfg, 'top_k', source) ?? 50 : undefined;
  if (topK !== undefined && topK > dSae) throw new FormatError(`${source}: top_k ${topK} exceeds d_sae ${dSae}`, HINT);

  const normActivation = cfg.norm_activation ?? 'token-wise';
  if (typeof normActivation !== 'string') throw new FormatError(`${source}: norm_activation must be a string, got ${showValue(normActivation)}`, HINT);
  const [scaleIn, scaleOut] = scales(cfg, normActivation, dModel, hookIn, hookOut, source);
  const useDecoderBias = bool(cfg, 'use_decoder_bias', true, source);
  return {
    dModel, dSae, hookIn, hookOut, activation, actFn, threshold, ...(topK !== undefined ? { topK } : {}),
    scaleIn, scaleOut, normActivation, useDecoderBias,
    applyDecoderBiasToPreEncoder: useDecoderBias && bool(cfg, 'apply_decoder_bias_to_pre_encoder', true, source),
    sparsityIncludeDecoderNorm: bool(cfg, 'sparsity_include_decoder_norm', true, source),
  };
}
