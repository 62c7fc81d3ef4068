// Makes the benchmark workload of one scale (bench/cache/<scale>/, see workload.ts): a random
// GPT-NeoX model in Hugging Face format, agreement-like contrastive pairs with a WordLevel
// tokenizer, and one random ReLU SAE per submodule in SAELens format. The SAEs are calibrated
// on the model's own activations: b_dec is the activation mean and a shared encoder bias makes
// `activeFraction` of the features fire per token (L0 ≈ 164 of 32768 at pythia70m scale). The
// unembedding is then scaled so that attrib finds about `targetNodes` per-example nodes above
// the node threshold (effects are linear in the unembedding), which sets the edge workload.
//
// Every file goes through core's atomic writer (temp file, full write, fsync, rename), so an
// interrupted run never leaves a half-written file under its final name; the workload folder
// itself only appears once complete (workload.ts, finishWorkload).
//
//   npx tsx --conditions=@sfc/source bench/generate.ts --scale small     (bench/run.ts calls it when needed)

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  batchExamples, encodeSafetensors, loadExamples, logitDiff, Model, removePendingTempFiles, transpose as transposeHost, writeFileAtomic,
  type Tensor, type TensorOps,
} from '@sfc/core';
import { tfjsBackend } from '@sfc/backend-tfjs';
import { writeSaeLensFolder } from '@sfc/dictionaries';
import { Rng } from '../tools/embedded/rng.js';
import { tokenizerConfigJson, tokenizerJson } from '../tools/embedded/tokenizer-json.js';
import { GENERATOR_VERSION, NODE_THRESHOLD, scaleByName, SEQ_LEN, type Scale } from './scales.js';
import { finishWorkload, startWorkload, WORKLOAD_SCHEMA, type Stats, type TokensFile, type Workload, type WorkloadManifest } from './workload.js';
import { PAIRS, pairs, unitRows, WORDS } from './generate-data.js';
import { generateGemma2Workload } from './generate-gemma2.js';

const SEED = 2024;

// ---------------------------------------------------------------- model

function hfConfig(s: Scale): Record<string, unknown> {
  return {
    architectures: ['GPTNeoXForCausalLM'], model_type: 'gpt_neox',
    hidden_size: s.dModel, num_attention_heads: s.nHeads, num_hidden_layers: s.nLayers, intermediate_size: s.dMlp,
    rotary_pct: 0.25, rotary_emb_base: 10000, use_parallel_residual: true, layer_norm_eps: 1e-5, hidden_act: 'gelu',
    vocab_size: s.vocabSize, max_position_embeddings: 2048, tie_word_embeddings: false, attention_bias: true,
    bos_token_id: 0, eos_token_id: 0, torch_dtype: 'float32', transformers_version: '4.44.0',
  };
}

type HostWeights = Map<string, { shape: number[]; data: Float32Array }>;

/** Hugging Face parameter names and shapes; scales keep LayerNorm inputs, attention scores and logits near unit variance. */
function modelWeights(s: Scale, rng: Rng): HostWeights {
  const { dModel: d, dMlp: m, vocabSize: V } = s;
  const w: HostWeights = new Map();
  const normal = (name: string, shape: number[], std: number, mean = 0) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = mean + std * rng.normal();
    w.set(name, { shape, data });
  };
  const ln = (p: string) => { normal(`${p}.weight`, [d], 0.1, 1); normal(`${p}.bias`, [d], 0.05); };
  normal('gpt_neox.embed_in.weight', [V, d], 1);
  for (let l = 0; l < s.nLayers; l++) {
    const p = `gpt_neox.layers.${l}`;
    ln(`${p}.input_layernorm`);
    ln(`${p}.post_attention_layernorm`);
    normal(`${p}.attention.query_key_value.weight`, [3 * d, d], 1 / Math.sqrt(d));
    normal(`${p}.attention.query_key_value.bias`, [3 * d], 0.1);
    normal(`${p}.attention.dense.weight`, [d, d], 1 / Math.sqrt(d));
    normal(`${p}.attention.dense.bias`, [d], 0.05);
    normal(`${p}.mlp.dense_h_to_4h.weight`, [m, d], 1 / Math.sqrt(d));
    normal(`${p}.mlp.dense_h_to_4h.bias`, [m], 0.1);
    normal(`${p}.mlp.dense_4h_to_h.weight`, [d, m], 1 / Math.sqrt(m));
    normal(`${p}.mlp.dense_4h_to_h.bias`, [d], 0.05);
  }
  ln('gpt_neox.final_layer_norm');
  normal('embed_out.weight', [V, d], 1 / Math.sqrt(d));
  return w;
}

