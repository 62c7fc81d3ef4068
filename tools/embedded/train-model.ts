// Trains the embedded agreement model (a small GPT-NeoX) on the generated corpus with
// TensorFlow.js and saves it as a Hugging Face folder, plus training.json: the run's settings,
// loss curve, agreement accuracy measured by the training graph, and reference logits that
// eval-model.ts compares with sfc's own loader.
//
//   nice -n 10 npx tsx --conditions=@sfc/source tools/embedded/train-model.ts [--seed 1] [--steps 3000]

import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { encodeSafetensors, tokenizerFromJson } from '@sfc/core';
import { scoreAgreement, type AgreementScore } from './agreement.js';
import { TEMPLATES, vocabulary, type Example } from './grammar.js';
import { parseArgs, readJsonLines, sha256, writeAtomic, writeJson } from './io.js';
import { forward, hfConfig, initParams, nextTokenLoss, paramShapes, toHfTensors, type NeoxConfig, type Params } from './neox-tf.js';
import { DATA_DIR, datasetFile, MODEL_DIR, REPO_ROOT } from './paths.js';
import { Rng } from './rng.js';
import { EOS_ID, PAD_ID, tokenizerConfigJson, tokenizerJson } from './tokenizer-json.js';

const args = parseArgs(process.argv.slice(2), {
  seed: 1, data: DATA_DIR, out: MODEL_DIR, backend: 'wasm',
  steps: 3000, batch: 64, lr: 3e-3, 'min-lr-ratio': 0.1, warmup: 100, 'weight-decay': 0.01, clip: 1,
  'd-model': 64, layers: 3, heads: 4, 'd-mlp': 256, 'rotary-pct': 0.5, 'max-positions': 64,
  'eval-every': 500, 'reference-examples': 4,
});
const dataDir = resolve(String(args.data));
const outDir = resolve(String(args.out));
const seed = Number(args.seed);

tf.env().set('PROD', true);
await tf.setBackend(String(args.backend));
await tf.ready();

// ---------------------------------------------------------------- tokenizer and corpus
const words = vocabulary();
const tokJson = tokenizerJson(words);
const tokCfg = tokenizerConfigJson(Number(args['max-positions']));
const tokenizer = tokenizerFromJson(tokJson, tokCfg);
const readLines = (f: string) => readFileSync(join(dataDir, f), 'utf8').split('\n').filter((l) => l.trim() !== '');
const encodeAll = (lines: string[]) => lines.map((l) => [...tokenizer.encode(l), EOS_ID]);
const train = encodeAll(readLines('corpus.txt'));
const valid = encodeAll(readLines('corpus-valid.txt'));
const maxLen = Math.max(...train.map((s) => s.length), ...valid.map((s) => s.length));
if (maxLen > Number(args['max-positions'])) throw new Error(`a corpus sentence has ${maxLen} tokens, more than --max-positions`);

const cfg: NeoxConfig = {
  vocabSize: tokenizer.vocabSize, dModel: Number(args['d-model']), nLayers: Number(args.layers), nHeads: Number(args.heads),
  dMlp: Number(args['d-mlp']), rotaryPct: Number(args['rotary-pct']), rotaryBase: 10000,
  maxPositions: Number(args['max-positions']), layerNormEps: 1e-5,
};
const nParams = paramShapes(cfg).reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
console.log(`backend ${tf.getBackend()}; vocabulary ${cfg.vocabSize}; ${train.length} training sentences (≤ ${maxLen} tokens); ${nParams} parameters`);

/** Inputs, targets and loss weights [B, T−1] for a batch of token sequences (padded at the end). */
function batchTensors(seqs: number[][]) {
  const T = Math.max(...seqs.map((s) => s.length)) - 1;
  const inp = new Int32Array(seqs.length * T).fill(PAD_ID), tgt = new Int32Array(seqs.length * T).fill(PAD_ID);
  const w = new Float32Array(seqs.length * T);
  seqs.forEach((s, b) => {
    for (let t = 0; t < s.length - 1; t++) { inp[b * T + t] = s[t]!; tgt[b * T + t] = s[t + 1]!; w[b * T + t] = 1; }
  });
  const shape: [number, number] = [seqs.length, T];
  return { inputs: tf.tensor2d(inp, shape, 'int32'), targets: tf.tensor2d(tgt, shape, 'int32'), weights: tf.tensor2d(w, shape) };
}

