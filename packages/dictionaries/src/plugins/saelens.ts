// SAELens loader: a folder with `cfg.json` (any SAELens layout, see saelens-config.ts) and
// `sae_weights.safetensors` (W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in], b_dec, plus
// threshold / b_gate, b_mag, r_mag by architecture). Architectures: standard, jumprelu, topk,
// gated, batchtopk, matryoshka_batchtopk. Weight folds that SAELens applies at load time are
// applied here too, so features and reconstructions match `SAE.load_from_disk` + its folds.

import { join } from 'node:path';
import { FormatError, NotFoundError, quoteName, withSafetensors, type Dictionary, type DictionaryLoadContext, type DictionaryPlugin, type TensorOps } from '@sfc/core';
import {
  BatchTopKDictionary, GatedDictionary, JumpReluDictionary, MatryoshkaBatchTopKDictionary, ReluDictionary, TopKDictionary,
  type DictionaryMeta,
} from '../architectures/index.js';
import { withInputNormalization } from '../architectures/input-normalization.js';
import { expectShape, foldDecoderNorms, host, scaleRows, scaleVector, type HostTensor } from '../host-weights.js';
import { VERSION } from '../version.js';
import { checkWidth, isFile, numberOption, readJson } from './plugin-io.js';
import { migrateSaeLensConfig, type SaeLensConfig } from './saelens-config.js';
import { requireTensor, weightMap, type WeightMap } from './weight-map.js';

export interface SaeLensOptions {
  /**
   * For `normalize_activations: expected_average_only_in`: the factor SAELens folds into the
   * weights (sqrt(d_in) / E‖x‖ over the training data). Per-load `options.scalingFactor` wins.
   */
  readonly scalingFactor?: number;
}

export const SAELENS_ARCHITECTURES = ['standard', 'jumprelu', 'topk', 'gated', 'batchtopk', 'matryoshka_batchtopk'] as const;

const HINT = 'a SAELens folder has cfg.json and sae_weights.safetensors (SAE.save_model / save_inference_model)';

export function saelens(options: SaeLensOptions = {}): DictionaryPlugin {
  return {
    meta: { name: 'saelens', version: VERSION, namespace: 'saelens' },

    async detect(dir) {
      const hasCfg = isFile(join(dir, 'cfg.json'));
      const hasWeights = isFile(join(dir, 'sae_weights.safetensors'));
      if (!hasCfg && !hasWeights) return { ok: false, reason: 'no cfg.json or sae_weights.safetensors' };
      if (!hasCfg) return { ok: false, reason: 'sae_weights.safetensors without cfg.json' };
      if (!hasWeights) return { ok: false, reason: 'cfg.json without sae_weights.safetensors' };
      try {
        const cfg = migrateSaeLensConfig(await readJson(join(dir, 'cfg.json'), HINT), join(dir, 'cfg.json'));
        const hook = cfg.metadata.hook_name;
        return { ok: true, reason: `SAELens ${cfg.architecture} SAE, d_in ${cfg.d_in}, d_sae ${cfg.d_sae}`, ...(hook ? { hook } : {}) };
      } catch (e) {
        return { ok: false, reason: `cfg.json is not a SAELens config: ${(e as Error).message}` };
      }
    },

    async load(dir, ctx) {
      const cfgPath = join(dir, 'cfg.json');
      const cfg = migrateSaeLensConfig(await readJson(cfgPath, HINT), cfgPath);
      const wPath = join(dir, 'sae_weights.safetensors');
      if (!isFile(wPath)) throw new NotFoundError(`${wPath} does not exist`, HINT);
      const dict = buildSaeLens(ctx.ops, cfg, withSafetensors(wPath, weightMap), wPath, ctx, options);
      checkWidth(dict, ctx);
      return dict;
    },
  };
}

function need(w: WeightMap, name: string, source: string, alternatives: readonly string[] = []): HostTensor {
  return requireTensor(w, [name, ...alternatives], source, 'the file does not match its cfg.json architecture');
}

