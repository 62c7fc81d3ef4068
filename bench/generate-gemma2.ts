// Makes a Gemma-2 benchmark workload (bench/cache/<scale>/, see workload.ts): a random-weight
// Gemma-2 in Hugging Face format at the scale's shapes, bf16 on disk and sharded as
// transformers saves it, agreement-like pairs with a WordLevel tokenizer, and one Gemma-Scope-shaped
// JumpReLU SAE per resid_l in SAELens format (apply_b_dec_to_input false, as Gemma Scope).
// Nothing is held whole in memory: weights are drawn and written chunk by chunk.
//
// The SAEs are calibrated analytically, not on activations (a forward at this scale needs the
// model on a backend, which the generator avoids): embeddings have unit variance after Gemma's
// √d scale and each block adds two RMS-normalised outputs, so resid_l has per-coordinate variance
// ≈ 3 + 2l; with unit-norm random decoder rows and W_enc = W_decᵀ, a threshold of
// z·√(3 + 2l), z the (1 − activeFraction) normal quantile, makes ≈ activeFraction of features fire.
// The manifest says so (calibration.method 'analytic'); the L0 of a run is what the run measures.

import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeSafetensors, f32ToBf16, selectExamples, tokenizerFromJson, transpose } from '@sfc/core';
import { Rng } from '../tools/embedded/rng.js';
import { tokenizerConfigJson, tokenizerJson } from '../tools/embedded/tokenizer-json.js';
import { PAIRS, pairs, unitRows, WORDS } from './generate-data.js';
import { GENERATOR_VERSION, SEQ_LEN, type Scale } from './scales.js';
import { writeCheckpoint, type StreamTensor } from './safetensors-stream.js';
import { finishWorkload, startWorkload, WORKLOAD_SCHEMA, type TokensFile, type Workload, type WorkloadManifest } from './workload.js';

const SEED = 2026;
/** transformers' default max_shard_size (5 GB) would make one 5.2 GB shard; 2 GB shards exercise the index and files past 2 GiB alike. */
const SHARD_BYTES = 2 * 2 ** 30 + 2 ** 28;
const CHUNK = 1 << 22;

export function gemma2Config(s: Scale): Record<string, unknown> {
  return {
    architectures: ['Gemma2ForCausalLM'], model_type: 'gemma2',
    hidden_size: s.dModel, intermediate_size: s.dMlp, num_hidden_layers: s.nLayers, num_attention_heads: s.nHeads,
    num_key_value_heads: s.nKvHeads, head_dim: s.headDim, hidden_activation: 'gelu_pytorch_tanh', hidden_act: 'gelu_pytorch_tanh',
    max_position_embeddings: 8192, rms_norm_eps: 1e-6, rope_theta: 10000.0, attention_bias: false, attention_dropout: 0.0,
    query_pre_attn_scalar: s.headDim, sliding_window: 4096, final_logit_softcapping: 30.0, attn_logit_softcapping: 50.0,
    vocab_size: s.vocabSize, tie_word_embeddings: true, pad_token_id: 0, eos_token_id: 1, bos_token_id: 2,
    torch_dtype: 'bfloat16', transformers_version: '4.44.0',
  };
}

/** A bf16 tensor of normals (mean, std), drawn chunk by chunk. */
function normalBf16(name: string, shape: number[], std: number, rng: Rng, mean = 0): StreamTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    name, dtype: 'BF16', shape,
    fill(write) {
      const buf = new Float32Array(CHUNK);
      for (let at = 0; at < n; at += CHUNK) {
        const m = Math.min(CHUNK, n - at);
        for (let i = 0; i < m; i++) buf[i] = mean + std * rng.normal();
        const b = f32ToBf16(buf.subarray(0, m));
        write(new Uint8Array(b.buffer, 0, m * 2));
      }
    },
  };
}

/** Gemma-2's checkpoint tensors in save_pretrained's order (embedding tied, no lm_head). */
function gemma2Tensors(s: Scale, rng: Rng): StreamTensor[] {
  const { dModel: d, dMlp: m, vocabSize: V, nHeads: H } = s;
  const KV = s.nKvHeads!, hd = s.headDim!;
  const out: StreamTensor[] = [normalBf16('model.embed_tokens.weight', [V, d], 1 / Math.sqrt(d), rng.fork())];
  const norm = (name: string) => out.push(normalBf16(name, [d], 0.1, rng.fork())); // Gemma's RMSNorm scales by (1 + w)
  for (let l = 0; l < s.nLayers; l++) {
    const p = `model.layers.${l}`;
    norm(`${p}.input_layernorm.weight`);
    out.push(normalBf16(`${p}.self_attn.q_proj.weight`, [H * hd, d], 1 / Math.sqrt(d), rng.fork()));
    out.push(normalBf16(`${p}.self_attn.k_proj.weight`, [KV * hd, d], 1 / Math.sqrt(d), rng.fork()));
    out.push(normalBf16(`${p}.self_attn.v_proj.weight`, [KV * hd, d], 1 / Math.sqrt(d), rng.fork()));
    out.push(normalBf16(`${p}.self_attn.o_proj.weight`, [d, H * hd], 1 / Math.sqrt(H * hd), rng.fork()));
    norm(`${p}.post_attention_layernorm.weight`);
    norm(`${p}.pre_feedforward_layernorm.weight`);
    out.push(normalBf16(`${p}.mlp.gate_proj.weight`, [m, d], 1 / Math.sqrt(d), rng.fork()));
    out.push(normalBf16(`${p}.mlp.up_proj.weight`, [m, d], 1 / Math.sqrt(d), rng.fork()));
    out.push(normalBf16(`${p}.mlp.down_proj.weight`, [d, m], 1 / Math.sqrt(m), rng.fork()));
    norm(`${p}.post_feedforward_layernorm.weight`);
  }
  norm('model.norm.weight');
  return out;
}

