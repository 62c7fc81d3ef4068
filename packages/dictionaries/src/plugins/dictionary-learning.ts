// saprmarks/dictionary_learning loader: `ae.pt` (a torch.save'd state_dict, or a training
// backup {"ae": state_dict, ...}) read by the safe unpickler — nothing in the file is executed —
// plus optional `config.json` whose `trainer.dict_class` names the class. Without it the class
// is inferred from the state_dict keys. Classes and their parameters (torch layouts):
//   AutoEncoder            bias [d], encoder.weight [F,d], encoder.bias [F], decoder.weight [d,F]
//   AutoEncoderNew         encoder.weight, encoder.bias, decoder.weight, decoder.bias (no centring)
//   GatedAutoEncoder       decoder_bias, encoder.weight, r_mag, gate_bias, mag_bias, decoder.weight
//   JumpReluAutoEncoder    W_enc [d,F], b_enc, W_dec [F,d], b_dec, threshold [F] (no centring)
//   AutoEncoderTopK        encoder.weight, encoder.bias, decoder.weight, b_dec, k, threshold
//   BatchTopKSAE           same keys as AutoEncoderTopK; inference uses the threshold
//   MatryoshkaBatchTopKSAE W_enc, b_enc, W_dec, b_dec, k, threshold, group_sizes
// `normalizeDecoder` (default true) ports AutoEncoder.from_pretrained(normalize_decoder=True).

import { join } from 'node:path';
import { FormatError, quoteName, type Dictionary, type DictionaryLoadContext, type DictionaryPlugin, type TensorOps } from '@sfc/core';
import {
  BatchTopKDictionary, GatedDictionary, JumpReluDictionary, MatryoshkaBatchTopKDictionary, ReluDictionary, TopKDictionary,
  type DictionaryMeta,
} from '../architectures/index.js';
import { expectShape, foldDecoderNorms, rowNorms, transpose2d, type HostTensor } from '../host-weights.js';
import { readTorchCheckpoint, stateDict } from '../formats/index.js';
import { VERSION } from '../version.js';
import { booleanOption, checkWidth, isFile, readByOffset, readJson } from './plugin-io.js';
import { checkFiniteWeights, type WeightMap } from './weight-map.js';

export const DICTIONARY_LEARNING_CLASSES = ['AutoEncoder', 'AutoEncoderNew', 'GatedAutoEncoder', 'JumpReluAutoEncoder',
  'AutoEncoderTopK', 'BatchTopKSAE', 'MatryoshkaBatchTopKSAE'] as const;
export type DictionaryLearningClass = typeof DICTIONARY_LEARNING_CLASSES[number];

export interface DictionaryLearningOptions {
  /** Rescale AutoEncoder decoders to unit-norm columns (output-preserving). Default true, as the library. */
  readonly normalizeDecoder?: boolean;
}

const HINT = 'a dictionary_learning folder has ae.pt (and usually config.json) as written by trainSAE';

const REQUIRED: Record<DictionaryLearningClass, readonly string[]> = {
  AutoEncoder: ['bias', 'encoder.weight', 'encoder.bias', 'decoder.weight'],
  AutoEncoderNew: ['encoder.weight', 'encoder.bias', 'decoder.weight', 'decoder.bias'],
  GatedAutoEncoder: ['decoder_bias', 'encoder.weight', 'r_mag', 'gate_bias', 'mag_bias', 'decoder.weight'],
  JumpReluAutoEncoder: ['W_enc', 'b_enc', 'W_dec', 'b_dec', 'threshold'],
  AutoEncoderTopK: ['encoder.weight', 'encoder.bias', 'decoder.weight', 'b_dec', 'k'],
  BatchTopKSAE: ['encoder.weight', 'encoder.bias', 'decoder.weight', 'b_dec', 'k', 'threshold'],
  MatryoshkaBatchTopKSAE: ['W_enc', 'b_enc', 'W_dec', 'b_dec', 'k', 'threshold', 'group_sizes'],
};

