// lm-saes 2.x SAE folders (OpenMOSS Language-Model-SAEs ≥ 2.0.0b1): `config.json` (lm-saes-config.ts)
// and `sae_weights.safetensors` holding SparseAutoEncoder's full state dict:
//   W_E [d_model, d_sae], b_E [d_sae], W_D [d_sae, d_model], b_D [d_model] (use_decoder_bias),
//   activation_function.log_jumprelu_threshold [d_sae] (act_fn jumprelu),
//   dataset_average_activation_norm.<hook point> (scalar; garbage when norm_activation is not dataset-wise).
// Loaded strictly, as lm-saes' from_pretrained does (strict_loading): a tensor the config does not
// account for is a FormatError.
//
// lm-saes 2.x encodes h = x W_E + b_E and, with sparsity_include_decoder_norm, gates on h_j·‖W_D[j]‖:
// f_j = act(h_j·n_j) / n_j (ReLU, JumpReLU x·1[x > θ_j], or TopK over relu(h·n)); x̂ = f W_D + b_D.
// Features keep the decoder's norms (unlike 1.x, whose from_config made the decoder unit-norm).
// With norm_activation "dataset-wise" the SAE was trained on s·x, s = √d_model / the stored
// average norm (one hook point: the same s in and out), and reconstructs s·x. sfc folds s as
// lm-saes' standardize_parameters_of_dataset_norm does (b_E / s, b_D / s; W_D · s/s = W_D), so the SAE
// reads and writes raw activations and features are the training features / s; the JumpReLU gate
// stays the trained one, s·h_j·n_j > θ_j, i.e. h_j > θ_j / (s·n_j) (lm-saes' fold leaves θ alone,
// which moves the gate — docs/formats.md). ReLU, TopK and "inference" folders equal lm-saes'
// `from_pretrained(dir, fold_activation_scale=True).encode(x)` exactly.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CapabilityError, FormatError, NotFoundError, quoteName, withSafetensors, type Dictionary, type DictionaryLoadContext, type SafetensorsEntry } from '@sfc/core';
import { JumpReluDictionary, ReluDictionary, TopKDictionary, type DictionaryMeta } from '../architectures/index.js';
import { constant, expectShape, host, rowNorms, scaleVector, type HostTensor } from '../host-weights.js';
import { LM_SAES_HINT, type LmSaesConfig } from './lm-saes-config.js';

/** lm-saes 2.x from_local's order; sfc reads the safetensors ones. */
export const LM_SAES_WEIGHT_FILES = [
  'sae_weights.safetensors', 'sae_weights.pt', 'sae_weights.dcp',
  'checkpoints/pruned.safetensors', 'checkpoints/pruned.pt', 'checkpoints/pruned.dcp',
  'checkpoints/final.safetensors', 'checkpoints/final.pt', 'checkpoints/final.dcp',
];

const NORM_PREFIX = 'dataset_average_activation_norm.';
const THRESHOLD = 'activation_function.log_jumprelu_threshold';

/** The checkpoint lm-saes would load from `dir` (a `.dcp` is a folder), if any. */
export function lmSaesWeightsPath(dir: string): string | undefined {
  return LM_SAES_WEIGHT_FILES.map((f) => join(dir, f)).find((p) => existsSync(p));
}

interface Reader {
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  getFloat32(name: string): Float32Array;
}

function tensor(file: Reader, name: string, shape: readonly number[], source: string): HostTensor {
  const e = file.entries.get(name);
  if (!e) {
    throw new FormatError(`${source}: no tensor ${quoteName(name)}`,
      `tensors present: ${[...file.entries.keys()].slice(0, 20).map((k) => quoteName(k)).join(', ') || 'none'}; ${LM_SAES_HINT}`);
  }
  return expectShape(host(e.shape, file.getFloat32(name)), shape, name, source);
}

/**
 * A 2025 development layout (between 1.1 and 2.0): config.json without sae_type, or weights with
 * 1.x names (encoder.weight, a top-level log_jumprelu_threshold — what SAELens' llama_scope_r1_distill
 * loader reads). Its normalisation lived inside encode; sfc does not port it.
 */
export function refuseDevLayout(source: string): never {
  throw new CapabilityError(`${source}: an lm-saes SAE from a 2025 development version (between 1.1 and 2.0: config.json without sae_type or weights named encoder.weight, as fnlp/Llama-Scope-R1-Distill), whose weight names and normalisation sfc does not read`,
    'convert it with SAELens (SAE.from_pretrained with its llama_scope_r1_distill loader, then save_model) and load the SAELens folder, or re-save the SAE with lm-saes ≥ 2.0');
}

/** Tensors lm-saes' strict load_state_dict would reject for this config. */
function checkTensorNames(cfg: LmSaesConfig, file: Reader, source: string): void {
  if (file.entries.has('encoder.weight') && !file.entries.has('W_E')) refuseDevLayout(source);
  const expected = new Set(['W_E', 'b_E', 'W_D', ...(cfg.useDecoderBias ? ['b_D'] : []), ...(cfg.activation === 'jumprelu' ? [THRESHOLD] : [])]);
  const extra = [...file.entries.keys()].filter((k) => !expected.has(k) && !k.startsWith(NORM_PREFIX));
  if (extra.length > 0) {
    throw new FormatError(`${source}: tensors the config does not account for: ${extra.slice(0, 10).map((k) => quoteName(k)).join(', ')}`,
      `config.json (act_fn ${quoteName(cfg.activation)}, use_decoder_bias ${String(cfg.useDecoderBias)}) and the weights disagree; lm-saes' strict loading refuses this too`);
  }
}

