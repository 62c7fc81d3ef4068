// The conformance suite for RoPE scaling and attention_bias false on a backend. Test-runner
// agnostic, like the KV-cache suite. On the refgen models (fixtures/models/neox-rope-* and
// neox-nobias, made by tools/refgen/make_models.py): cached decoding of each rope model — prefill,
// single tokens and a chunk, as its ref.json `cache_check` says — gives the PyTorch reference of
// transformers' cached generation. For dynamic NTK that differs from a full forward past
// max_position_embeddings (cached keys keep the rotation of the step that wrote them), so the
// check also asserts the reference itself tells the two apart. Then core's KV-cache suite runs on
// the scaled and bias-free models (cached logits = full forward within the trained context).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Model } from '../model/model.js';
import { maxAbsDiff } from './compare.js';
import { runKvCacheConformance } from './kv-cache-conformance.js';
import type { ConformanceRunner } from './tensor-ops-conformance.js';

export interface RopeScalingConformanceOptions {
  /** Loads a model folder on the backend under test (called while the tests run). */
  readonly load: (dir: string) => Promise<Model>;
  /** The folder of the refgen models (the repository's fixtures/models). */
  readonly modelsDir: string;
  /** Largest allowed |cached − reference| logit difference (default 1e-4). */
  readonly tolerance?: number;
}

/** The rope models; `pastContext`: text 0 runs past max_position_embeddings with dynamic NTK. */
const ROPE_MODELS: readonly { readonly name: string; readonly pastContext: boolean }[] = [
  { name: 'neox-rope-linear', pastContext: false },
  { name: 'neox-rope-dynamic', pastContext: true },
  { name: 'neox-rope-yarn', pastContext: false },
  { name: 'neox-rope-llama3', pastContext: false },
];

/** The part of a rope model's ref.json this suite reads. */
interface CacheRef {
  readonly tokens: number[][];
  readonly logits: number[][][];
  /** Text `text` fed through a KV cache in `pieces`, and the reference logits [seq][V] of that. */
  readonly cache_check: { readonly text: number; readonly pieces: number[]; readonly logits: number[][] };
}

/**
 * Registers the suite. Each model is loaded once, on first use; with `runner.afterAll` it is
 * disposed after its tests (else when the backend is).
 */
export function runRopeScalingConformance(options: RopeScalingConformanceOptions,
  runner: ConformanceRunner & { readonly afterAll?: (fn: () => void) => void }, name = 'RoPE scaling conformance'): void {
  const tolerance = options.tolerance ?? 1e-4;

  for (const { name: label, pastContext } of ROPE_MODELS) registerCachedDecoding(options.load, join(options.modelsDir, label), pastContext, tolerance, runner, name);

  const kvModels = [...ROPE_MODELS.map((r) => r.name), 'neox-nobias'].map((m) => join(options.modelsDir, m));
  runKvCacheConformance({ load: options.load, models: kvModels }, runner, `${name}: KV cache`);
}

/**
 * Registers the cached-decoding check of one refgen model: its text fed through a KV cache in the
 * pieces of ref.json's `cache_check` gives the reference logits of transformers' cached generation.
 * `pastContext`: the reference's cached and full logits differ (dynamic NTK past the context).
 */
export function registerCachedDecoding(load: (dir: string) => Promise<Model>, dir: string, pastContext: boolean, tolerance: number,
  runner: ConformanceRunner & { readonly afterAll?: (fn: () => void) => void }, name: string): void {
  const { describe, it, expect } = runner;
  const label = dir.split(/[\\/]/).filter(Boolean).pop() ?? dir;
  describe(`${name}: ${label}: cached decoding matches transformers`, () => {
    let model: Model | undefined;

    it('prefill, single tokens and a chunk through a KV cache give the reference logits', async () => {
      const ref = JSON.parse(readFileSync(join(dir, 'ref.json'), 'utf8')) as CacheRef;
      const m = (model ??= await load(dir));
      const { pieces, logits } = ref.cache_check;
      const ids = ref.tokens[ref.cache_check.text]!;
      const before = m.ops.numTensors();
      const cache = await m.createKvCache({ batch: 1, maxLength: ids.length });
      const got: number[] = [];
      try {
        let at = 0;
        for (const n of pieces) {
          await m.ops.scope(async () => {
            const out = await m.forward(m.tokens(Int32Array.from(ids.slice(at, at + n)), 1, n), { cache });
            got.push(...(await out.logits!.data()));
          });
          at += n;
        }
      } finally {
        cache.dispose();
      }
      const worst = maxAbsDiff(got, logits.flat());
      expect(worst, `max |cached − reference| = ${worst}`).toBeLessThanOrEqual(tolerance);
      expect(m.ops.numTensors(), 'tensors left alive').toBe(before);
      // Past max_position_embeddings with dynamic NTK, cached ≠ full forward: the check above can tell them apart.
      const full = maxAbsDiff(ref.logits[ref.cache_check.text]!.flat(), logits.flat());
      if (pastContext) expect(full > 1e-2, `reference cached vs full forward differ by ${full}`).toBe(true);
      else expect(full, 'reference cached vs full forward').toBeLessThanOrEqual(1e-5);
    });

    runner.afterAll?.(() => { model?.dispose(); model = undefined; });
  });
}
