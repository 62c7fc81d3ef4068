// Generation through a KV cache against full recompute: the same tokens and, step by step, the
// same next-token logits (≤ 1e-5), greedy and sampled, unsteered and steered at prompt positions,
// at generated positions ("from k on") and everywhere, on a rotary GPT-NeoX (small-a, its SAEs)
// and a learned-position GPT-2 (fixture gpt2-b, random ReLU SAEs). Also: the fallback without a
// cache, the path reported, and no tensors left behind.

import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapabilityError, Model, type Backend, type Dictionary } from '@sfc/core';
import { tfjsBackend } from '@sfc/backend-tfjs';
import { ReluDictionary } from '@sfc/dictionaries';
import { parseFeatureId } from './feature-ref.js';
import { generate, type GenerateOptions, type Generation } from './generation.js';
import { clamp, interventionsFor, parsePositions, patch, scale, type Intervention } from './intervention.js';
import type { Sampling } from './sampling.js';
import { Steering } from './steering.js';
import { loadSmallA, type SmallA } from '../test/small-a.js';

const GREEDY: Sampling = { kind: 'greedy' };
const SAMPLED: Sampling = { kind: 'sample', temperature: 1.2, topP: 0.95, seed: 77 };
const SAMPLINGS: readonly Sampling[] = [GREEDY, SAMPLED];
const N = 9;

interface Run { readonly g: Generation; readonly logits: Float32Array[] }

async function run(model: Model, prompt: readonly number[], steering: Steering | undefined, options: GenerateOptions): Promise<Run> {
  const logits: Float32Array[] = [];
  const g = await generate(model, prompt, steering, { ...options, onToken: (e) => logits.push(e.logits) });
  return { g, logits };
}

function maxDiff(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let worst = 0;
  a.forEach((row, t) => row.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - b[t]![i]!)); }));
  return worst;
}

/** Runs cached and recomputed generation; asserts equal tokens and logits; returns the cached run. */
async function agree(model: Model, prompt: readonly number[], steering: Steering | undefined, options: GenerateOptions): Promise<Run> {
  const cached = await run(model, prompt, steering, { ...options, decoding: 'kv-cache' });
  const full = await run(model, prompt, steering, { ...options, decoding: 'recompute' });
  expect(cached.g.decoding).toBe('kv-cache');
  expect(full.g.decoding).toBe('recompute');
  expect(cached.g.ids).toEqual(full.g.ids);
  expect(cached.logits).toHaveLength(full.logits.length);
  const worst = maxDiff(cached.logits, full.logits);
  expect(worst, `max |cached − recomputed| logit = ${worst}`).toBeLessThanOrEqual(1e-5);
  return cached;
}

/** Steering variants over `features`: prompt positions, from the first and from a later generated position on, everywhere. */
function placements(P: number): [string, string][] {
  return [['prompt positions', 'prompt'], ['generated positions (P:)', `${P}:`], ['from P+3 on', `${P + 3}:`], ['all positions', 'all']];
}

describe('KV-cached generation on GPT-NeoX (small-a, rotary)', () => {
  let s: SmallA;
  let prompt: number[];
  const features = ['resid_1/8', 'resid_1/2', 'resid_0/9', 'mlp_1/4'].map(parseFeatureId);
  beforeAll(async () => {
    s = await loadSmallA();
    prompt = s.model.encode('The parents that the guards know');
  });
  afterAll(async () => { await s.dispose(); });

  it('unsteered: same tokens and logits, greedy and sampled', async () => {
    for (const sampling of SAMPLINGS) await agree(s.model, prompt, undefined, { maxNewTokens: N, sampling });
  });

  it('steered at prompt positions, at generated positions and everywhere: same tokens and logits', async () => {
    const P = prompt.length;
    const plain = (await run(s.model, prompt, undefined, { maxNewTokens: N })).g.ids;
    for (const [label, spec] of placements(P)) {
      const steering = await Steering.create(s.model, s.dictionaries, interventionsFor(features, clamp(12), parsePositions(spec)));
      for (const sampling of SAMPLINGS) {
        const r = await agree(s.model, prompt, steering, { maxNewTokens: N, sampling });
        if (sampling === GREEDY) expect(r.g.ids, `${label} changes the text`).not.toEqual(plain);
      }
    }
  });

  it('"from P+3 on" leaves the first three tokens alone and steers the rest', async () => {
    const P = prompt.length;
    const later = await Steering.create(s.model, s.dictionaries, interventionsFor(features, clamp(12), parsePositions(`${P + 3}:`)));
    const plain = await run(s.model, prompt, undefined, { maxNewTokens: N });
    const steered = await agree(s.model, prompt, later, { maxNewTokens: N });
    // Position P+3 is fed at step 4: the first four next-token distributions are unsteered.
    expect(maxDiff(steered.logits.slice(0, 4), plain.logits.slice(0, 4))).toBe(0);
    expect(maxDiff(steered.logits.slice(4), plain.logits.slice(4))).toBeGreaterThan(1e-2);
  });

  it('patch and error-node ops at prompt and generated positions: same tokens and logits', async () => {
    const patchIds = s.model.encode('The parent that the guards know');
    const patchPrompt = { ids: Int32Array.from(patchIds), batch: 1, seq: patchIds.length };
    const ivs: Intervention[] = [
      ...interventionsFor(['resid_1/8', 'resid_0/9'].map(parseFeatureId), patch(), parsePositions('prompt')),
      ...interventionsFor([parseFeatureId('resid_0/err')], scale(3), parsePositions('1:')),
    ];
    const steering = await Steering.create(s.model, s.dictionaries, ivs);
    await agree(s.model, prompt, steering, { maxNewTokens: N, patchPrompt, sampling: SAMPLED });
    // Patching generated positions too: values come from the same positions of a longer patch prompt.
    const longIds = s.model.encode('The parent that the guards know is near the parents');
    expect(longIds.length).toBeGreaterThan(prompt.length + 3);
    const everywhere = await Steering.create(s.model, s.dictionaries,
      interventionsFor(['resid_1/8', 'resid_0/9', 'resid_1/err'].map(parseFeatureId), patch(), parsePositions('all')));
    const long = { ids: Int32Array.from(longIds), batch: 1, seq: longIds.length };
    await agree(s.model, prompt, everywhere, { maxNewTokens: longIds.length - prompt.length + 1, patchPrompt: long });
  });

  it('auto uses the cache; a backend without one falls back to recompute (or refuses kv-cache); nothing leaks', async () => {
    const before = s.model.ops.numTensors();
    const auto = await generate(s.model, prompt, undefined, { maxNewTokens: 4 });
    expect(auto.decoding).toBe('kv-cache');
    expect(s.model.ops.numTensors()).toBe(before);
    const noCache = Object.create(s.model, {
      backend: { value: { ...s.model.backend, capabilities: { ...s.model.backend.capabilities, kvCache: false } } },
    }) as Model;
    const fallback = await generate(noCache, prompt, undefined, { maxNewTokens: 4 });
    expect(fallback).toEqual({ ...auto, decoding: 'recompute' });
    await expect(generate(noCache, prompt, undefined, { maxNewTokens: 4, decoding: 'kv-cache' })).rejects.toBeInstanceOf(CapabilityError);
    expect(s.model.ops.numTensors()).toBe(before);
  });

  it('a generation that fails midway still frees its cache', async () => {
    const before = s.model.ops.numTensors();
    await expect(generate(s.model, prompt, undefined, { maxNewTokens: 3, onToken: () => { throw new Error('stop here'); } })).rejects.toThrow('stop here');
    expect(s.model.ops.numTensors()).toBe(before);
  });
});