/**
 * The class a state_dict's keys fit (most specific first). AutoEncoderTopK and BatchTopKSAE
 * share their keys; without config.json AutoEncoderTopK is assumed (`ambiguous` is set).
 */
export function inferDictionaryLearningClass(keys: Iterable<string>): { cls: DictionaryLearningClass; ambiguous: boolean } | undefined {
  const k = new Set(keys);
  const fits = (c: DictionaryLearningClass) => REQUIRED[c].every((n) => k.has(n));
  if (fits('GatedAutoEncoder')) return { cls: 'GatedAutoEncoder', ambiguous: false };
  if (fits('MatryoshkaBatchTopKSAE')) return { cls: 'MatryoshkaBatchTopKSAE', ambiguous: false };
  if (fits('JumpReluAutoEncoder') && !k.has('k')) return { cls: 'JumpReluAutoEncoder', ambiguous: false };
  if (fits('AutoEncoderTopK')) return { cls: 'AutoEncoderTopK', ambiguous: k.has('threshold') };
  if (fits('AutoEncoder')) return { cls: 'AutoEncoder', ambiguous: false };
  if (fits('AutoEncoderNew')) return { cls: 'AutoEncoderNew', ambiguous: false };
  return undefined;
}

interface TrainerConfig {
  readonly dictClass?: string;
  readonly k?: number;
  readonly submodule?: string;
  readonly lmName?: string;
  readonly layer?: number;
}

function readTrainerConfig(raw: unknown): TrainerConfig {
  const trainer = (typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>).trainer : undefined) as Record<string, unknown> | undefined;
  if (!trainer || typeof trainer !== 'object') return {};
  return {
    ...(typeof trainer.dict_class === 'string' ? { dictClass: trainer.dict_class } : {}),
    ...(typeof trainer.k === 'number' ? { k: trainer.k } : {}),
    ...(typeof trainer.submodule_name === 'string' ? { submodule: trainer.submodule_name } : {}),
    ...(typeof trainer.lm_name === 'string' ? { lmName: trainer.lm_name } : {}),
    ...(typeof trainer.layer === 'number' ? { layer: trainer.layer } : {}),
  };
}

async function readStateDict(path: string): Promise<WeightMap> {
  const sd = stateDict(unwrapTrainingBackup(readByOffset(path, HINT, (src) => readTorchCheckpoint(src, path))));
  checkFiniteWeights(sd, path);
  return sd;
}

/** Training backups (`checkpoints/*.pt`, trainSAE's backup files) hold {"ae": state_dict, "optimizer": …}. */
function unwrapTrainingBackup(root: unknown): unknown {
  if (root instanceof Map && root.has('ae') && !root.has('encoder.weight') && !root.has('W_enc')) return root.get('ae');
  if (typeof root === 'object' && root !== null && !(root instanceof Map) && 'ae' in root
    && !('encoder.weight' in root) && !('W_enc' in root)) return (root as Record<string, unknown>).ae;
  return root;
}

export function dictionaryLearning(options: DictionaryLearningOptions = {}): DictionaryPlugin {
  return {
    meta: { name: 'dictionary-learning', version: VERSION, namespace: 'dictionary-learning' },

    async detect(dir) {
      if (!isFile(join(dir, 'ae.pt'))) return { ok: false, reason: 'no ae.pt' };
      let hook: string | undefined;
      let cls = 'class inferred from keys';
      if (isFile(join(dir, 'config.json'))) {
        try {
          const t = readTrainerConfig(await readJson(join(dir, 'config.json'), HINT));
          hook = t.submodule;
          if (t.dictClass) cls = t.dictClass;
        } catch { /* a broken config.json is reported by load() */ }
      }
      return { ok: true, reason: `dictionary_learning ae.pt (${cls})`, ...(hook ? { hook } : {}) };
    },

    async load(dir, ctx) {
      const aePath = join(dir, 'ae.pt');
      const trainer = isFile(join(dir, 'config.json')) ? readTrainerConfig(await readJson(join(dir, 'config.json'), HINT)) : {};
      const sd = await readStateDict(aePath);
      const normalize = booleanOption(ctx, 'normalizeDecoder', options.normalizeDecoder ?? true);
      const dict = buildDictionaryLearning(ctx.ops, sd, trainer, aePath, ctx, normalize);
      checkWidth(dict, ctx);
      return dict;
    },
  };
}

