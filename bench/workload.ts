// The cached benchmark workload on disk and its manifest: a Hugging Face GPT-NeoX folder
// (model/), one SAELens folder per submodule (saes/<submodule>/), the contrastive pairs
// (data.jsonl) and their token ids for the PyTorch baseline (tokens.json). `workload.json` is
// written last, so a folder without it (or with an older generator version) is rebuilt.

import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GENERATOR_VERSION, workloadDir, type Scale } from './scales.js';

export const WORKLOAD_SCHEMA = 'sfc.bench-workload/v1';

export interface Stats { readonly mean: number; readonly min: number; readonly max: number }

export interface WorkloadManifest {
  readonly schema: typeof WORKLOAD_SCHEMA;
  readonly generatorVersion: number;
  readonly scale: Scale;
  readonly seed: number;
  readonly created: string;
  readonly model: { readonly dir: 'model'; readonly parameters: number; readonly bytes: number };
  readonly saes: {
    readonly dir: 'saes';
    readonly submodules: readonly string[];
    readonly bytes: number;
    /** Active features per token over the calibration tokens (clean and patch prompts of the first `examples` pairs). */
    readonly l0: Stats;
    readonly l0PerSubmodule: Readonly<Record<string, Stats>>;
  };
  readonly data: { readonly file: 'data.jsonl'; readonly tokens: 'tokens.json'; readonly pairs: number; readonly seq: number };
  /** The unembedding was scaled by `unembedScale` so that attrib gives `attribNodes` per-example nodes above `threshold`. */
  readonly calibration: {
    readonly threshold: number; readonly attribNodes: number; readonly unembedScale: number; readonly seconds: number;
    /** 'analytic' (gemma2 scales): SAE thresholds from the weights' statistics, not from activations; l0 is then the target. */
    readonly method?: 'activations' | 'analytic';
  };
}

/** Token ids of every pair, as sfc's tokenizer encodes data.jsonl (the PyTorch baseline has no tokenizer). */
export interface TokensFile {
  readonly clean: number[][];
  readonly patch: number[][];
  readonly clean_answer: number[];
  readonly patch_answer: number[];
}

export interface Workload {
  readonly dir: string;
  readonly modelDir: string;
  readonly saeDir: string;
  readonly dataFile: string;
  readonly tokensFile: string;
  readonly manifest: WorkloadManifest;
}

export function workloadPaths(dir: string, manifest: WorkloadManifest): Workload {
  return {
    dir, manifest,
    modelDir: join(dir, manifest.model.dir),
    saeDir: join(dir, manifest.saes.dir),
    dataFile: join(dir, manifest.data.file),
    tokensFile: join(dir, manifest.data.tokens),
  };
}

/** The cached workload of `scale`, or undefined when it is missing, incomplete or from another generator version. */
export function findWorkload(scale: Scale): Workload | undefined {
  const dir = workloadDir(scale);
  const path = join(dir, 'workload.json');
  if (!existsSync(path)) return undefined;
  let m: WorkloadManifest;
  try { m = JSON.parse(readFileSync(path, 'utf8')) as WorkloadManifest; } catch { return undefined; }
  if (m.schema !== WORKLOAD_SCHEMA || m.generatorVersion !== GENERATOR_VERSION || JSON.stringify(m.scale) !== JSON.stringify(scale)) return undefined;
  return workloadPaths(dir, m);
}

/** A fresh temporary folder next to the scale's cache folder, with its `model/` folder: generators write there. */
export function startWorkload(scale: Scale): { readonly final: string; readonly tmp: string; readonly modelDir: string } {
  const final = workloadDir(scale);
  const tmp = `${final}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const modelDir = join(tmp, 'model');
  mkdirSync(modelDir, { recursive: true });
  return { final, tmp, modelDir };
}

/** Writes the manifest last and moves the finished workload into place (replacing an older one). */
export function finishWorkload(tmp: string, final: string, manifest: WorkloadManifest): Workload {
  writeFileSync(join(tmp, 'workload.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  return workloadPaths(final, manifest);
}