describe('KV-cached generation on GPT-2 (fixture gpt2-b, learned positions)', () => {
  let backend: Backend;
  let model: Model;
  let dictionaries: Map<string, Dictionary>;
  const prompt = [5, 17, 3, 42, 8, 11];

  /** A ReLU SAE with fixed pseudo-random weights (deterministic per seed). */
  function randomSae(d: number, F: number, seed: number): Dictionary {
    let a = seed >>> 0;
    const rand = () => { a = (Math.imul(a, 1664525) + 1013904223) >>> 0; return a / 4294967296 - 0.5; };
    const mat = (r: number, c: number, k: number) => ({ shape: [r, c], data: Float32Array.from({ length: r * c }, () => k * rand()) });
    return new ReluDictionary(backend.ops, {
      W_enc: mat(d, F, 2 / Math.sqrt(d)), b_enc: { shape: [F], data: Float32Array.from({ length: F }, () => 0.05 * rand()) },
      W_dec: mat(F, d, 1), b_dec: { shape: [d], data: Float32Array.from({ length: d }, () => 0.1 * rand()) }, applyBDecToInput: false,
    });
  }

  beforeAll(async () => {
    backend = await tfjsBackend({ flavor: 'cpu' });
    model = await Model.load(fileURLToPath(new URL('../../../fixtures/models/gpt2-b', import.meta.url)), backend);
    const d = model.spec.dims.dModel;
    dictionaries = new Map(['embed', 'attn_1', 'resid_1'].map((sub, i) => [sub, randomSae(d, 2 * d, 11 + i)]));
  });
  afterAll(async () => {
    for (const dict of dictionaries.values()) dict.dispose();
    model.dispose();
    await backend.dispose();
  });

  it('unsteered and steered (prompt, generated, all positions): same tokens and logits, greedy and sampled', async () => {
    await agree(model, prompt, undefined, { maxNewTokens: N, sampling: GREEDY });
    await agree(model, prompt, undefined, { maxNewTokens: N, sampling: SAMPLED });
    const features = ['embed/3', 'attn_1/7', 'resid_1/20', 'resid_1/err'].map(parseFeatureId);
    const plain = (await run(model, prompt, undefined, { maxNewTokens: N })).g.ids;
    let changed = 0;
    for (const [, spec] of placements(prompt.length)) {
      const ivs = [...interventionsFor(features.slice(0, 3), clamp(8), parsePositions(spec)), ...interventionsFor(features.slice(3), scale(4), parsePositions(spec))];
      const steering = await Steering.create(model, dictionaries, ivs);
      for (const sampling of SAMPLINGS) {
        const r = await agree(model, prompt, steering, { maxNewTokens: N, sampling });
        if (sampling === GREEDY && r.g.ids.join() !== plain.join()) changed++;
      }
    }
    expect(changed, 'the steering changes greedy generations').toBeGreaterThan(0);
  });

  it('generation to the last learned position fits the cache exactly', async () => {
    const n = model.spec.dims.maxPositions - prompt.length + 1;
    const r = await agree(model, prompt, undefined, { maxNewTokens: n });
    expect(r.g.ids).toHaveLength(n);
  });
});
