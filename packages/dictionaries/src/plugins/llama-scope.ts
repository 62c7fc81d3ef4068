// Llama Scope loader. Two layouts, told apart by the config file present:
//   hyperparams.json — lm-saes 1.x, the fnlp/Llama-Scope releases (this file);
//   config.json with `sae_type` — lm-saes 2.x (llama-scope-v2.ts); a config.json with lm-saes keys
//   but no sae_type (2025 development versions) is claimed and refused naming the alternative.
// The 1.x release layout of fnlp/Llama-Scope, written by OpenMOSS lm-saes 1.x — a
// folder per SAE (`L15R-8x/`) with `hyperparams.json` (llama-scope-config.ts) and
// `checkpoints/final.safetensors` holding encoder.weight [d_sae, d_model], encoder.bias [d_sae],
// decoder.weight [d_model, d_sae] and decoder.bias [d_model] (torch.nn.Linear layout).
//
// The weights are raw training weights; lm-saes' SparseAutoEncoder.from_config turns them into
// the SAE it runs at inference, and sfc applies the same two output-preserving folds:
//   1. dataset-wise normalisation (standardize_parameters_of_dataset_activation_scaling): training
//      encodes x_n = s_in·x and decodes to s_out·x̂, s = √d_model / dataset average norm; folded,
//      b_enc /= s_in, b_dec /= s_out, W_dec ·= s_in / s_out, so the SAE reads and writes raw x;
//   2. with sparsity_include_decoder_norm (transform_to_unit_decoder_norm): every decoder column
//      to unit norm, its norm moved into the encoder row and bias.
// Then f = act(x W_encᵀ + b_enc) (x − b_dec first with apply_decoder_bias_to_pre_encoder), act =
// JumpReLU with the scalar jump_relu_threshold (which post-processing measured on exactly these
// folded pre-activations), TopK(top_k) or ReLU; x̂ = f W_decᵀ + b_dec. Features are therefore
// lm-saes' inference features, `SparseAutoEncoder.from_pretrained(dir).encode(x)`.
// (SAELens' llama_scope conversion folds s_in into W_enc and the threshold but not the decoder
// norms: its features are s_in / ‖decoder column‖ times these, and its active set differs when the
// columns are not unit norm — docs/formats.md.)

import { join } from 'node:path';
import { NotFoundError, withSafetensors, type Dictionary, type DictionaryLoadContext, type DictionaryPlugin } from '@sfc/core';
import { JumpReluDictionary, ReluDictionary, TopKDictionary, type DictionaryMeta } from '../architectures/index.js';
import { constant, expectShape, foldDecoderNorms, scaleVector, transpose2d, type HostTensor } from '../host-weights.js';
import { VERSION } from '../version.js';
import { parseLlamaScopeConfig, type LlamaScopeConfig } from './llama-scope-config.js';
import { parseLmSaesConfig } from './lm-saes-config.js';
import { LM_SAES_WEIGHT_FILES, lmSaesWeightsPath, loadLmSaes, refuseDevLayout } from './llama-scope-v2.js';
import { checkWidth, isFile, readJson } from './plugin-io.js';
import { requireTensor, weightMap, type WeightMap } from './weight-map.js';

const HINT = 'a Llama Scope folder has hyperparams.json and checkpoints/final.safetensors (fnlp/Llama-Scope, OpenMOSS lm-saes 1.x), or config.json and sae_weights.safetensors (lm-saes 2.x)';

/** Where lm-saes' from_config looks for weights, in its order (its .pt variants are not read), and the bare final.safetensors. */
const WEIGHT_FILES = ['sae_weights.safetensors', 'checkpoints/pruned.safetensors', 'checkpoints/final.safetensors', 'final.safetensors'];

/** The weights file a Llama Scope folder's SAE is loaded from, if any. */
export function llamaScopeWeightsFile(dir: string): string | undefined {
  return WEIGHT_FILES.map((f) => join(dir, f)).find(isFile);
}

function need(w: WeightMap, name: string, source: string): HostTensor {
  return requireTensor(w, [name], source, HINT);
}

/** The folded weights in sfc's layout (W_enc [d, F], W_dec [F, d]); see the header for the folds. */
export function foldLlamaScope(cfg: LlamaScopeConfig, w: WeightMap, source: string): { W_enc: HostTensor; b_enc: HostTensor; W_dec: HostTensor; b_dec: HostTensor } {
  const { dModel: d, dSae: F, scaleIn, scaleOut } = cfg;
  const We = expectShape(need(w, 'encoder.weight', source), [F, d], 'encoder.weight', source);
  const be = expectShape(need(w, 'encoder.bias', source), [F], 'encoder.bias', source);
  const Wd = expectShape(need(w, 'decoder.weight', source), [d, F], 'decoder.weight', source);
  const bd = cfg.useDecoderBias ? expectShape(need(w, 'decoder.bias', source), [d], 'decoder.bias', source) : constant(d, 0);
  const folded = {
    W_enc: transpose2d(We),
    b_enc: scaleVector(be, 1 / scaleIn),
    W_dec: scaleIn === scaleOut ? transpose2d(Wd) : scaleVector(transpose2d(Wd), scaleIn / scaleOut),
  };
  const b_dec = scaleOut === 1 ? bd : scaleVector(bd, 1 / scaleOut);
  if (!cfg.sparsityIncludeDecoderNorm) return { ...folded, b_dec };
  const unit = foldDecoderNorms(folded);
  return { W_enc: unit.W_enc, b_enc: unit.b_enc, W_dec: unit.W_dec, b_dec };
}