/**
 * hook_z SAEs read z with its heads flattened, head-major ("... n_heads d_head -> ... (n_heads d_head)",
 * SAELens' reshape_activations), which is sfc's attn_l on Gemma. Weights saved per head —
 * W_enc [n_heads, d_head, d_sae], W_dec [d_sae, n_heads, d_head], b_dec [n_heads, d_head] — are the
 * same numbers in C order, so flattening is a reshape. `at`: where the d_in axes are.
 */
function flattenHeads(t: HostTensor, dIn: number, at: 'first' | 'last' | 'all', name: string, source: string): HostTensor {
  const s = t.shape;
  const expectRank = at === 'all' ? 1 : 2;
  if (s.length <= expectRank) return t;
  const inAxes = at === 'first' ? s.slice(0, -1) : at === 'last' ? s.slice(1) : s;
  const rest = at === 'first' ? [s[s.length - 1]!] : at === 'last' ? [s[0]!] : [];
  if (inAxes.reduce((a, b) => a * b, 1) !== dIn) {
    throw new FormatError(`${source}: ${name} has shape [${s.join(', ')}], whose head axes do not multiply to d_in ${dIn}`,
      'the file is inconsistent with its cfg.json');
  }
  return host(at === 'first' ? [dIn, ...rest] : at === 'last' ? [...rest, dIn] : [dIn], t.data);
}

/** SAELens' scalar-or-vector batchtopk threshold: `threshold` (as saved for inference) or `topk_threshold` (training). */
function batchThreshold(w: WeightMap, dSae: number, source: string): { scalar?: number; vector?: HostTensor } {
  const t = w.get('threshold') ?? w.get('topk_threshold');
  if (!t) throw new FormatError(`${source}: batchtopk SAE without 'threshold' or 'topk_threshold'`, 'save it with save_inference_model, which stores the learned threshold');
  if (t.data.length === 1) return { scalar: t.data[0]! };
  expectShape(t, [dSae], 'threshold', source);
  const first = t.data[0]!;
  return t.data.every((v) => v === first) ? { scalar: first } : { vector: t };
}