async function writeModel(dir: string, w: HostWeights, unembedScale: number): Promise<void> {
  const out = new Map(w);
  if (unembedScale !== 1) {
    const e = w.get('embed_out.weight')!;
    out.set('embed_out.weight', { shape: e.shape, data: e.data.map((v) => v * unembedScale) });
  }
  await writeFileAtomic(join(dir, 'model.safetensors'), encodeSafetensors(out, { format: 'pt' }));
}

// ---------------------------------------------------------------- SAEs

function stats(xs: ArrayLike<number>): Stats {
  let sum = 0, min = Infinity, max = -Infinity;
  for (let i = 0; i < xs.length; i++) { const v = xs[i]!; sum += v; min = Math.min(min, v); max = Math.max(max, v); }
  return { mean: sum / xs.length, min, max };
}

/** The value exceeded by a fraction `frac` of `xs` (xs is reordered). */
function upperQuantile(xs: Float32Array, frac: number): number {
  xs.sort();
  return xs[Math.min(xs.length - 1, Math.floor(xs.length * (1 - frac)))]!;
}

interface SaeCalibration {
  readonly l0: Float64Array;
  /** |per-example, per-position attrib effects| of this SAE's features and error, nonzero only. */
  readonly effects: Float32Array;
}

/**
 * One random tied ReLU SAE for the activations `xc`/`xp` [N, d] (clean, patch) and the clean
 * gradient `g` [N, d] of the metric: unit-norm random decoder rows, W_enc = W_decᵀ, b_dec = mean
 * activation, b_enc = −(the (1 − activeFraction) quantile of the pre-activations).
 */
async function makeSae(ops: TensorOps, s: Scale, rng: Rng, xc: Tensor, xp: Tensor, g: Tensor, dir: string, hook: string): Promise<SaeCalibration> {
  const { dModel: d, dSae: F } = s;
  const wDec = unitRows(F, d, () => rng.float() * 2 - 1);
  const wEnc = transposeHost(wDec, F, d);
  let out: SaeCalibration | undefined;
  await ops.scope(async () => {
    const x = ops.concat([xc, xp], 0);
    const N = xc.shape[0]!;
    const bDec = ops.mean(x, 0);
    const encT = ops.tensor(wEnc, [d, F]);
    const pre = ops.matMul(ops.sub(x, bDec), encT);
    const preData = (await pre.data()) as Float32Array;
    const thr = upperQuantile(Float32Array.from(preData), s.activeFraction);
    const l0 = new Float64Array(2 * N);
    for (let r = 0; r < 2 * N; r++) {
      let c = 0;
      for (let j = r * F; j < (r + 1) * F; j++) if (preData[j]! > thr) c++;
      l0[r] = c;
    }
    // attrib effects (docs/concepts.md, “Nodes, error nodes and effects”): act = (g·W_decᵀ) ⊙ Δf, err = Σ_d g ⊙ Δr.
    const f = ops.relu(ops.addScalar(pre, -thr));
    const dec = ops.tensor(wDec, [F, d]);
    const res = ops.sub(x, ops.add(ops.matMul(f, dec), bDec));
    const df = ops.sub(ops.slice(f, [N, 0], [N, F]), ops.slice(f, [0, 0], [N, F]));
    const dr = ops.sub(ops.slice(res, [N, 0], [N, d]), ops.slice(res, [0, 0], [N, d]));
    const act = (await ops.mul(ops.matMul(g, encT), df).data()) as Float32Array;
    const err = (await ops.sum(ops.mul(g, dr), 1).data()) as Float32Array;
    const effects: number[] = [];
    for (const v of act) if (v !== 0) effects.push(Math.abs(v));
    for (const v of err) effects.push(Math.abs(v));
    const bDecData = (await bDec.data()) as Float32Array;
    await writeSaeLensFolder(dir, {
      W_enc: { shape: [d, F], data: wEnc }, b_enc: { shape: [F], data: new Float32Array(F).fill(-thr) },
      W_dec: { shape: [F, d], data: wDec }, b_dec: { shape: [d], data: Float32Array.from(bDecData) },
    }, { hookName: hook, modelName: `sfc-bench-${s.name}`, contextSize: SEQ_LEN });
    out = { l0, effects: Float32Array.from(effects) };
  });
  return out!;
}