function build(ctx: DictionaryLoadContext, cfg: LlamaScopeConfig, w: WeightMap, source: string): Dictionary {
  const weights = { ...foldLlamaScope(cfg, w, source), applyBDecToInput: cfg.applyDecoderBiasToPreEncoder };
  const meta: DictionaryMeta = {
    source,
    format: 'llama-scope',
    hook: cfg.hookIn,
    details: {
      actFn: cfg.actFn, normActivation: cfg.normActivation, scaleIn: cfg.scaleIn, scaleOut: cfg.scaleOut,
      decoderNormFolded: cfg.sparsityIncludeDecoderNorm, ...(cfg.activation === 'jumprelu' ? { threshold: cfg.threshold } : {}),
    },
  };
  switch (cfg.activation) {
    case 'jumprelu': return new JumpReluDictionary(ctx.ops, { ...weights, threshold: constant(cfg.dSae, cfg.threshold) }, meta);
    case 'topk': return new TopKDictionary(ctx.ops, { ...weights, k: cfg.topK! }, meta);
    case 'relu': return new ReluDictionary(ctx.ops, weights, meta);
  }
}

/** hook_point_in of a hyperparams.json or config.json, read leniently (detection names the hook even when loading will refuse the file). */
function declaredHook(raw: unknown): string | undefined {
  const h = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>).hook_point_in : undefined;
  return typeof h === 'string' && h.length > 0 ? h : undefined;
}

type Layout = 'v1' | 'v2' | 'dev';

/**
 * Which layout `dir` holds: hyperparams.json (1.x) wins; config.json counts when it has sae_type
 * (2.x) or, without one, lm-saes' own keys (a 2025 development version). Unparseable JSON is an error.
 */
async function layoutOf(dir: string): Promise<{ layout: Layout; cfgPath: string; raw: unknown } | { reason: string }> {
  const v1 = join(dir, 'hyperparams.json');
  if (isFile(v1)) return { layout: 'v1', cfgPath: v1, raw: await readJson(v1, HINT) };
  const v2 = join(dir, 'config.json');
  if (!isFile(v2)) return { reason: 'no hyperparams.json or config.json' };
  const raw = await readJson(v2, HINT);
  const cfg = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? raw as Record<string, unknown> : {};
  if ('sae_type' in cfg) return { layout: 'v2', cfgPath: v2, raw };
  if (['hook_point_in', 'd_model', 'expansion_factor'].every((k) => k in cfg)) return { layout: 'dev', cfgPath: v2, raw };
  return { reason: 'config.json is not an lm-saes one (no sae_type)' };
}


function weightsOf(layout: Layout, dir: string): string | undefined {
  return layout === 'v1' ? llamaScopeWeightsFile(dir) : lmSaesWeightsPath(dir);
}

async function detectLlamaScope(dir: string): Promise<{ ok: boolean; reason: string; hook?: string }> {
  let found: Awaited<ReturnType<typeof layoutOf>>;
  try {
    found = await layoutOf(dir);
  } catch (e) {
    return { ok: false, reason: `config is not JSON: ${(e as Error).message}` };
  }
  if ('reason' in found) return { ok: false, reason: found.reason };
  const { layout, cfgPath, raw } = found;
  const file = layout === 'v1' ? 'hyperparams.json' : 'config.json';
  if (!weightsOf(layout, dir)) return { ok: false, reason: `${file} without ${(layout === 'v1' ? WEIGHT_FILES : LM_SAES_WEIGHT_FILES).join(' or ')}` };
  const hook = declaredHook(raw);
  let reason: string;
  try {
    if (layout === 'dev') refuseDevLayout(cfgPath);
    const cfg = layout === 'v1' ? parseLlamaScopeConfig(raw, cfgPath) : parseLmSaesConfig(raw, cfgPath);
    const version = layout === 'v1' ? 'lm-saes 1.x' : 'lm-saes 2.x';
    reason = `Llama Scope (${version}) ${cfg.activation} SAE, d_model ${cfg.dModel}, d_sae ${cfg.dSae}`;
  } catch (e) {
    reason = `Llama Scope (lm-saes) ${file} that cannot be loaded: ${(e as Error).message}`; // load says so as a typed error
  }
  return { ok: true, reason, ...(hook ? { hook } : {}) };
}

export function llamaScope(): DictionaryPlugin {
  return {
    meta: { name: 'llama-scope', version: VERSION, namespace: 'llama-scope' },

    detect: detectLlamaScope,

    async load(dir, ctx) {
      const found = await layoutOf(dir);
      if ('reason' in found) throw new NotFoundError(`${dir}: ${found.reason}`, HINT);
      const { layout, cfgPath, raw } = found;
      if (layout === 'dev') refuseDevLayout(cfgPath);
      let dict: Dictionary;
      if (layout === 'v2') {
        dict = loadLmSaes(dir, parseLmSaesConfig(raw, cfgPath), ctx);
      } else {
        const cfg = parseLlamaScopeConfig(raw, cfgPath);
        const wPath = llamaScopeWeightsFile(dir);
        if (!wPath) throw new NotFoundError(`${dir} has no weights (${WEIGHT_FILES.join(', ')})`, HINT);
        dict = withSafetensors(wPath, (file) => build(ctx, cfg, weightMap(file), wPath));
      }
      checkWidth(dict, ctx);
      return dict;
    },
  };
}
