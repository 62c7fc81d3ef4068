// Batched generation against one prompt at a time, on tfjs (cpu) and onnxruntime, with small-a
// and its SAEs: every prompt gets the tokens of its own generate() and, step by step, the same
// next-token logits (tfjs ≤ 1e-5, onnx ≤ 5e-5) — greedy and sampled (prompt i samples with rowSeed(seed, i)),
// unsteered and steered (prompt positions, the last prompt token, from it on, fixed positions,
// everywhere; patch ops with a shared patch prompt and with per-prompt ones of other lengths),
// prompts of mixed lengths (one left-padded batch with a padded KV cache; grouped by length
// without one, and when recomputing), a row stopping early, any batch size, KV cache and recompute. Also
// progress, typed errors before any compute, and no tensors left behind.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, ShapeError, type Model } from '@sfc/core';
import { parseFeatureId } from './feature-ref.js';
import {
  generate, generateBatch, generateSideBySide, generateSideBySideBatch,
  type BatchGenerateOptions, type Generation, type GenerationProgress,
} from './generation.js';
import { clamp, interventionsFor, parsePositions, patch, scale, type Intervention } from './intervention.js';
import { paddedGroups } from './padded-batch.js';
import { groupByLength } from './prompt-groups.js';
import { rowSeed, type Sampling } from './sampling.js';
import { Steering, type TokenBatch } from './steering.js';
import { loadSmallA, type SmallA, type SmallABackend } from '../test/small-a.js';

const TEXTS = [
  'The parents that the guards know',
  'The parent near the pilots',
  'The author that the guards like',
  'The guards',
  'The pilots near the parents',
  'The parent that the guards know is near',
  'The parents near the author',
];
const GREEDY: Sampling = { kind: 'greedy' };
const SAMPLED: Sampling = { kind: 'sample', temperature: 1.4, topP: 0.95, seed: 2024 };
const N = 7;
const FEATURES = ['resid_1/8', 'resid_1/2', 'resid_0/9', 'mlp_1/4'].map(parseFeatureId);

interface Run { readonly g: Generation; readonly logits: Float32Array[] }

/** Each prompt alone through generate(), with the seed and patch prompt the batch gives its row. */
async function oneByOne(model: Model, prompts: readonly number[][], steering: Steering | undefined, options: BatchGenerateOptions): Promise<Run[]> {
  const { patchPrompts, batchSize: _, onProgress: __, ...rest } = options;
  const runs: Run[] = [];
  for (const [i, p] of prompts.entries()) {
    const logits: Float32Array[] = [];
    const s = options.sampling ?? GREEDY;
    const g = await generate(model, p, steering, {
      ...rest, sampling: s.kind === 'sample' ? { ...s, seed: rowSeed(s.seed, i) } : s, onToken: (e) => logits.push(e.logits),
      ...(patchPrompts ? { patchPrompt: patchPrompts[patchPrompts.length === 1 ? 0 : i]! } : {}),
    });
    runs.push({ g, logits });
  }
  return runs;
}

async function batched(model: Model, prompts: readonly number[][], steering: Steering | undefined, options: BatchGenerateOptions): Promise<Run[]> {
  const logits: Float32Array[][] = prompts.map(() => []);
  const steps: number[][] = prompts.map(() => []);
  const gens = await generateBatch(model, prompts, steering, {
    ...options, onToken: (e) => { logits[e.prompt]!.push(e.logits); steps[e.prompt]!.push(e.step); },
  });
  gens.forEach((g, i) => expect(steps[i], `prompt ${i}: one event per token, in step order`).toEqual(g.ids.map((_, t) => t)));
  return gens.map((g, i) => ({ g, logits: logits[i]! }));
}

function maxDiff(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let worst = 0;
  a.forEach((row, t) => row.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - b[t]![i]!)); }));
  return worst;
}

/**
 * Batched against alone, max |Δlogit|. tfjs-cpu computes every row the same whatever the batch
 * (measured: bitwise equal); onnxruntime's MLAS takes other matmul kernels for other row counts
 * (measured: up to 1.1e-5 on strongly steered rows).
 */
