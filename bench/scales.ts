// The benchmark's workload shapes: `pythia70m` (the Pythia-70m-sized model with 19
// SAEs of 32768 features), `small` (a tiny version for checking the harness quickly),
// `gemma2-2b` (Gemma-2-2B's shapes in bf16 with Gemma-Scope-shaped JumpReLU SAEs on the 26
// resid_l) and `gemma2-small` (its tiny version), plus where each workload is cached.
// Everything else in bench/ reads sizes from here.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Scale {
  readonly name: string;
  readonly dModel: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly dMlp: number;
  readonly vocabSize: number;
  /** Features per SAE (every submodule has one). */
  readonly dSae: number;
  /** Contrastive pairs, all `seq` tokens long, run as one batch. */
  readonly examples: number;
  /** Fraction of SAE features active per token, on average over the calibration tokens. */
  readonly activeFraction: number;
  /** Per-example, per-position node effects above 0.1 the model is scaled to give (attrib estimate). */
  readonly targetNodes: number;
  /** `exact` patches features 0 … exactFeatures − 1 of one middle submodule (plus its error nodes). */
  readonly exactFeatures: number;
  /** The model family; default gpt_neox (ReLU SAEs on every submodule, f32 weights). */
  readonly architecture?: 'gpt_neox' | 'gemma2';
  /** gemma2: key/value heads, head width, and the backends a default run uses (tfjs-wasm cannot hold 10 GB). */
  readonly nKvHeads?: number;
  readonly headDim?: number;
  readonly defaultBackends?: string;
}

/**
 * Scales whose onnx runs keep the token embedding on disk (onnx.embeddingOnDisk): at Gemma-2-2B
 * size the 1.1 GiB table is what separates the peak RSS from the target
 * (docs/performance.md). A run setting, not part of the workload (Scale is the workload's identity).
 */
export const EMBEDDING_ON_DISK: ReadonlySet<string> = new Set(['gemma2-2b']);

export const SCALES: Readonly<Record<string, Scale>> = {
  pythia70m: {
    name: 'pythia70m', dModel: 512, nLayers: 6, nHeads: 8, dMlp: 2048, vocabSize: 50304, dSae: 32768,
    examples: 10, activeFraction: 0.005, targetNodes: 900, exactFeatures: 128,
  },
  small: {
    name: 'small', dModel: 64, nLayers: 2, nHeads: 4, dMlp: 256, vocabSize: 512, dSae: 2048,
    examples: 10, activeFraction: 0.01, targetNodes: 150, exactFeatures: 256,
  },
  // Gemma-2-2B (config.json of google/gemma-2-2b) with Gemma Scope 16k-wide JumpReLU SAEs on every
  // resid_l; L0 ≈ 80 of 16384 as the canonical Gemma Scope SAEs. 4 pairs of 8 tokens.
  'gemma2-2b': {
    name: 'gemma2-2b', architecture: 'gemma2', dModel: 2304, nLayers: 26, nHeads: 8, nKvHeads: 4, headDim: 256, dMlp: 9216,
    vocabSize: 256000, dSae: 16384, examples: 4, activeFraction: 0.005, targetNodes: 400, exactFeatures: 64, defaultBackends: 'onnx',
  },
  'gemma2-small': {
    name: 'gemma2-small', architecture: 'gemma2', dModel: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 32, dMlp: 256,
    vocabSize: 512, dSae: 1024, examples: 4, activeFraction: 0.01, targetNodes: 100, exactFeatures: 64,
  },
};

/** Token length of every prompt (the data generator's template). */
export const SEQ_LEN = 8;
export const NODE_THRESHOLD = 0.1;
export const IG_STEPS = 10;
export const EVAL_THRESHOLDS: readonly number[] = [NODE_THRESHOLD];

/** Bumped whenever the generator changes what it writes; older caches are rebuilt. */
export const GENERATOR_VERSION = 1;

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const CACHE_DIR = join(BENCH_DIR, 'cache');
export const RESULTS_DIR = join(BENCH_DIR, 'results');

export function workloadDir(scale: Scale): string {
  return join(CACHE_DIR, scale.name);
}

/** The submodule whose features `exact` patches: the middle layer's residual stream. */
export function exactSubmodule(scale: Scale): string {
  return `resid_${Math.floor((scale.nLayers - 1) / 2)}`;
}

export function scaleByName(name: string): Scale {
  const s = SCALES[name];
  if (!s) throw new Error(`unknown scale '${name}'; use one of ${Object.keys(SCALES).join(', ')}`);
  return s;
}

/**
 * Stages whose runs all take less than FAST_SECONDS get at least FAST_RUNS runs (sfc and PyTorch
 * alike, bench/pytorch_baseline.py has the same constants): a median of 3 is noise at tens of ms.
 */
export const FAST_SECONDS = 0.5;
export const FAST_RUNS = 10;
