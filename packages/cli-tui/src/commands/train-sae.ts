// `sfc train-sae`: trains a ReLU SAE on one submodule of any supported model over a text file
// (one sequence per line) and saves it as a SAELens folder (cfg.json + sae_weights.safetensors,
// plus training.json). The training itself is @sfc/dictionaries' trainer; this module turns
// flags into its calls, renders progress on stderr and reports held-out quality.

import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { checkOutputFolder, InputError, NotFoundError, PythonRandom } from '@sfc/core';
import {
  collectActivations, measureSae, ReluDictionary, textLines, trainReluSae, writeSaeLensFolder,
} from '@sfc/dictionaries';
import { UsageError } from '../error-format.js';
import { Session } from '../session.js';
import type { GlobalArgs, SfcCommand } from './command.js';

export const TRAIN_SAE_SCHEMA = 'sfc.train-sae/v1';

const HELP = 'run `sfc train-sae --help` for usage';

function numberFlag(argv: GlobalArgs, flag: string, check: (n: number) => boolean, what: string): number | undefined {
  const v = argv[flag];
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`--${flag} must be ${what}, got ${String(v)}`, HELP);
  return n;
}
const int = (min: number) => (n: number) => Number.isSafeInteger(n) && n >= min;

interface Settings {
  readonly submodule: string;
  readonly textFile: string;
  readonly out: string;
  readonly dictSize: number;
  readonly l1: number;
  readonly steps: number;
  readonly lr: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly maxTokens: number;
  readonly contextSize: number | undefined;
  readonly resampleEvery: number;
  readonly evalFraction: number;
}

/** Every flag checked before the model loads. */
function settings(argv: GlobalArgs, cwd: string): Settings {
  const out = resolve(cwd, String(argv.out));
  if (existsSync(out) && !statSync(out).isDirectory()) throw new InputError(`--out ${String(argv.out)} is a file`, 'give a folder for the SAE (created if missing)');
  checkOutputFolder(out);
  const textFile = resolve(cwd, String(argv['text-file']));
  if (!existsSync(textFile) || !statSync(textFile).isFile()) throw new NotFoundError(`text file ${String(argv['text-file'])} does not exist`, 'give a text file with one training sequence per line');
  return {
    submodule: String(argv.submodule),
    textFile,
    out,
    dictSize: numberFlag(argv, 'dict-size', int(1), 'an integer ≥ 1')!,
    l1: numberFlag(argv, 'l1', (n) => n >= 0, 'a number ≥ 0')!,
    steps: numberFlag(argv, 'steps', int(1), 'an integer ≥ 1') ?? 2000,
    lr: numberFlag(argv, 'lr', (n) => n > 0, 'a number > 0') ?? 2e-3,
    batchSize: numberFlag(argv, 'batch-size', int(1), 'an integer ≥ 1') ?? 256,
    seed: numberFlag(argv, 'seed', int(0), 'an integer ≥ 0') ?? 0,
    maxTokens: numberFlag(argv, 'max-tokens', int(2), 'an integer ≥ 2') ?? 131072,
    contextSize: numberFlag(argv, 'context-size', int(1), 'an integer ≥ 1'),
    resampleEvery: numberFlag(argv, 'resample-every', int(0), 'an integer ≥ 0 (0 = never)') ?? 500,
    evalFraction: numberFlag(argv, 'eval-fraction', (n) => n >= 0 && n < 1, 'a number in [0, 1)') ?? 0.05,
  };
}

/** Seeded split of lines into training and held-out sets (at least one line each when there are two). */
function splitLines(lines: string[], fraction: number, seed: number): { train: string[]; held: string[] } {
  const nHeld = lines.length < 2 || fraction === 0 ? 0 : Math.min(lines.length - 1, Math.max(1, Math.round(fraction * lines.length)));
  const rng = new PythonRandom(seed + 1);
  const idx = lines.map((_, i) => i);
  for (let k = idx.length - 1; k > 0; k--) { const r = rng.randbelow(k + 1); const t = idx[k]!; idx[k] = idx[r]!; idx[r] = t; }
  const heldSet = new Set(idx.slice(0, nHeld));
  return { train: lines.filter((_, i) => !heldSet.has(i)), held: lines.filter((_, i) => heldSet.has(i)) };
}