const TOLERANCE: Record<SmallABackend, number> = { 'tfjs-cpu': 1e-5, onnx: 5e-5 };

function expectSame(got: readonly Run[], want: readonly Run[], label: string, tolerance: number): void {
  expect(got).toHaveLength(want.length);
  got.forEach((r, i) => {
    expect(r.g, `${label}: prompt ${i}`).toEqual(want[i]!.g);
    expect(r.logits).toHaveLength(want[i]!.logits.length);
    const worst = maxDiff(r.logits, want[i]!.logits);
    expect(worst, `${label}: prompt ${i}, max |batched − alone| logit = ${worst}`).toBeLessThanOrEqual(tolerance);
  });
}

/** Batches a KV-cached generation of `prompts` runs: one padded batch, or one per length without padded caches. */
function batchCount(model: Model, prompts: readonly number[][]): number {
  const lengths = prompts.map((p) => p.length);
  return (model.supportsPaddedKvCache ? paddedGroups(lengths) : groupByLength(lengths)).length;
}

/** The model on a backend whose KV caches take no padding (generation groups prompts by length). */
function withoutPaddedCaches(model: Model): Model {
  const capabilities = { ...model.backend.capabilities, paddedKvCache: false };
  return Object.create(model, { backend: { value: { ...model.backend, capabilities } } }) as Model;
}

