// Loads the saved embedded model through sfc itself (@sfc/core Model.load + @sfc/backend-tfjs),
// checks that it reproduces the logits recorded by the training graph (training.json), and
// reports agreement accuracy per template and split. Exits non-zero when a test split is
// below --min-accuracy or the logits differ by more than --tolerance.
//
//   npx tsx --conditions=@sfc/source tools/embedded/eval-model.ts [--model embedded/agreement/model] [--json out.json]

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Model } from '@sfc/core';
import { tfjsBackend } from '@sfc/backend-tfjs';
import { scoreAgreement, type AgreementScore } from './agreement.js';
import { TEMPLATES, type Example } from './grammar.js';
import { parseArgs, readJsonLines, writeJson } from './io.js';
import { DATA_DIR, datasetFile, MODEL_DIR } from './paths.js';

const args = parseArgs(process.argv.slice(2), {
  model: MODEL_DIR, data: DATA_DIR, flavor: 'wasm', json: '', 'min-accuracy': 0.95, tolerance: 1e-3,
});
const modelDir = resolve(String(args.model));
const dataDir = resolve(String(args.data));

const t0 = performance.now();
const backend = await tfjsBackend({ flavor: String(args.flavor) as 'wasm' });
const model = await Model.load(modelDir, backend, { warn: (m) => console.warn(m) });
const loadSeconds = (performance.now() - t0) / 1000;

/** Last-position logits through sfc's forward, one row per prompt. */
async function lastLogits(prompts: string[]): Promise<Float32Array[]> {
  const { ids, batch, seq } = model.encodeBatch(prompts);
  const logits = await model.ops.scope(async () => {
    const r = await model.forward(model.tokens(ids, batch, seq), { logits: { lastOnly: true } });
    return r.logits!;
  });
  const data = await logits.data() as Float32Array;
  const shape = logits.shape;
  logits.dispose();
  const V = shape[shape.length - 1]!;
  const stride = data.length / batch; // [batch, V] or [batch, 1, V]
  return prompts.map((_, i) => data.slice(i * stride + stride - V, (i + 1) * stride));
}

const answerId = (a: string): number => {
  const ids = model.encode(a);
  if (ids.length !== 1) throw new Error(`answer ${JSON.stringify(a)} is not one token`);
  return ids[0]!;
};

// Reference logits from the training graph.
const training = JSON.parse(readFileSync(join(modelDir, 'training.json'), 'utf8')) as {
  reference: Record<string, { prompts: string[]; lastLogits: number[][] }>;
};
let maxDiff = 0, maxAbs = 0;
for (const ref of Object.values(training.reference)) {
  const rows = await lastLogits(ref.prompts);
  rows.forEach((r, i) => r.forEach((v, j) => {
    maxDiff = Math.max(maxDiff, Math.abs(v - ref.lastLogits[i]![j]!));
    maxAbs = Math.max(maxAbs, Math.abs(ref.lastLogits[i]![j]!));
  }));
}

const results: Record<string, Record<string, AgreementScore>> = { train: {}, test: {} };
for (const split of ['train', 'test'] as const) {
  for (const t of TEMPLATES) {
    const exs = readJsonLines<Example>(join(dataDir, datasetFile(t, split)));
    results[split]![t] = await scoreAgreement(exs, lastLogits, answerId);
  }
}
const seconds = (performance.now() - t0) / 1000;

console.log(`model ${modelDir} on ${backend.name} (loaded in ${loadSeconds.toFixed(1)} s)`);
console.log(`logits vs training graph: max |diff| ${maxDiff.toExponential(2)} (logits up to ${maxAbs.toFixed(1)})\n`);
console.log('| template | split | examples | accuracy (clean+patch) | clean accuracy | mean margin | min margin |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
for (const t of TEMPLATES) for (const split of ['train', 'test'] as const) {
  const r = results[split]![t]!;
  console.log(`| ${t} | ${split} | ${r.examples} | ${(100 * r.accuracy).toFixed(2)}% | ${(100 * r.cleanAccuracy).toFixed(2)}% | ${r.meanMargin.toFixed(2)} | ${r.minMargin.toFixed(2)} |`);
}
console.log(`\n${seconds.toFixed(1)} s`);
if (args.json) {
  writeJson(resolve(String(args.json)), { schema: 'sfc.embedded-eval/v1', model: modelDir, backend: backend.name, logitsMaxDiff: maxDiff, results, seconds });
}
model.dispose();
await backend.dispose();

const failures = [
  ...TEMPLATES.filter((t) => results.test![t]!.accuracy < Number(args['min-accuracy']))
    .map((t) => `${t} test accuracy ${(100 * results.test![t]!.accuracy).toFixed(2)}% < ${100 * Number(args['min-accuracy'])}%`),
  ...(maxDiff > Number(args.tolerance) ? [`logits differ from the training graph by ${maxDiff} > ${args.tolerance}`] : []),
];
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
