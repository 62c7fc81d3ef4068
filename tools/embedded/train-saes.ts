// Trains one ReLU SAE per submodule of the embedded agreement model (embed, attn/mlp/resid × 3
// layers) on the model's own training corpus, with @sfc/dictionaries' trainer on the tfjs
// backend, and writes them to embedded/agreement/saes/<submodule>/ in SAELens format. Then
// loads the folder back through the dictionary loaders and reports, per submodule, fraction of
// variance explained, L0 and dead features on the held-out corpus, and the agreement metric
// (mean logit difference correct − wrong verb over the test splits) kept when every SAE is
// spliced in at once (each submodule output replaced by its reconstruction, errors dropped).
//
//   nice -n 10 npx tsx --conditions=@sfc/source tools/embedded/train-saes.ts [--only resid_1,mlp_2]
//
// Writes <out>/<submodule>/{cfg.json, sae_weights.safetensors, training.json} and, for a full run,
// <out>/quality.json with the tables printed at the end.

import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { Model, type Dictionary, type Edit } from '@sfc/core';
import { tfjsBackend } from '@sfc/backend-tfjs';
import {
  collectActivations, loadDictionarySet, measureSae, ReluDictionary, spliceEdits, textLines, trainReluSae, writeSaeLensFolder,
  type SaeQuality,
} from '@sfc/dictionaries';
import { scoreAgreement } from './agreement.js';
import { TEMPLATES, type Example } from './grammar.js';
import { parseArgs, readJsonLines, writeJson } from './io.js';
import { DATA_DIR, datasetFile, EMBEDDED_DIR, MODEL_DIR, REPO_ROOT } from './paths.js';

const args = parseArgs(process.argv.slice(2), {
  model: MODEL_DIR, data: DATA_DIR, out: join(EMBEDDED_DIR, 'saes'), flavor: 'wasm', only: '',
  'dict-size': 64, l1: 0.5, steps: 2000, 'batch-size': 256, lr: 2e-3, seed: 1,
  'max-tokens': 131072, 'resample-every': 500, 'min-fve': 0.9, 'min-recovered': 0.9,
});
const modelDir = resolve(String(args.model));
const dataDir = resolve(String(args.data));
const outDir = resolve(String(args.out));
const t0 = performance.now();
const log = (m: string) => process.stderr.write(`${m}\n`);

const backend = await tfjsBackend({ flavor: String(args.flavor) as 'wasm' });
const model = await Model.load(modelDir, backend, { warn: log });
const ops = model.ops;
const all = model.submodules.map((s) => s.name);
const only = String(args.only) ? String(args.only).split(',').map((s) => model.submodule(s.trim()).name) : all;

log(`collecting activations of ${only.length} submodules over corpus.txt (at most ${args['max-tokens']} tokens) …`);
const corpusPath = join(dataDir, 'corpus.txt');
const train = await collectActivations(model, textLines(readFileSync(corpusPath, 'utf8')), {
  submodules: only, maxTokens: Number(args['max-tokens']), seed: Number(args.seed), batchSize: 256,
});
const valid = await collectActivations(model, textLines(readFileSync(join(dataDir, 'corpus-valid.txt'), 'utf8')), {
  submodules: only, seed: null, batchSize: 256,
});
log(`  ${train.tokens} training tokens (${train.sequences} sentences), ${valid.tokens} held-out tokens (${valid.sequences} sentences), ${((performance.now() - t0) / 1000).toFixed(1)} s`);

interface Row { submodule: string; dSae: number; quality: Omit<SaeQuality, 'frequency'>; seconds: number; resampled: number }
const rows: Row[] = [];
for (const name of only) {
  const sub = model.submodule(name);
  const dictSize = Number(args['dict-size']);
  const settings = {
    dictSize, l1: Number(args.l1), steps: Number(args.steps), batchSize: Number(args['batch-size']), lr: Number(args.lr),
    seed: Number(args.seed) + sub.order, ...(Number(args['resample-every']) > 0 ? { resample: { every: Number(args['resample-every']) } } : {}),
  };
  const trained = await trainReluSae(ops, train.sets.get(name)!, {
    ...settings,
    logEvery: 250,
    onProgress: (p) => log(`  ${name} step ${p.step}/${p.steps}: batch FVE ${p.fve.toFixed(3)}, L0 ${p.l0.toFixed(1)}, dead ${p.dead}`),
  });
  const dict = new ReluDictionary(ops, { ...trained.weights, applyBDecToInput: true });
  const { frequency, ...quality } = await measureSae(ops, dict, valid.sets.get(name)!);
  dict.dispose();
  await writeSaeLensFolder(join(outDir, name), trained.weights, {
    hookName: sub.hook, modelName: relative(REPO_ROOT, modelDir), contextSize: model.spec.dims.maxPositions,
    datasetPath: relative(REPO_ROOT, corpusPath),
  }, {
    schema: 'sfc.sae-training/v1',
    recipe: 'Anthropic April 2024 update (dictionary_learning StandardTrainerAprilUpdate), b_dec initialised at the data mean, dead-feature resampling',
    submodule: name, hook: sub.hook, settings, trainingTokens: train.tokens, inputScale: trained.inputScale,
    resampled: trained.resampled, seconds: trained.seconds,
    heldOut: { tokens: valid.tokens, ...quality, frequencyQuantiles: quantiles(frequency) },
    history: trained.history,
  });
  rows.push({ submodule: name, dSae: dictSize, quality, seconds: trained.seconds, resampled: trained.resampled });
  log(`${name}: FVE ${quality.fve.toFixed(4)}, L0 ${quality.l0.toFixed(2)}, dead ${quality.dead}/${dictSize}, ${trained.seconds.toFixed(1)} s`);
}