describe.each<SmallABackend>(['tfjs-cpu', 'onnx'])('batched generation on %s (small-a)', (which) => {
  let s: SmallA;
  let model: Model;
  let prompts: number[][];
  beforeAll(async () => {
    s = await loadSmallA(which);
    model = s.model;
    prompts = TEXTS.map((t) => model.encode(t));
  });
  afterAll(async () => { await s?.dispose(); });

  it('the prompts mix lengths, some lengths shared (batches of several rows); the backend pads KV caches', () => {
    const groups = groupByLength(prompts.map((p) => p.length));
    expect(groups.length).toBeGreaterThan(2);
    expect(Math.max(...groups.map((g) => g.rows.length))).toBeGreaterThan(2);
    expect(model.supportsPaddedKvCache).toBe(true);
    expect(batchCount(model, prompts)).toBe(1);
  });

  it('one left-padded batch and batches grouped by length give every prompt its own generation', async () => {
    const grouped = withoutPaddedCaches(model);
    expect(batchCount(grouped, prompts)).toBeGreaterThan(2);
    const steering = await Steering.create(model, s.dictionaries, interventionsFor(FEATURES, clamp(12), parsePositions('-1:')));
    for (const sampling of [GREEDY, SAMPLED]) {
      const alone = await oneByOne(model, prompts, steering, { maxNewTokens: N, sampling });
      expectSame(await batched(grouped, prompts, steering, { maxNewTokens: N, sampling }), alone, `grouped, ${sampling.kind}`, TOLERANCE[which]);
      expectSame(await batched(model, prompts, steering, { maxNewTokens: N, sampling, batchSize: 3 }), alone, `padded by 3, ${sampling.kind}`, TOLERANCE[which]);
    }
    // The edits of one prompt length refuse a padded batch (rows would be steered at the wrong positions).
    const cache = await model.createKvCache({ batch: 2, maxLength: 4, padding: [1, 0] });
    try {
      await model.ops.scope(async () => {
        await expect(model.forward(model.tokens(Int32Array.of(0, 5, 6, 7), 2, 2), { cache, edits: steering.edits({ promptLength: 2 }) }))
          .rejects.toThrow(/left-padded batch/);
      });
    } finally {
      cache.dispose();
    }
  });

  it('unsteered, greedy and sampled: every prompt as if alone; both decoding paths', async () => {
    for (const sampling of [GREEDY, SAMPLED]) {
      const alone = await oneByOne(model, prompts, undefined, { maxNewTokens: N, sampling });
      expectSame(await batched(model, prompts, undefined, { maxNewTokens: N, sampling }), alone, `${sampling.kind}, kv-cache`, TOLERANCE[which]);
      expectSame(await batched(model, prompts, undefined, { maxNewTokens: N, sampling, decoding: 'recompute' }),
        alone.map((r) => ({ ...r, g: { ...r.g, decoding: 'recompute' } })), `${sampling.kind}, recompute`, TOLERANCE[which]);
    }
  });

  it('steered at prompt positions, the last prompt token, from it on, fixed positions and everywhere: every prompt as if alone', async () => {
    const plain = (await generateBatch(model, prompts, undefined, { maxNewTokens: N })).map((g) => g.ids.join());
    // `last` and `-1:` follow each group's prompt length; `1,3` is a prompt position in some groups, a generated one in others.
    for (const spec of ['prompt', 'last', '-1:', '1,3', 'all']) {
      const steering = await Steering.create(model, s.dictionaries, interventionsFor(FEATURES, clamp(12), parsePositions(spec)));
      for (const sampling of [GREEDY, SAMPLED]) {
        const got = await batched(model, prompts, steering, { maxNewTokens: N, sampling });
        expectSame(got, await oneByOne(model, prompts, steering, { maxNewTokens: N, sampling }), `${spec}, ${sampling.kind}`, TOLERANCE[which]);
        if (sampling === GREEDY) expect(got.filter((r, i) => r.g.ids.join() !== plain[i]).length, `${spec} changes some texts`).toBeGreaterThan(0);
      }
    }
  });

  it('a seed gives every prompt its own stream, whatever shares its forward', async () => {
    const options: BatchGenerateOptions = { maxNewTokens: N, sampling: SAMPLED };
    const all = (await generateBatch(model, prompts, undefined, options)).map((g) => g.ids);
    for (const batchSize of [1, 2, 3]) expect((await generateBatch(model, prompts, undefined, { ...options, batchSize })).map((g) => g.ids)).toEqual(all);
    // Fewer prompts (other groups, smaller batches): the rows kept sample the same text.
    expect((await generateBatch(model, prompts.slice(0, 3), undefined, options)).map((g) => g.ids)).toEqual(all.slice(0, 3));
    // The same prompt at two indices draws two streams (rows are not copies of each other).
    const twice = await generateBatch(model, [prompts[0]!, prompts[0]!], undefined, { ...options, maxNewTokens: 12 });
    expect(twice[0]!.ids).not.toEqual(twice[1]!.ids);
    // Side by side: before and after of a row share its seed; equal to the one-prompt call.
    const steering = await Steering.create(model, s.dictionaries, interventionsFor(FEATURES, scale(-3), parsePositions('all')));
    const sbs = await generateSideBySideBatch(model, TEXTS, steering, options);
    for (const [i, text] of TEXTS.entries()) {
      expect(sbs[i]!.before.ids).toEqual(all[i]);
      expect(sbs[i]).toEqual(await generateSideBySide(model, text, steering, { ...options, sampling: { ...SAMPLED, seed: rowSeed(SAMPLED.seed, i) } }));
    }
  });

  it('a row hitting a stop token early leaves the others of its batch alone; progress counts every step', async () => {
    const plain = await generateBatch(model, prompts, undefined, { maxNewTokens: N });
    // A token one row produces early that another row of the same length never produces.
    let pick: { row: number; step: number; token: number } | undefined;
    for (const [r, g] of plain.entries()) {
      const mates = prompts.flatMap((p, o) => (o !== r && p.length === prompts[r]!.length ? [o] : []));
      for (const [step, token] of g.ids.entries()) {
        if (step < N - 2 && !g.ids.slice(0, step).includes(token) && mates.some((o) => !plain[o]!.ids.includes(token))) pick ??= { row: r, step, token };
      }
    }
    expect(pick, 'a stop token that stops one row of a batch early').toBeDefined();
    const events: GenerationProgress[] = [];
    const options: BatchGenerateOptions = { maxNewTokens: N, stopTokens: [pick!.token], onProgress: (e) => events.push(e) };
    const got = await batched(model, prompts, undefined, options);
    expect(got[pick!.row]!.g).toMatchObject({ ids: plain[pick!.row]!.ids.slice(0, pick!.step + 1), stoppedBy: 'stop-token' });
    const mates = prompts.flatMap((p, o) => (p.length === prompts[pick!.row]!.length && got[o]!.g.stoppedBy === 'length' ? [o] : []));
    expect(mates.length, 'another row of the batch runs to the end').toBeGreaterThan(0);
    expectSame(got, await oneByOne(model, prompts, undefined, options), 'stop token', TOLERANCE[which]);
    const total = batchCount(model, prompts) * N;
    expect(events.every((e, i) => i === 0 || e.done > events[i - 1]!.done), 'done only grows').toBe(true);
    expect(events.every((e) => e.phase === 'generate' && e.total === total)).toBe(true);
    expect(events[events.length - 1]!.done).toBe(total);
    // Every row stopping at its first token ends each group after one step.
    const first = [...new Set(plain.map((g) => g.ids[0]!))];
    const short: GenerationProgress[] = [];
    const stopped = await generateBatch(model, prompts, undefined, { maxNewTokens: N, stopTokens: first, onProgress: (e) => short.push(e) });
    expect(stopped.every((g) => g.ids.length === 1 && g.stoppedBy === 'stop-token')).toBe(true);
    expect(short).toHaveLength(2 * batchCount(model, prompts));
    expect(short[short.length - 1]).toEqual({ phase: 'generate', done: total, total });
  });

  it('stop tokens at the first and at the last step, one new token, batch sizes beyond the prompts, side-by-side progress', async () => {
    const plain = await generateBatch(model, prompts, undefined, { maxNewTokens: N });
    const mates = (r: number) => prompts.flatMap((p, o) => (o !== r && p.length === prompts[r]!.length ? [o] : []));
    // A row whose first token no batch-mate ever produces: it stops at step 0, a mate runs to the end.
    const first = plain.findIndex((g, r) => mates(r).some((o) => !plain[o]!.ids.includes(g.ids[0]!)));
    expect(first, 'a row whose first token stops it alone').toBeGreaterThanOrEqual(0);
    const atFirst: BatchGenerateOptions = { maxNewTokens: N, stopTokens: [plain[first]!.ids[0]!] };
    const got = await batched(model, prompts, undefined, atFirst);
    expect(got[first]!.g).toMatchObject({ ids: [plain[first]!.ids[0]], stoppedBy: 'stop-token' });
    expect(mates(first).some((o) => got[o]!.g.stoppedBy === 'length'), 'a batch-mate runs to the end').toBe(true);
    expectSame(got, await oneByOne(model, prompts, undefined, atFirst), 'stop at the first token', TOLERANCE[which]);
    // A stop token first produced at the last step: all N tokens, stopped by the token.
    const last = plain.findIndex((g) => !g.ids.slice(0, N - 1).includes(g.ids[N - 1]!));
    expect(last, 'a row whose last token is new').toBeGreaterThanOrEqual(0);
    const atLast = await generateBatch(model, prompts, undefined, { maxNewTokens: N, stopTokens: [plain[last]!.ids[N - 1]!] });
    expect(atLast[last]).toEqual({ ...plain[last]!, stoppedBy: 'stop-token' });
    // One new token: the prompt's forward only (the cache holds exactly the prompt).
    for (const decoding of ['kv-cache', 'recompute'] as const) {
      const one = await generateBatch(model, prompts, undefined, { maxNewTokens: 1, decoding });
      expect(one.map((g) => g.ids), decoding).toEqual(plain.map((g) => g.ids.slice(0, 1)));
    }
    // A batch size beyond the number of prompts is the default (every length in one forward).
    const wide = await generateBatch(model, prompts, undefined, { maxNewTokens: N, batchSize: prompts.length + 5 });
    expect(wide).toEqual(plain);
    // Side by side: both sides' steps in one count, done only grows, ends at the total.
    const steering = await Steering.create(model, s.dictionaries, interventionsFor(FEATURES, scale(-3), parsePositions('all')));
    const events: GenerationProgress[] = [];
    await generateSideBySideBatch(model, TEXTS, steering, { maxNewTokens: N, onProgress: (e) => events.push(e) });
    const total = 2 * batchCount(model, prompts) * N;
    expect(events).toHaveLength(total);
    expect(events.map((e) => e.done)).toEqual(events.map((_, i) => i + 1));
    expect(events.every((e) => e.phase === 'generate' && e.total === total)).toBe(true);
  });

  it('patch ops: one shared patch prompt, or one per prompt of other lengths', async () => {
    const swap = (t: string) => t.replace(/\b(parents?)\b/g, (w) => (w === 'parents' ? 'parent' : 'parents'));
    // Per-prompt patch prompts: number-swapped, some longer than their prompt (lengths differ within a batch).
    const perPrompt: TokenBatch[] = TEXTS.map((t, i) => {
      const ids = model.encode(swap(t) + (i % 2 ? ' near the pilots' : ''));
      return { ids: Int32Array.from(ids), batch: 1, seq: ids.length };
    });
    const sharedIds = model.encode('The parent that the guards know is near the pilots');
    const shared: TokenBatch = { ids: Int32Array.from(sharedIds), batch: 1, seq: sharedIds.length };
    const ivs: Intervention[] = [
      ...interventionsFor(['resid_1/8', 'resid_0/9', 'resid_1/err'].map(parseFeatureId), patch(), parsePositions('prompt')),
      ...interventionsFor([parseFeatureId('resid_0/err')], scale(3), parsePositions('-1:')),
    ];
    const steering = await Steering.create(model, s.dictionaries, ivs);
    for (const patchPrompts of [perPrompt, [shared]]) {
      for (const sampling of [GREEDY, SAMPLED]) {
        const options: BatchGenerateOptions = { maxNewTokens: N, sampling, patchPrompts };
        expectSame(await batched(model, prompts, steering, options), await oneByOne(model, prompts, steering, options),
          `patch (${patchPrompts.length} patch prompts), ${sampling.kind}`, TOLERANCE[which]);
      }
    }
  });

  it('bad inputs are typed errors before any compute; nothing leaks, also when a callback throws', async () => {
    const before = model.ops.numTensors();
    const steering = await Steering.create(model, s.dictionaries, interventionsFor([parseFeatureId('resid_1/8')], patch(), parsePositions('prompt')));
    const one = (ids: number[]): TokenBatch => ({ ids: Int32Array.from(ids), batch: 1, seq: ids.length });
    await expect(generateBatch(model, [], undefined, { maxNewTokens: 2 })).rejects.toBeInstanceOf(InputError);
    await expect(generateBatch(model, [prompts[0]!, []], undefined, { maxNewTokens: 2 })).rejects.toThrow(/prompt 1 is empty/);
    await expect(generateBatch(model, prompts, undefined, { maxNewTokens: 2, batchSize: 0 })).rejects.toBeInstanceOf(InputError);
    await expect(generateBatch(model, prompts, undefined, { maxNewTokens: 123 })).rejects.toMatchObject({ message: expect.stringContaining('longest prompt (8 tokens)') });
    await expect(generateBatch(model, prompts, steering, { maxNewTokens: 2 })).rejects.toThrow(/patch prompt/);
    await expect(generateBatch(model, prompts, steering, { maxNewTokens: 2, patchPrompts: prompts.slice(0, 2).map(one) })).rejects.toBeInstanceOf(ShapeError);
    await expect(generateBatch(model, prompts, steering, { maxNewTokens: 2, patchPrompts: [{ ids: Int32Array.from([...prompts[0]!, ...prompts[2]!]), batch: 2, seq: 6 }] }))
      .rejects.toBeInstanceOf(ShapeError);
    // Row 5 (8 tokens) patched at its prompt positions by a 5-token patch prompt.
    await expect(generateBatch(model, prompts, steering, { maxNewTokens: 2, patchPrompts: prompts.map((p, i) => one(i === 5 ? prompts[1]! : p)) }))
      .rejects.toThrow(/patch prompt has only 5 tokens/);
    expect(model.ops.numTensors()).toBe(before);
    await generateBatch(model, prompts, undefined, { maxNewTokens: 3 });
    await expect(generateBatch(model, prompts, undefined, { maxNewTokens: 3, onToken: (e) => { if (e.step === 1) throw new Error('stop here'); } }))
      .rejects.toThrow('stop here');
    expect(model.ops.numTensors()).toBe(before);
  });
});