function folderBytes(dir: string, files: readonly string[]): number {
  return files.reduce((n, f) => n + statSync(join(dir, f)).size, 0);
}

// ---------------------------------------------------------------- the whole workload

export async function generateWorkload(scale: Scale, log: (line: string) => void = () => {}): Promise<Workload> {
  const t0 = performance.now();
  const { final, tmp, modelDir } = startWorkload(scale);
  const rng = new Rng(SEED);

  await writeFileAtomic(join(modelDir, 'config.json'), `${JSON.stringify(hfConfig(scale), null, 2)}\n`);
  await writeFileAtomic(join(modelDir, 'tokenizer.json'), JSON.stringify(tokenizerJson(WORDS)));
  await writeFileAtomic(join(modelDir, 'tokenizer_config.json'), `${JSON.stringify(tokenizerConfigJson(2048), null, 2)}\n`);
  await writeFileAtomic(join(tmp, 'data.jsonl'), pairs(PAIRS).map((p) => JSON.stringify(p)).join('\n') + '\n');
  log(`model: d ${scale.dModel}, ${scale.nLayers} layers, vocab ${scale.vocabSize}; drawing weights`);
  const weights = modelWeights(scale, rng.fork());
  const parameters = [...weights.values()].reduce((n, t) => n + t.data.length, 0);
  await writeModel(modelDir, weights, 1);

  const backend = await tfjsBackend({ flavor: 'wasm' });
  const ops = backend.ops;
  let calibration: WorkloadManifest['calibration'];
  const l0PerSubmodule: Record<string, Stats> = {};
  const allL0: number[] = [];
  let submodules: string[];
  try {
    const model = await Model.load(modelDir, backend);
    const sel = await loadExamples(join(tmp, 'data.jsonl'), model.tokenizer, { numExamples: PAIRS, seed: null, minLengthOnly: false });
    if (sel.examples.length !== PAIRS || sel.examples.some((e) => e.cleanIds.length !== SEQ_LEN)) {
      throw new Error(`generator: expected ${PAIRS} pairs of ${SEQ_LEN} tokens, got ${sel.examples.length} (${JSON.stringify(sel.skipped)})`);
    }
    const tokens: TokensFile = {
      clean: sel.examples.map((e) => [...e.cleanIds]), patch: sel.examples.map((e) => [...e.patchIds!]),
      clean_answer: sel.examples.map((e) => e.cleanAnswerId), patch_answer: sel.examples.map((e) => e.patchAnswerId!),
    };
    await writeFileAtomic(join(tmp, 'tokens.json'), `${JSON.stringify(tokens)}\n`);
    // Calibrate on the pairs a default run uses.
    const batch = batchExamples(sel.examples.slice(0, scale.examples), scale.examples)[0]!;
    submodules = model.submodules.map((s) => s.name);
    const effects: Float32Array[] = [];
    await ops.scope(async () => {
      const metric = logitDiff().bind(ops, batch);
      const selection = metric.selection();
      const clean = await model.forward(model.tokens(batch.clean, batch.size, batch.seq), { logits: selection });
      const patch = await model.forward(model.tokens(batch.patch!, batch.size, batch.seq), { logits: false });
      const grads = await model.backward(clean.values, { logits: metric.cotangent(clean.logits!) }, { targets: submodules, logits: selection });
      const N = batch.size * batch.seq;
      const flat = (t: Tensor) => ops.reshape(t, [N, scale.dModel]);
      for (const sub of model.submodules) {
        const t = performance.now();
        const cal = await makeSae(ops, scale, rng.fork(), flat(clean.values.get(sub.name)!), flat(patch.values.get(sub.name)!),
          flat(grads.get(sub.name)!), join(tmp, 'saes', sub.name), sub.hook);
        effects.push(cal.effects);
        l0PerSubmodule[sub.name] = stats(cal.l0);
        allL0.push(...cal.l0);
        log(`SAE ${sub.name}: L0 mean ${l0PerSubmodule[sub.name]!.mean.toFixed(0)} (min ${l0PerSubmodule[sub.name]!.min}, max ${l0PerSubmodule[sub.name]!.max}), ${((performance.now() - t) / 1000).toFixed(1)} s`);
      }
    });
    model.dispose();
    // Effects scale linearly with the unembedding: pick the scale that puts `targetNodes` above the threshold.
    const mags = new Float32Array(effects.reduce((n, e) => n + e.length, 0));
    let at = 0;
    for (const e of effects) { mags.set(e, at); at += e.length; }
    mags.sort();
    const k = Math.min(scale.targetNodes, mags.length);
    const cut = mags[mags.length - k]!;
    const unembedScale = NODE_THRESHOLD / cut;
    await writeModel(modelDir, weights, unembedScale);
    let attribNodes = 0;
    for (const v of mags) if (v * unembedScale > NODE_THRESHOLD) attribNodes++;
    calibration = { threshold: NODE_THRESHOLD, attribNodes, unembedScale, seconds: (performance.now() - t0) / 1000 };
    log(`unembedding scaled by ${unembedScale.toPrecision(4)}: attrib gives ${attribNodes} per-example nodes above ${NODE_THRESHOLD}`);
  } finally {
    await backend.dispose();
  }

  const saeFiles = ['sae_weights.safetensors', 'cfg.json'];
  const manifest: WorkloadManifest = {
    schema: WORKLOAD_SCHEMA, generatorVersion: GENERATOR_VERSION, scale, seed: SEED, created: new Date().toISOString(),
    model: { dir: 'model', parameters, bytes: folderBytes(modelDir, ['model.safetensors']) },
    saes: {
      dir: 'saes', submodules,
      bytes: submodules.reduce((n, s) => n + folderBytes(join(tmp, 'saes', s), saeFiles), 0),
      l0: stats(allL0), l0PerSubmodule,
    },
    data: { file: 'data.jsonl', tokens: 'tokens.json', pairs: PAIRS, seq: SEQ_LEN },
    calibration,
  };
  return finishWorkload(tmp, final, manifest);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { scale: { type: 'string', default: 'small' } } });
  const scale = scaleByName(values.scale!);
  const log = (l: string) => console.error(`[generate] ${l}`);
  // Interrupted: delete the unfinished temp files (their targets are untouched until the rename).
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.on(signal, () => { removePendingTempFiles(); process.exit(code); });
  }
  const w = scale.architecture === 'gemma2' ? await generateGemma2Workload(scale, log) : await generateWorkload(scale, log);
  console.log(JSON.stringify({ dir: w.dir }));
}