/** s = √d_model / the dataset average norm at hook_point_in ("dataset-wise"), else 1. */
function datasetScale(cfg: LmSaesConfig, file: Reader, source: string): number {
  if (cfg.normActivation !== 'dataset-wise') return 1;
  const name = NORM_PREFIX + cfg.hookIn;
  const e = file.entries.get(name);
  if (!e || e.shape.length !== 0) {
    throw new FormatError(`${source}: norm_activation is "dataset-wise" but ${e ? `${quoteName(name)} has shape [${e.shape.join(', ')}], not a scalar` : `there is no scalar ${quoteName(name)}`}`,
      'lm-saes stores the dataset average activation norm of each hook point as a scalar tensor in the weights; the file is incomplete or from another SAE');
  }
  let n: number;
  try {
    n = file.getFloat32(name)[0]!;
  } catch (err) {
    throw new FormatError(`${source}: ${quoteName(name)} is not a finite number (${(err as Error).message})`,
      'norm_activation "dataset-wise" needs the average norm lm-saes measured; the file is damaged');
  }
  if (!(n > 0)) {
    throw new FormatError(`${source}: ${quoteName(name)} is ${n}, not a positive average norm`,
      'norm_activation "dataset-wise" scales inputs by sqrt(d_model) / this norm; the file is damaged or was saved before the norm was measured');
  }
  return Math.sqrt(cfg.dModel) / n;
}

export interface LmSaesWeights {
  readonly W_enc: HostTensor;
  readonly b_enc: HostTensor;
  readonly W_dec: HostTensor;
  readonly b_dec: HostTensor;
  readonly scale: number;
  /** JumpReLU: the per-feature gate on h (see the header); +∞ for a zero decoder row with sparsity_include_decoder_norm. */
  readonly threshold?: HostTensor;
  /** TopK with sparsity_include_decoder_norm: rank by h·‖W_D[j]‖. */
  readonly selectionScale?: HostTensor;
}

/** The weights in sfc's layout with the dataset scale folded; see the header. */
export function foldLmSaes(cfg: LmSaesConfig, file: Reader, source: string): LmSaesWeights {
  const { dModel: d, dSae: F } = cfg;
  checkTensorNames(cfg, file, source);
  const s = datasetScale(cfg, file, source);
  const W_dec = tensor(file, 'W_D', [F, d], source);
  const out = {
    W_enc: tensor(file, 'W_E', [d, F], source),
    b_enc: scaleVector(tensor(file, 'b_E', [F], source), 1 / s),
    W_dec,
    b_dec: cfg.useDecoderBias ? scaleVector(tensor(file, 'b_D', [d], source), 1 / s) : constant(d, 0),
    scale: s,
  };
  const norms = cfg.sparsityIncludeDecoderNorm ? rowNorms(W_dec) : undefined;
  if (cfg.activation === 'topk' && norms) return { ...out, selectionScale: host([F], Float32Array.from(norms)) };
  if (cfg.activation !== 'jumprelu') return out;
  const log = tensor(file, THRESHOLD, [F], source).data;
  const thr = new Float32Array(F);
  for (let j = 0; j < F; j++) {
    const n = norms ? norms[j]! : 1;
    thr[j] = n > 0 ? Math.exp(log[j]!) / (s * n) : Number.POSITIVE_INFINITY; // h·0 > θ never holds (θ = e^log > 0)
  }
  return { ...out, threshold: host([F], thr) };
}

function build(ctx: DictionaryLoadContext, cfg: LmSaesConfig, w: LmSaesWeights, source: string): Dictionary {
  const weights = { W_enc: w.W_enc, b_enc: w.b_enc, W_dec: w.W_dec, b_dec: w.b_dec, applyBDecToInput: false };
  const meta: DictionaryMeta = {
    source,
    format: 'llama-scope',
    hook: cfg.hookIn,
    details: {
      layout: 'lm-saes 2.x config.json', normActivation: cfg.normActivation, datasetScale: w.scale,
      sparsityIncludeDecoderNorm: cfg.sparsityIncludeDecoderNorm,
    },
  };
  switch (cfg.activation) {
    case 'jumprelu': return new JumpReluDictionary(ctx.ops, { ...weights, threshold: w.threshold! }, meta);
    case 'topk': return new TopKDictionary(ctx.ops, { ...weights, k: cfg.topK!, ...(w.selectionScale ? { selectionScale: w.selectionScale } : {}) }, meta);
    case 'relu': return new ReluDictionary(ctx.ops, weights, meta);
  }
}

/** Loads the checkpoint lm-saes would pick in `dir`; .pt / .dcp checkpoints are a CapabilityError. */
export function loadLmSaes(dir: string, cfg: LmSaesConfig, ctx: DictionaryLoadContext): Dictionary {
  const path = lmSaesWeightsPath(dir);
  if (!path) throw new NotFoundError(`${dir} has config.json but no weights (${LM_SAES_WEIGHT_FILES.join(', ')})`, LM_SAES_HINT);
  if (!path.endsWith('.safetensors')) {
    throw new CapabilityError(`${path}: lm-saes loads this ${path.endsWith('.pt') ? 'torch.save' : 'distributed (DCP)'} checkpoint first, and sfc reads only safetensors`,
      'save it as safetensors with lm-saes (SparseDictionary.from_pretrained(dir).save_checkpoint("<dir>/sae_weights.safetensors")), which it then loads first');
  }
  return withSafetensors(path, (file) => build(ctx, cfg, foldLmSaes(cfg, file, path), path));
}