function quantiles(f: Float64Array): Record<string, number> {
  const s = [...f].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { min: s[0]!, p10: q(0.1), median: q(0.5), p90: q(0.9), max: s[s.length - 1]! };
}

// Load the written folder back through the loaders sfc uses everywhere, then splice.
const dicts = await loadDictionarySet(outDir, model.submodules, { ops, dIn: model.spec.dims.dModel, missing: 'skip', warn: log });
const answerId = (a: string): number => {
  const ids = model.encode(a);
  if (ids.length !== 1) throw new Error(`answer ${JSON.stringify(a)} is not one token`);
  return ids[0]!;
};
const lastLogitsWith = (edits: ReadonlyMap<string, Edit>) => async (prompts: string[]): Promise<Float32Array[]> => {
  const { ids, batch, seq } = model.encodeBatch(prompts);
  const logits = await ops.scope(async () => (await model.forward(model.tokens(ids, batch, seq), { edits, logits: { lastOnly: true } })).logits!);
  const data = await logits.data() as Float32Array;
  logits.dispose();
  const V = data.length / batch;
  return prompts.map((_, i) => data.slice(i * V, (i + 1) * V));
};
const splice = (subset: ReadonlyMap<string, Dictionary>) => spliceEdits(subset);

const metric: Record<string, { clean: number; spliced: number; recovered: number; splicedAccuracy: number }> = {};
let cleanSum = 0, splicedSum = 0, n = 0;
for (const t of TEMPLATES) {
  const exs = readJsonLines<Example>(join(dataDir, datasetFile(t, 'test')));
  const clean = await scoreAgreement(exs, lastLogitsWith(new Map()), answerId);
  const spliced = await scoreAgreement(exs, lastLogitsWith(splice(dicts)), answerId);
  metric[t] = { clean: clean.meanMargin, spliced: spliced.meanMargin, recovered: spliced.meanMargin / clean.meanMargin, splicedAccuracy: spliced.accuracy };
  cleanSum += clean.meanMargin * exs.length;
  splicedSum += spliced.meanMargin * exs.length;
  n += exs.length;
}
// Each SAE alone, on rc (the demo's template): which sites cost the most.
const rcTest = readJsonLines<Example>(join(dataDir, datasetFile('rc', 'test')));
const rcClean = metric.rc!.clean;
const single: Record<string, number> = {};
for (const [name, d] of dicts) {
  single[name] = (await scoreAgreement(rcTest, lastLogitsWith(splice(new Map([[name, d]]))), answerId)).meanMargin / rcClean;
}
for (const d of dicts.values()) d.dispose();
const recovered = splicedSum / cleanSum;
const seconds = (performance.now() - t0) / 1000;

console.log(`SAEs in ${relative(REPO_ROOT, outDir)} (${dicts.size} loaded back through loadDictionarySet), ${seconds.toFixed(0)} s on ${backend.name}\n`);
console.log('| submodule | d_sae | FVE | L0 | dead | rc metric kept (this SAE alone) | train s |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  console.log(`| ${r.submodule} | ${r.dSae} | ${r.quality.fve.toFixed(3)} | ${r.quality.l0.toFixed(1)} | ${r.quality.dead} | ${single[r.submodule] !== undefined ? `${(100 * single[r.submodule]!).toFixed(1)}%` : '–'} | ${r.seconds.toFixed(0)} |`);
}
console.log('\n| template | clean metric | all SAEs spliced | kept | spliced accuracy |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const t of TEMPLATES) {
  const m = metric[t]!;
  console.log(`| ${t} | ${m.clean.toFixed(2)} | ${m.spliced.toFixed(2)} | ${(100 * m.recovered).toFixed(1)}% | ${(100 * m.splicedAccuracy).toFixed(1)}% |`);
}
console.log(`| all | ${(cleanSum / n).toFixed(2)} | ${(splicedSum / n).toFixed(2)} | ${(100 * recovered).toFixed(1)}% | |`);

if (only.length === all.length) {
  // The quality table as data, next to the SAEs (loaders ignore files in the folder).
  writeJson(join(outDir, 'quality.json'), {
    schema: 'sfc.embedded-saes/v1', backend: backend.name, trainingTokens: train.tokens, heldOutTokens: valid.tokens,
    submodules: rows, metric, singleSpliceRc: single, recovered, seconds,
  });
}
model.dispose();
await backend.dispose();

const failures = [
  ...rows.filter((r) => r.quality.fve < Number(args['min-fve'])).map((r) => `${r.submodule}: FVE ${r.quality.fve.toFixed(4)} < ${args['min-fve']}`),
  ...(only.length === all.length && recovered < Number(args['min-recovered']) ? [`metric recovered ${(100 * recovered).toFixed(1)}% < ${100 * Number(args['min-recovered'])}%`] : []),
];
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