export const trainSaeCommand: SfcCommand = {
  command: 'train-sae',
  describe: 'Train a ReLU SAE on one submodule over a text file and save it in SAELens format',
  options: ['model', 'backend', 'json'],
  builder: (y) => y
    .option('submodule', { type: 'string', requiresArg: true, demandOption: true, describe: 'Submodule: embed, attn_L, mlp_L, resid_L (or a TransformerLens hook name)' })
    .option('text-file', { type: 'string', requiresArg: true, demandOption: true, describe: 'Training text, one sequence per line (no special tokens added)' })
    .option('dict-size', { requiresArg: true, demandOption: true, describe: 'Number of SAE features (integer ≥ 1; 4–32 × the model width is usual)' })
    .option('l1', { requiresArg: true, demandOption: true, describe: 'Sparsity coefficient λ of Σ f·‖W_dec‖ (inputs scaled to E‖x‖² = width; ~1–5)' })
    .option('steps', { requiresArg: true, describe: 'Optimizer steps (integer ≥ 1)', defaultDescription: '2000' })
    .option('lr', { requiresArg: true, describe: 'Peak Adam learning rate', defaultDescription: '0.002' })
    .option('batch-size', { requiresArg: true, describe: 'Token activations per step', defaultDescription: '256' })
    .option('seed', { requiresArg: true, describe: 'Seed for initialisation, line order and batches', defaultDescription: '0' })
    .option('max-tokens', { requiresArg: true, describe: 'Keep at most this many training tokens in memory', defaultDescription: '131072' })
    .option('context-size', { requiresArg: true, describe: 'Truncate each line to this many tokens', defaultDescription: 'the model\'s positions' })
    .option('resample-every', { requiresArg: true, describe: 'Resample dead features every N steps (0 = never)', defaultDescription: '500' })
    .option('eval-fraction', { requiresArg: true, describe: 'Fraction of lines held out to measure FVE, L0 and dead features', defaultDescription: '0.05' })
    .option('out', { type: 'string', requiresArg: true, demandOption: true, describe: 'Output folder (created with its parents; files written atomically)' }),
  examples: [
    ['$0 train-sae --model embedded/agreement/model --submodule resid_1 --text-file embedded/agreement/data/corpus.txt --dict-size 256 --l1 1.5 --out saes/resid_1',
      'An SAE for the embedded model\'s layer-1 residual stream'],
    ['$0 train-sae --model pythia-70m --submodule blocks.3.hook_mlp_out --text-file wiki.txt --dict-size 4096 --l1 3 --steps 20000 --out saes/mlp_3', 'Any supported model and hook'],
  ],
  run: async (argv, io) => {
    const st = settings(argv, io.cwd);
    await Session.with(io, argv, ['model', 'backend'], async (s) => {
      const t0 = performance.now();
      const model = await s.model([st.submodule]);
      const sub = model.submodule(st.submodule);
      const lines = textLines(await readFile(st.textFile, 'utf8'));
      if (lines.length === 0) throw new InputError(`${basename(st.textFile)} has no non-empty lines`, 'give a text file with one training sequence per line');
      const { train, held } = splitLines(lines, st.evalFraction, st.seed);
      const progress = s.progress();
      let result;
      try {
        const collect = (ls: string[], stage: string, maxTokens?: number) => collectActivations(model, ls, {
          submodules: [sub.name], seed: st.seed, source: basename(st.textFile),
          ...(maxTokens !== undefined ? { maxTokens } : {}), ...(st.contextSize !== undefined ? { contextSize: st.contextSize } : {}),
          onProgress: (done, total) => progress.onProgress({ stage, done, total }),
        });
        const acts = await collect(train, 'activations', st.maxTokens);
        const heldActs = held.length ? await collect(held, 'held-out activations', Math.max(2048, Math.round(st.maxTokens * st.evalFraction))) : acts;
        s.status(`${sub.name} (${sub.hook}): ${acts.tokens} training tokens from ${acts.sequences} lines, `
          + `${held.length ? `${heldActs.tokens} held-out tokens` : 'quality measured on the training tokens'}`);
        const trained = await trainReluSae(model.ops, acts.sets.get(sub.name)!, {
          dictSize: st.dictSize, l1: st.l1, steps: st.steps, lr: st.lr, batchSize: st.batchSize, seed: st.seed,
          ...(st.resampleEvery > 0 ? { resample: { every: st.resampleEvery } } : {}),
          logEvery: Math.max(1, Math.min(50, Math.floor(st.steps / 20))),
          onProgress: (p) => progress.onProgress({ stage: 'training', done: p.step, total: p.steps, detail: `FVE ${p.fve.toFixed(3)}, L0 ${p.l0.toFixed(1)}, dead ${p.dead}` }),
        });
        const dict = new ReluDictionary(model.ops, { ...trained.weights, applyBDecToInput: true });
        const { frequency: _f, ...quality } = await measureSae(model.ops, dict, heldActs.sets.get(sub.name)!);
        dict.dispose();
        const record = {
          schema: TRAIN_SAE_SCHEMA, submodule: sub.name, hook: sub.hook, model: model.dir, textFile: st.textFile,
          dIn: sub.width ?? model.spec.dims.dModel, dSae: st.dictSize,
          settings: { l1: st.l1, steps: st.steps, lr: st.lr, batchSize: st.batchSize, seed: st.seed, maxTokens: st.maxTokens, resampleEvery: st.resampleEvery },
          recipe: 'Anthropic April 2024 update (dictionary_learning StandardTrainerAprilUpdate)',
          trainingTokens: acts.tokens, heldOutTokens: held.length ? heldActs.tokens : 0,
          fve: quality.fve, l0: quality.l0, dead: quality.dead, mse: quality.mse,
          inputScale: trained.inputScale, resampled: trained.resampled,
          seconds: (performance.now() - t0) / 1000,
        };
        await writeSaeLensFolder(st.out, trained.weights, {
          hookName: sub.hook, modelName: basename(model.dir), contextSize: st.contextSize ?? model.spec.dims.maxPositions, datasetPath: st.textFile,
        }, { ...record, history: trained.history });
        result = record;
      } finally {
        progress.finish();
      }
      s.status(`wrote ${String(argv.out)}: SAELens standard SAE, d_in ${result.dIn}, d_sae ${result.dSae}; `
        + `${result.heldOutTokens ? 'held-out' : 'training'} FVE ${result.fve.toFixed(4)}, L0 ${result.l0.toFixed(2)}, `
        + `dead ${result.dead}/${result.dSae} (${result.seconds.toFixed(1)} s)`);
      if (argv.json) io.stdout.write(`${JSON.stringify({ ...result, out: st.out })}\n`);
    });
  },
};