/** Φ⁻¹(p) (Acklam's rational approximation, |error| < 1.2e-9): the threshold quantile. */
export function normalQuantile(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const dd = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) => (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((dd[0]! * q + dd[1]!) * q + dd[2]!) * q + dd[3]!) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5, r = q * q;
  return (((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/** One JumpReLU SAE for resid_l in SAELens format: unit-norm random decoder rows, W_enc = W_decᵀ, b_enc = b_dec = 0. */
function writeSae(dir: string, s: Scale, layer: number, rng: Rng): number {
  const { dModel: d, dSae: F } = s;
  const wDec = unitRows(F, d, () => rng.normal());
  const threshold = normalQuantile(1 - s.activeFraction) * Math.sqrt(3 + 2 * layer);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'sae_weights.safetensors'), encodeSafetensors(new Map([
    ['W_enc', { shape: [d, F], data: transpose(wDec, F, d) }], ['W_dec', { shape: [F, d], data: wDec }],
    ['b_enc', { shape: [F], data: new Float32Array(F) }], ['b_dec', { shape: [d], data: new Float32Array(d) }],
    ['threshold', { shape: [F], data: new Float32Array(F).fill(threshold) }],
  ])));
  writeFileSync(join(dir, 'cfg.json'), `${JSON.stringify({
    architecture: 'jumprelu', d_in: d, d_sae: F, dtype: 'float32', device: 'cpu', apply_b_dec_to_input: false,
    normalize_activations: 'none', reshape_activations: 'none',
    metadata: { sae_lens_version: '6.5.1', model_name: `sfc-bench-${s.name}`, hook_name: `blocks.${layer}.hook_resid_post`, context_size: SEQ_LEN },
  }, null, 2)}\n`);
  return statSync(join(dir, 'sae_weights.safetensors')).size + statSync(join(dir, 'cfg.json')).size;
}

export async function generateGemma2Workload(scale: Scale, log: (line: string) => void = () => {}): Promise<Workload> {
  const t0 = performance.now();
  const { final, tmp, modelDir } = startWorkload(scale);
  const rng = new Rng(SEED);

  const tokJson = tokenizerJson(WORDS);
  writeFileSync(join(modelDir, 'config.json'), `${JSON.stringify(gemma2Config(scale), null, 2)}\n`);
  writeFileSync(join(modelDir, 'tokenizer.json'), JSON.stringify(tokJson));
  writeFileSync(join(modelDir, 'tokenizer_config.json'), `${JSON.stringify(tokenizerConfigJson(8192), null, 2)}\n`);
  const dataText = pairs(PAIRS).map((p) => JSON.stringify(p)).join('\n') + '\n';
  writeFileSync(join(tmp, 'data.jsonl'), dataText);
  const sel = selectExamples(dataText, tokenizerFromJson(tokJson), { numExamples: PAIRS, seed: null, minLengthOnly: false });
  if (sel.examples.length !== PAIRS || sel.examples.some((e) => e.cleanIds.length !== SEQ_LEN)) {
    throw new Error(`generator: expected ${PAIRS} pairs of ${SEQ_LEN} tokens, got ${sel.examples.length}`);
  }
  const tokens: TokensFile = {
    clean: sel.examples.map((e) => [...e.cleanIds]), patch: sel.examples.map((e) => [...e.patchIds!]),
    clean_answer: sel.examples.map((e) => e.cleanAnswerId), patch_answer: sel.examples.map((e) => e.patchAnswerId!),
  };
  writeFileSync(join(tmp, 'tokens.json'), `${JSON.stringify(tokens)}\n`);

  const tensors = gemma2Tensors(scale, rng.fork());
  const parameters = tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  log(`model: gemma2, d ${scale.dModel}, ${scale.nLayers} layers, vocab ${scale.vocabSize}, ${(parameters / 1e9).toFixed(3)} B parameters in bf16; drawing and writing`);
  const modelBytes = writeCheckpoint(modelDir, tensors, SHARD_BYTES);
  log(`model: ${(modelBytes / 2 ** 30).toFixed(2)} GiB on disk, ${((performance.now() - t0) / 1000).toFixed(0)} s`);

  const submodules = Array.from({ length: scale.nLayers }, (_, l) => `resid_${l}`);
  let saeBytes = 0;
  const saeRng = rng.fork();
  submodules.forEach((sub, l) => {
    saeBytes += writeSae(join(tmp, 'saes', sub), scale, l, saeRng.fork());
    log(`SAE ${sub}: JumpReLU ${scale.dSae} features, threshold for ${(scale.activeFraction * 100).toFixed(2)}% active`);
  });
  const target = scale.dSae * scale.activeFraction;
  const manifest: WorkloadManifest = {
    schema: WORKLOAD_SCHEMA, generatorVersion: GENERATOR_VERSION, scale, seed: SEED, created: new Date().toISOString(),
    model: { dir: 'model', parameters, bytes: modelBytes },
    saes: { dir: 'saes', submodules, bytes: saeBytes, l0: { mean: target, min: target, max: target }, l0PerSubmodule: {} },
    data: { file: 'data.jsonl', tokens: 'tokens.json', pairs: PAIRS, seq: SEQ_LEN },
    calibration: { threshold: 0.1, attribNodes: 0, unembedScale: 1, seconds: (performance.now() - t0) / 1000, method: 'analytic' },
  };
  return finishWorkload(tmp, final, manifest);
}