function scalar(t: HostTensor | undefined): number | undefined {
  return t && t.data.length === 1 ? t.data[0]! : undefined;
}

export function buildDictionaryLearning(ops: TensorOps, sd: WeightMap, trainer: TrainerConfig, source: string,
  ctx: Pick<DictionaryLoadContext, 'warn'>, normalizeDecoder: boolean): Dictionary {
  const inferred = inferDictionaryLearningClass(sd.keys());
  let cls: DictionaryLearningClass;
  if (trainer.dictClass && (DICTIONARY_LEARNING_CLASSES as readonly string[]).includes(trainer.dictClass)) {
    cls = trainer.dictClass as DictionaryLearningClass;
    const missing = REQUIRED[cls].filter((n) => !sd.has(n) && !(n === 'k' && trainer.k !== undefined));
    if (missing.length) {
      throw new FormatError(`${source}: config.json says ${cls}, but the state_dict lacks ${missing.join(', ')}`,
        `keys present: ${[...sd.keys()].join(', ')}${inferred ? `; they fit ${inferred.cls}` : ''}`);
    }
  } else {
    if (!inferred) {
      throw new FormatError(`${source}: the state_dict keys (${[...sd.keys()].join(', ')}) match no dictionary_learning class`,
        `supported: ${DICTIONARY_LEARNING_CLASSES.join(', ')}`);
    }
    if (trainer.dictClass) ctx.warn?.(`${source}: unknown dict_class ${quoteName(trainer.dictClass)} in config.json; the keys fit ${inferred.cls}, loading as that`);
    if (inferred.ambiguous) ctx.warn?.(`${source}: AutoEncoderTopK and BatchTopKSAE have the same keys and there is no config.json; loading as AutoEncoderTopK (per-row top-k)`);
    cls = inferred.cls;
  }
  const get = (n: string) => sd.get(n)!;
  const details: Record<string, string | number | boolean> = { class: cls, ...(trainer.lmName ? { model: trainer.lmName } : {}) };
  const meta: DictionaryMeta = {
    source,
    format: 'dictionary-learning',
    details,
    ...(trainer.submodule ? { hook: trainer.submodule } : {}),
  };
  // torch nn.Linear weights are [out, in]; sfc wants W_enc [dIn, dSae] and W_dec [dSae, dIn].
  const fromLinear = (encName: string, decName: string) => {
    const enc = get(encName), dec = get(decName);
    if (enc.shape.length !== 2 || dec.shape.length !== 2) throw new FormatError(`${source}: ${encName} and ${decName} must be matrices`);
    const [dSae, dIn] = enc.shape as [number, number];
    expectShape(dec, [dIn, dSae], decName, source);
    return { W_enc: transpose2d(enc), W_dec: transpose2d(dec), dIn, dSae };
  };
  const k = () => {
    const v = scalar(sd.get('k')) ?? trainer.k;
    if (v === undefined) throw new FormatError(`${source}: ${cls} without k`, 'add trainer.k to config.json');
    if (trainer.k !== undefined && sd.has('k') && trainer.k !== v) {
      throw new FormatError(`${source}: k = ${v} in ae.pt but ${trainer.k} in config.json`, 'the files belong to different runs');
    }
    return v;
  };

  switch (cls) {
    case 'AutoEncoder': {
      let { W_enc, W_dec, dIn, dSae } = fromLinear('encoder.weight', 'decoder.weight');
      let b_enc = expectShape(get('encoder.bias'), [dSae], 'encoder.bias', source);
      const b_dec = expectShape(get('bias'), [dIn], 'bias', source);
      if (normalizeDecoder) ({ W_enc, W_dec, b_enc } = normalizeAutoEncoder(W_enc, b_enc, W_dec, details, source, ctx));
      return new ReluDictionary(ops, { W_enc, b_enc, W_dec, b_dec, applyBDecToInput: true }, meta);
    }
    case 'AutoEncoderNew': {
      const { W_enc, W_dec, dIn, dSae } = fromLinear('encoder.weight', 'decoder.weight');
      return new ReluDictionary(ops, {
        W_enc, W_dec, b_enc: expectShape(get('encoder.bias'), [dSae], 'encoder.bias', source),
        b_dec: expectShape(get('decoder.bias'), [dIn], 'decoder.bias', source), applyBDecToInput: false,
      }, meta);
    }
    case 'GatedAutoEncoder': {
      const { W_enc, W_dec } = fromLinear('encoder.weight', 'decoder.weight');
      return new GatedDictionary(ops, {
        W_enc, W_dec, b_dec: get('decoder_bias'), b_gate: get('gate_bias'), b_mag: get('mag_bias'), r_mag: get('r_mag'), applyBDecToInput: true,
      }, meta);
    }
    case 'JumpReluAutoEncoder':
      return new JumpReluDictionary(ops, {
        W_enc: get('W_enc'), b_enc: get('b_enc'), W_dec: get('W_dec'), b_dec: get('b_dec'), threshold: get('threshold'), applyBDecToInput: false,
      }, meta);
    case 'AutoEncoderTopK':
    case 'BatchTopKSAE': {
      const { W_enc, W_dec, dSae } = fromLinear('encoder.weight', 'decoder.weight');
      const w = { W_enc, W_dec, b_enc: expectShape(get('encoder.bias'), [dSae], 'encoder.bias', source), b_dec: get('b_dec'), applyBDecToInput: true };
      if (cls === 'AutoEncoderTopK') return new TopKDictionary(ops, { ...w, k: k() }, meta);
      const threshold = scalar(sd.get('threshold'));
      if (threshold === undefined) throw new FormatError(`${source}: BatchTopKSAE threshold must be a scalar`);
      return new BatchTopKDictionary(ops, { ...w, threshold, k: k() }, meta);
    }
    case 'MatryoshkaBatchTopKSAE': {
      const threshold = scalar(sd.get('threshold'));
      if (threshold === undefined) throw new FormatError(`${source}: MatryoshkaBatchTopKSAE threshold must be a scalar`);
      return new MatryoshkaBatchTopKDictionary(ops, {
        W_enc: get('W_enc'), b_enc: get('b_enc'), W_dec: get('W_dec'), b_dec: get('b_dec'), applyBDecToInput: true,
        threshold, k: k(), groupSizes: Array.from(get('group_sizes').data),
      }, meta);
    }
  }
}

/**
 * AutoEncoder.normalize_decoder: when some decoder column norm n_j differs from 1
 * (torch.allclose: |n − 1| > 1e-8 + 1e-5), decoder columns /= n, encoder rows and bias *= n.
 * decode(encode(x)) is unchanged; feature j is multiplied by n_j.
 */
function normalizeAutoEncoder(W_enc: HostTensor, b_enc: HostTensor, W_dec: HostTensor, details: Record<string, string | number | boolean>,
  source: string, ctx: Pick<DictionaryLoadContext, 'warn'>) {
  const norms = rowNorms(W_dec);
  if (norms.every((n) => Math.abs(n - 1) <= 1e-8 + 1e-5)) return { W_enc, W_dec, b_enc };
  if (norms.some((n) => n === 0)) ctx.warn?.(`${source}: decoder has zero-norm columns; normalizing leaves them as they are`);
  details.normalizedDecoder = true;
  return foldDecoderNorms({ W_enc, b_enc, W_dec });
}
