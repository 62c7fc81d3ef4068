// The conformance suite for Gemma 2/3 and the Llama family on a backend with a KV cache.
// Test-runner agnostic, like the KV-cache suite. On the refgen decoders (fixtures/models, made by
// tools/refgen/make_models.py): cached decoding — prefill, single tokens and a chunk, as each
// ref.json `cache_check` says — gives transformers' cached generation (sliding windows shorter
// than the prompt, soft-caps, grouped-query and multi-query attention, q/k norms, Gemma 3's
// local/global rope, Llama 3 rope scaling, BF16 weights); then core's KV-cache suite (cached =
// full forward, position-dependent edits, Gemma's attn_l of width nHeads × headDim included).

import { join } from 'node:path';
import type { Model } from '../model/model.js';
import { runKvCacheConformance } from './kv-cache-conformance.js';
import { registerCachedDecoding } from './rope-scaling-conformance.js';
import type { ConformanceRunner } from './tensor-ops-conformance.js';

export interface DecoderConformanceOptions {
  /** Loads a model folder on the backend under test (called while the tests run). */
  readonly load: (dir: string) => Promise<Model>;
  /** The folder of the refgen models (the repository's fixtures/models). */
  readonly modelsDir: string;
  /** Largest allowed |cached − reference| logit difference (default 1e-4). */
  readonly tolerance?: number;
}

/** The refgen decoders with a `cache_check` (qwen2-a and qwen3-a are covered by the KV-cache suite). */
export const DECODER_CACHE_MODELS = ['gemma2-a', 'gemma3-a', 'llama-a', 'mistral-bf16'] as const;
export const DECODER_MODELS = [...DECODER_CACHE_MODELS, 'qwen2-a', 'qwen3-a'] as const;

export function runDecoderConformance(options: DecoderConformanceOptions,
  runner: ConformanceRunner & { readonly afterAll?: (fn: () => void) => void }, name = 'Decoder conformance'): void {
  for (const m of DECODER_CACHE_MODELS) registerCachedDecoding(options.load, join(options.modelsDir, m), false, options.tolerance ?? 1e-4, runner, name);
  runKvCacheConformance({ load: options.load, models: DECODER_MODELS.map((m) => join(options.modelsDir, m)) }, runner, `${name}: KV cache`);
}