function meanLoss(P: Params, seqs: number[][]): number {
  let total = 0, count = 0;
  for (let s = 0; s < seqs.length; s += 256) {
    const part = seqs.slice(s, s + 256);
    const n = part.reduce((a, x) => a + x.length - 1, 0);
    total += tf.tidy(() => {
      const { inputs, targets, weights } = batchTensors(part);
      return nextTokenLoss(cfg, P, inputs, targets, weights).dataSync()[0]!;
    }) * n;
    count += n;
  }
  return total / count;
}

/** Last-position logits of equal-length prompts, from the training graph. */
async function lastLogits(P: Params, prompts: string[]): Promise<Float32Array[]> {
  const ids = prompts.map((p) => tokenizer.encode(p));
  const T = ids[0]!.length;
  const flat = tf.tidy(() => {
    const x = tf.tensor2d(Int32Array.from(ids.flat()), [ids.length, T], 'int32');
    return tf.slice(forward(cfg, P, x), [0, T - 1, 0], [ids.length, 1, cfg.vocabSize]);
  });
  const data = await flat.data() as Float32Array;
  flat.dispose();
  return ids.map((_, i) => data.slice(i * cfg.vocabSize, (i + 1) * cfg.vocabSize));
}

const answerId = (a: string) => {
  const ids = tokenizer.encode(a);
  if (ids.length !== 1) throw new Error(`answer ${JSON.stringify(a)} is not one token`);
  return ids[0]!;
};
const datasets = Object.fromEntries(TEMPLATES.flatMap((t) => (['train', 'test'] as const).map((s) =>
  [`${t}_${s}`, readJsonLines<Example>(join(dataDir, datasetFile(t, s)))])));
async function accuracies(P: Params, split: 'train' | 'test'): Promise<Record<string, AgreementScore>> {
  const out: Record<string, AgreementScore> = {};
  for (const t of TEMPLATES) out[t] = await scoreAgreement(datasets[`${t}_${split}`]!, (p) => lastLogits(P, p), answerId);
  return out;
}
const fmt = (r: Record<string, AgreementScore>) => TEMPLATES.map((t) => `${t} ${(100 * r[t]!.accuracy).toFixed(1)}%`).join(', ');

// ---------------------------------------------------------------- training
const rng = new Rng(seed);
const P = initParams(cfg, rng.fork());
const names = [...P.keys()];
const opt = new Map(names.map((n) => [n, { m: tf.variable(tf.zerosLike(P.get(n)!), false), v: tf.variable(tf.zerosLike(P.get(n)!), false) }]));
const decays = new Set(names.filter((n) => /\.w$|embed\.tok$/.test(n) && !/ln\d?\.w$|final_ln\.w$/.test(n)));
const [b1, b2, eps] = [0.9, 0.98, 1e-8];
const steps = Number(args.steps), batch = Number(args.batch), warmup = Number(args.warmup);
const lrAt = (step: number) => {
  const peak = Number(args.lr), floor = peak * Number(args['min-lr-ratio']);
  if (step < warmup) return (peak * (step + 1)) / warmup;
  return floor + 0.5 * (peak - floor) * (1 + Math.cos((Math.PI * (step - warmup)) / Math.max(1, steps - warmup)));
};

const order: number[] = [];
const shuffler = rng.fork();
const nextBatch = (): number[][] => {
  if (order.length < batch) order.push(...shuffler.shuffle(train.map((_, i) => i)));
  return order.splice(0, batch).map((i) => train[i]!);
};

