// lm-saes 2.x `config.json` (OpenMOSS Language-Model-SAEs ≥ 2.0.0b1, `SparseDictionaryConfig.save_hyperparameters`,
// pydantic `model_dump` of SAEConfig): one pure function from the JSON object to the fields
// inference needs, with 2.x's defaults (src/lm_saes/models/sparse_dictionary.py and models/sae.py)
// and every value checked. Training-only keys (use_triton_kernel, jumprelu_threshold_window, …) are
// ignored. The dataset average norms and JumpReLU thresholds are tensors in the weights file
// (llama-scope-v2.ts), not config keys, in this layout.

import { CapabilityError, FormatError, quoteName, showValue } from '@sfc/core';
import { bool, hook, positiveInt, refuseTranscoder } from './llama-scope-config.js';

export type LmSaesActivation = 'relu' | 'jumprelu' | 'topk';

export interface LmSaesConfig {
  readonly dModel: number;
  readonly dSae: number;
  readonly hookIn: string;
  readonly activation: LmSaesActivation;
  readonly topK?: number;
  /** `dataset-wise` (scale by √d_model / the average norm stored in the weights) or `inference` (already folded). */
  readonly normActivation: 'dataset-wise' | 'inference';
  readonly useDecoderBias: boolean;
  readonly sparsityIncludeDecoderNorm: boolean;
}

export const LM_SAES_HINT = 'an lm-saes 2.x SAE folder holds config.json (sae_type "sae") and sae_weights.safetensors (OpenMOSS Language-Model-SAEs)';

/** The sae_types lm-saes 2.x registers besides "sae", and why sfc does not load them. */
const OTHER_TYPES: Readonly<Record<string, string>> = {
  clt: 'a cross-layer transcoder',
  crosscoder: 'a crosscoder (one dictionary over several hook points)',
  lorsa: 'a low-rank sparse attention module (Lorsa)',
  molt: 'a mixture of linear transforms (MoLT)',
};

function expansionFactor(cfg: Record<string, unknown>, source: string): number {
  const v = cfg.expansion_factor;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new FormatError(`${source}: expansion_factor must be a positive number, got ${showValue(v)}`, `${LM_SAES_HINT}; d_sae = int(d_model × expansion_factor)`);
  }
  return v;
}

function saeType(cfg: Record<string, unknown>, source: string): void {
  const t = cfg.sae_type;
  if (t === 'sae') return;
  if (typeof t === 'string' && t in OTHER_TYPES) {
    throw new CapabilityError(`${source}: sae_type ${quoteName(t)} is ${OTHER_TYPES[t]}; sfc's dictionaries are SAEs that reconstruct the activation they read`,
      'use an lm-saes SAE (sae_type "sae", hook_point_in = hook_point_out) for this site');
  }
  throw new FormatError(`${source}: unknown sae_type ${showValue(t)}`, `${LM_SAES_HINT}; lm-saes 2.x writes "sae", "clt", "crosscoder", "lorsa" or "molt"`);
}

function activation(cfg: Record<string, unknown>, source: string): LmSaesActivation {
  const a = cfg.act_fn ?? 'relu';
  const name = typeof a === 'string' ? a.toLowerCase() : a;
  if (name === 'relu' || name === 'jumprelu' || name === 'topk') return name;
  if (name === 'batchtopk') {
    throw new CapabilityError(`${source}: act_fn "batchtopk": lm-saes keeps the top k·batch pre-activations across the whole batch at inference too, so a token's features depend on the other tokens`,
      'sfc loads lm-saes SAEs with act_fn "jumprelu", "topk" or "relu"; convert the SAE to JumpReLU first');
  }
  if (name === 'batchlayertopk' || name === 'layertopk') {
    throw new CapabilityError(`${source}: act_fn ${quoteName(String(a))} is for lm-saes cross-layer transcoders`, 'use an lm-saes SAE with act_fn "jumprelu", "topk" or "relu"');
  }
  throw new FormatError(`${source}: unknown act_fn ${showValue(a)}`, 'lm-saes SAEs use "relu", "jumprelu", "topk" or "batchtopk"');
}

function normActivation(cfg: Record<string, unknown>, source: string): 'dataset-wise' | 'inference' {
  const n = cfg.norm_activation ?? 'dataset-wise';
  if (n === 'dataset-wise' || n === 'inference') return n;
  if (n === 'token-wise' || n === 'batch-wise') {
    throw new CapabilityError(`${source}: norm_activation ${quoteName(n)} scales every token (or batch) by its own norm, which sfc does not support for lm-saes SAEs`,
      'supported: "dataset-wise" and "inference"');
  }
  throw new FormatError(`${source}: unknown norm_activation ${showValue(n)}`, 'lm-saes 2.x writes "token-wise", "batch-wise", "dataset-wise" or "inference"');
}

/** Reads and checks a parsed lm-saes 2.x config.json; `source` names the file in errors. */
export function parseLmSaesConfig(raw: unknown, source = 'config.json'): LmSaesConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new FormatError(`${source}: not a JSON object`, LM_SAES_HINT);
  const cfg = raw as Record<string, unknown>;
  saeType(cfg, source);
  const dModel = positiveInt(cfg, 'd_model', source, LM_SAES_HINT);
  if (dModel === undefined) throw new FormatError(`${source}: no d_model`, LM_SAES_HINT);
  const dSae = Math.trunc(dModel * expansionFactor(cfg, source)); // SparseDictionaryConfig.d_sae
  if (dSae < 1) throw new FormatError(`${source}: d_model ${dModel} × expansion_factor ${String(cfg.expansion_factor)} gives no features`, LM_SAES_HINT);
  const hookIn = hook(cfg, 'hook_point_in', source, LM_SAES_HINT);
  const hookOut = hook(cfg, 'hook_point_out', source, LM_SAES_HINT);
  if (hookIn === undefined || hookOut === undefined) {
    throw new FormatError(`${source}: no ${hookIn === undefined ? 'hook_point_in' : 'hook_point_out'}`, `${LM_SAES_HINT}; SAEConfig requires both, e.g. 'blocks.15.hook_resid_post'`);
  }
  refuseTranscoder(hookIn, hookOut, source);
  if (bool(cfg, 'use_glu_encoder', false, source, LM_SAES_HINT)) {
    throw new CapabilityError(`${source}: use_glu_encoder is true; sfc does not support gated-linear-unit encoders`, 'use an SAE trained without use_glu_encoder');
  }
  const act = activation(cfg, source);
  const topK = act === 'topk' ? positiveInt(cfg, 'top_k', source, LM_SAES_HINT) ?? 50 : undefined;
  if (topK !== undefined && topK > dSae) throw new FormatError(`${source}: top_k ${topK} exceeds d_sae ${dSae}`, LM_SAES_HINT);
  return {
    dModel, dSae, hookIn, activation: act, ...(topK !== undefined ? { topK } : {}),
    normActivation: normActivation(cfg, source),
    useDecoderBias: bool(cfg, 'use_decoder_bias', true, source, LM_SAES_HINT),
    sparsityIncludeDecoderNorm: bool(cfg, 'sparsity_include_decoder_norm', true, source, LM_SAES_HINT),
  };
}