export function buildSaeLens(ops: TensorOps, cfg: SaeLensConfig, w: WeightMap, source: string, ctx: DictionaryLoadContext,
  options: SaeLensOptions = {}): Dictionary {
  const { d_in: dIn, d_sae: dSae } = cfg;
  const heads = (t: HostTensor, name: string, at: 'first' | 'last' | 'all') => (cfg.reshape_activations === 'hook_z' ? flattenHeads(t, dIn, at, name, source) : t);
  let W_enc = expectShape(heads(need(w, 'W_enc', source), 'W_enc', 'first'), [dIn, dSae], 'W_enc', source);
  let W_dec = expectShape(heads(need(w, 'W_dec', source), 'W_dec', 'last'), [dSae, dIn], 'W_dec', source);
  let b_dec = expectShape(heads(need(w, 'b_dec', source), 'b_dec', 'all'), [dIn], 'b_dec', source);

  // Old SAEs multiply features by a learned per-feature factor before decoding: fold it into W_dec.
  const sf = w.get('finetuning_scaling_factor') ?? w.get('scaling_factor');
  if (sf && sf.data.some((v) => v !== 1)) W_dec = scaleRows(W_dec, expectShape(sf, [dSae], 'scaling_factor', source).data);

  const details: Record<string, string | number | boolean> = { normalizeActivations: cfg.normalize_activations };
  if (cfg.migrated) details.migratedConfig = true;
  if (typeof cfg.metadata.model_name === 'string') details.model = cfg.metadata.model_name;
  if (cfg.normalize_activations === 'expected_average_only_in') {
    const s = numberOption(ctx, 'scalingFactor') ?? options.scalingFactor;
    if (s !== undefined) {
      // SAE.fold_activation_norm_scaling_factor: the SAE saw s·x in training.
      W_enc = scaleVector(W_enc, s);
      W_dec = scaleVector(W_dec, 1 / s);
      b_dec = scaleVector(b_dec, 1 / s);
      details.scalingFactor = s;
    } else {
      ctx.warn?.(`${source}: normalize_activations is 'expected_average_only_in' but no scaling factor was given; `
        + 'features and reconstructions are off by that factor. Pass the loader option scalingFactor = sqrt(d_in) / E‖x‖.');
      details.scalingFactor = 'missing';
    }
  }

  const meta: DictionaryMeta = {
    source,
    format: 'saelens',
    details,
    ...(typeof cfg.metadata.hook_name === 'string' ? { hook: cfg.metadata.hook_name } : {}),
  };
  const base = { W_dec, b_dec, applyBDecToInput: cfg.apply_b_dec_to_input, handOver: true };
  const encoder = () => {
    let enc = { W_enc, b_enc: expectShape(need(w, 'b_enc', source), [dSae], 'b_enc', source), W_dec };
    if (cfg.rescale_acts_by_decoder_norm) {
      // hidden_pre · ‖W_dec_j‖ then decode with W_dec_j / ‖W_dec_j‖: the same as unit-norm rows.
      const f = foldDecoderNorms(enc);
      enc = { W_enc: f.W_enc, b_enc: f.b_enc, W_dec: f.W_dec };
      details.rescaleActsByDecoderNorm = true;
    }
    return { ...base, ...enc };
  };

  let dict: Dictionary;
  switch (cfg.architecture) {
    case 'standard':
      dict = new ReluDictionary(ops, encoder(), meta);
      break;
    case 'jumprelu': {
      const log = w.get('log_threshold');
      const threshold = w.get('threshold') ?? (log ? host(log.shape, Float32Array.from(log.data, Math.exp)) : undefined);
      if (!threshold) throw new FormatError(`${source}: jumprelu SAE without 'threshold'`, 'the weights file is incomplete');
      dict = new JumpReluDictionary(ops, { ...encoder(), threshold }, meta);
      break;
    }
    case 'topk': {
      if (cfg.k === undefined) throw new FormatError(`${source}: topk SAE without k in cfg.json`, 'add "k" to cfg.json');
      dict = new TopKDictionary(ops, { ...encoder(), k: cfg.k }, meta);
      break;
    }
    case 'batchtopk':
    case 'matryoshka_batchtopk': {
      const thr = batchThreshold(w, dSae, source);
      const enc = encoder();
      if (thr.vector) {
        dict = new JumpReluDictionary(ops, { ...enc, threshold: thr.vector }, meta);
      } else if (cfg.architecture === 'batchtopk') {
        dict = new BatchTopKDictionary(ops, { ...enc, threshold: thr.scalar!, ...(cfg.k !== undefined ? { k: cfg.k } : {}) }, meta);
      } else {
        const widths = cfg.matryoshka_widths?.length ? [...cfg.matryoshka_widths] : [dSae];
        if (widths[widths.length - 1] !== dSae) widths.push(dSae); // as SAELens does
        const groupSizes = widths.map((wd, i) => wd - (i === 0 ? 0 : widths[i - 1]!));
        dict = new MatryoshkaBatchTopKDictionary(ops, { ...enc, threshold: thr.scalar!, groupSizes, ...(cfg.k !== undefined ? { k: cfg.k } : {}) }, meta);
      }
      break;
    }
    case 'gated': {
      const vec = (n: string) => expectShape(need(w, n, source), [dSae], n, source);
      dict = new GatedDictionary(ops, { ...base, W_enc, b_gate: vec('b_gate'), b_mag: vec('b_mag'), r_mag: vec('r_mag') }, meta);
      break;
    }
    default:
      throw new FormatError(`${source}: SAELens architecture ${quoteName(cfg.architecture)} is not supported`,
        `supported: ${SAELENS_ARCHITECTURES.join(', ')}; write a dictionary plugin for other architectures`);
  }
  if (cfg.normalize_activations === 'constant_norm_rescale' || cfg.normalize_activations === 'layer_norm') {
    ctx.warn?.(`${source}: normalize_activations '${cfg.normalize_activations}': sfc reports features in raw activation units `
      + '(SAELens feature × the per-token input scale) with a bias-free decoder; the per-token decoder bias is part of the error node');
    return withInputNormalization(ops, dict, cfg.normalize_activations);
  }
  return dict;
}