const curve: { step: number; trainLoss: number; validLoss?: number; lr: number }[] = [];
const evals: { step: number; validLoss: number; train: Record<string, number> }[] = [];
const t0 = performance.now();
let running = 0, runningN = 0;
for (let step = 0; step < steps; step++) {
  const lr = lrAt(step);
  const seqs = nextBatch();
  const lossT = tf.tidy(() => {
    const { inputs, targets, weights } = batchTensors(seqs);
    const vars = names.map((n) => P.get(n)!);
    const { value, grads } = tf.variableGrads(() => nextTokenLoss(cfg, P, inputs, targets, weights), vars);
    const gsq = tf.addN(names.map((n) => tf.sum(tf.square(grads[n]!))));
    const scale = tf.minimum(1, tf.div(Number(args.clip), tf.add(tf.sqrt(gsq), 1e-6)));
    const c1 = 1 - Math.pow(b1, step + 1), c2 = 1 - Math.pow(b2, step + 1);
    for (const n of names) {
      const p = P.get(n)!, s = opt.get(n)!;
      const g = tf.mul(grads[n]!, scale);
      s.m.assign(tf.add(tf.mul(s.m, b1), tf.mul(g, 1 - b1)));
      s.v.assign(tf.add(tf.mul(s.v, b2), tf.mul(tf.square(g), 1 - b2)));
      let upd = tf.div(tf.div(s.m, c1), tf.add(tf.sqrt(tf.div(s.v, c2)), eps));
      if (decays.has(n)) upd = tf.add(upd, tf.mul(p, Number(args['weight-decay'])));
      p.assign(tf.sub(p, tf.mul(upd, lr)));
    }
    return value;
  });
  const loss = (await lossT.data())[0]!;
  lossT.dispose();
  if (!Number.isFinite(loss)) throw new Error(`loss is ${loss} at step ${step}`);
  running += loss; runningN++;
  if ((step + 1) % 100 === 0 || step === steps - 1) {
    curve.push({ step: step + 1, trainLoss: running / runningN, lr });
    const secs = (performance.now() - t0) / 1000;
    console.log(`step ${step + 1}/${steps}  loss ${(running / runningN).toFixed(4)}  lr ${lr.toExponential(2)}  ${secs.toFixed(0)} s`);
    running = 0; runningN = 0;
  }
  if ((step + 1) % Number(args['eval-every']) === 0 || step === steps - 1) {
    const validLoss = meanLoss(P, valid);
    const acc = await accuracies(P, 'train');
    curve[curve.length - 1]!.validLoss = validLoss;
    evals.push({ step: step + 1, validLoss, train: Object.fromEntries(TEMPLATES.map((t) => [t, acc[t]!.accuracy])) });
    console.log(`  valid loss ${validLoss.toFixed(4)}; agreement on train splits: ${fmt(acc)}`);
  }
}
const trainSeconds = (performance.now() - t0) / 1000;

// ---------------------------------------------------------------- results and export
const trainAcc = await accuracies(P, 'train');
const testAcc = await accuracies(P, 'test');
console.log(`trained in ${trainSeconds.toFixed(0)} s; agreement on test splits: ${fmt(testAcc)}`);
const reference: Record<string, { prompts: string[]; lastLogits: number[][] }> = {};
for (const t of TEMPLATES) {
  const prompts = datasets[`${t}_test`]!.slice(0, Number(args['reference-examples'])).map((e) => e.clean_prefix);
  reference[t] = { prompts, lastLogits: (await lastLogits(P, prompts)).map((r) => Array.from(r)) };
}
const tensors = await toHfTensors(cfg, P);
writeJson(join(outDir, 'config.json'), hfConfig(cfg));
writeAtomic(join(outDir, 'model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
writeJson(join(outDir, 'tokenizer.json'), tokJson);
writeJson(join(outDir, 'tokenizer_config.json'), tokCfg);
writeJson(join(outDir, 'training.json'), {
  schema: 'sfc.embedded-training/v1',
  script: 'tools/embedded/train-model.ts',
  seed,
  // Paths relative to the repo, so the record does not depend on where it was made.
  options: { ...args, data: relative(REPO_ROOT, dataDir), out: relative(REPO_ROOT, outDir) },
  config: cfg,
  parameters: nParams,
  backend: tf.getBackend(),
  corpus: { file: relative(REPO_ROOT, join(dataDir, 'corpus.txt')), sha256: sha256(join(dataDir, 'corpus.txt')), sentences: train.length, maxTokens: maxLen },
  trainSeconds: Math.round(trainSeconds),
  finalValidLoss: meanLoss(P, valid),
  curve,
  evals,
  agreement: { train: trainAcc, test: testAcc },
  reference,
});
console.log(`saved ${outDir}`);
