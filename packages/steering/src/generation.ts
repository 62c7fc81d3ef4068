// Steered text generation, greedy or sampled, with the steering applied at its positions on
// every step (generated tokens included), for one prompt or many at once. With a backend KV
// cache: one forward over the prompt, then one token per step, the edits told each step's
// position (steered and unsteered runs use separate caches: edits at prompt positions change the
// cached keys and values). Without one, each step re-runs the whole prefix — exact too, O(n²).
// The result says which path ran.
//
// Many prompts run batched, at most `batchSize` rows per forward, one batch after another: with a
// KV cache that takes left padding (capabilities.paddedKvCache) prompts of any lengths share a
// batch (padded-batch.ts); otherwise only prompts of one token length do (prompt-groups.ts).
// A row that stops (stop token) keeps being fed — its cache row must stay aligned with the
// others — but its tokens are discarded and draw no random numbers; a group ends when all its
// rows have stopped. Each prompt samples from its own stream (rowSeed(seed, index)), so a
// prompt's text does not depend on which prompts share its forward. `generate` is the one-prompt
// case. `generateSideBySide(Batch)` runs the same prompts and seeds without and with steering.

import { CapabilityError, InputError, ShapeError, type Edit, type KvCache, type Model } from '@sfc/core';
import { f32 } from './host-data.js';
import { stackPatchRows, type PatchRow } from './patch-rows.js';
import { paddedGroups, paddedRowEdits, slotFeed, usesPaddedBatches } from './padded-batch.js';
import { groupByLength, type PromptGroup } from './prompt-groups.js';
import { checkSampling, chooseToken, GREEDY, rowSeed, seededRandom, type Sampling } from './sampling.js';
import type { PatchState, Steering, TokenBatch } from './steering.js';

export interface GenerateOptions {
  /** Tokens to generate (≥ 1). */
  readonly maxNewTokens: number;
  readonly sampling?: Sampling;
  /** Stop after producing one of these ids (it is kept in the output). */
  readonly stopTokens?: readonly number[];
  /** Patch prompt for `patch` ops (one row). */
  readonly patchPrompt?: TokenBatch;
  /**
   * `auto` (default): a KV cache when the backend has one, else re-run the prefix each step.
   * `kv-cache`: require the cache (CapabilityError without it). `recompute`: always re-run.
   */
  readonly decoding?: Decoding | 'auto';
  /** Called after every token, with the next-token logits it was chosen from. */
  readonly onToken?: (event: TokenEvent) => void;
}

export interface BatchGenerateOptions extends Omit<GenerateOptions, 'patchPrompt'> {
  /** Patch prompts for `patch` ops, one row each: one for every prompt, or one per prompt. */
  readonly patchPrompts?: readonly TokenBatch[];
  /** At most this many prompts per forward (default: all prompts of a length in one forward). */
  readonly batchSize?: number;
  /** Called after every batched step. */
  readonly onProgress?: (progress: GenerationProgress) => void;
}

/**
 * Batched steps done of those planned (maxNewTokens per group, per side for side-by-side); a
 * group whose rows all stopped early counts its remaining steps as done.
 */
export interface GenerationProgress {
  readonly phase: 'generate';
  readonly done: number;
  readonly total: number;
}

export type Decoding = 'kv-cache' | 'recompute';

export interface TokenEvent {
  /** Index of the prompt in the list given (0 for `generate`). */
  readonly prompt: number;
  readonly steered: boolean;
  readonly step: number;
  readonly id: number;
  readonly token: string;
  /** Logits over the vocabulary at the last position, before sampling. */
  readonly logits: Float32Array;
}

export interface Generation {
  /** The generated ids (prompt excluded). */
  readonly ids: readonly number[];
  /** The generated text (decoded ids). */
  readonly text: string;
  readonly stoppedBy: 'length' | 'stop-token';
  /** Which path ran: one token per step through a KV cache, or the whole prefix every step. */
  readonly decoding: Decoding;
}

export interface SideBySide {
  readonly prompt: string;
  readonly promptIds: readonly number[];
  readonly before: Generation;
  readonly after: Generation;
}

/** Everything checked before any compute: the prompts, their groups and the decoding path. */
interface Job {
  readonly prompts: readonly (readonly number[])[];
  readonly groups: readonly PromptGroup[];
  readonly decoding: Decoding;
  readonly options: BatchGenerateOptions;
}

function planJob(model: Model, prompts: readonly (readonly number[])[], options: BatchGenerateOptions): Job {
  if (prompts.length === 0) throw new InputError('no prompts to generate from', 'give at least one prompt');
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new InputError(prompts.length === 1 ? 'empty prompt' : `prompt ${i} is empty`, 'give a prompt with at least one token');
  });
  const n = options.maxNewTokens;
  if (!Number.isInteger(n) || n < 1) throw new InputError(`the number of tokens to generate must be a positive integer, got ${n}`, 'use e.g. --generate 20');
  const longest = Math.max(...prompts.map((p) => p.length));
  const max = model.spec.dims.maxPositions;
  if (longest + n - 1 > max) {
    const which = prompts.length === 1 ? 'the prompt' : 'the longest prompt';
    throw new InputError(`${which} (${longest} tokens) plus ${n} generated tokens exceeds the model's ${max} positions`,
      `generate at most ${max - longest + 1} tokens, or shorten ${which}`);
  }
  checkSampling(options.sampling ?? GREEDY);
  const d = options.decoding ?? 'auto';
  if (d !== 'auto' && d !== 'kv-cache' && d !== 'recompute') {
    throw new InputError(`unknown decoding ${JSON.stringify(d)}`, 'use auto, kv-cache or recompute');
  }
  const decoding = decodingFor(model, d);
  const lengths = prompts.map((p) => p.length);
  const groups = usesPaddedBatches(model, decoding) ? paddedGroups(lengths, options.batchSize) : groupByLength(lengths, options.batchSize ?? Infinity);
  return { prompts, groups, decoding, options };
}

function decodingFor(model: Model, option: GenerateOptions['decoding']): Decoding {
  if (option === 'recompute') return 'recompute';
  if (model.supportsKvCache) return 'kv-cache';
  if (option === 'kv-cache') {
    throw new CapabilityError(`backend '${model.backend.name}' has no KV cache`, 'use decoding auto or recompute (re-runs the prefix each step), or --backend tfjs or onnx');
  }
  return 'recompute';
}

/**
 * The patch prompt of prompt `i` (shared or its own), after checking the list's shape; undefined
 * when the steering has no patch op. Then every row's positions are validated against its prompt
 * and patch prompt, before any compute.
 */
function checkSteering(job: Job, steering: Steering): ((i: number) => TokenBatch | undefined) | undefined {
  const n = job.prompts.length;
  let patchOf: ((i: number) => TokenBatch | undefined) | undefined;
  if (steering.needsPatch) {
    const given = job.options.patchPrompts ?? [];
    if (given.length > 1 && given.length !== n) throw new ShapeError(`${given.length} patch prompts for ${n} prompts`, 'give one patch prompt, or one per prompt');
    given.forEach((t, i) => {
      if (t.batch !== 1) throw new ShapeError(`patch prompt ${i} has ${t.batch} rows`, 'give every patch prompt as one row (batch 1)');
    });
    patchOf = (i) => given[given.length === 1 ? 0 : i];
  }
  const N = job.options.maxNewTokens;
  job.prompts.forEach((p, i) => steering.validate(p.length, p.length + N - 1, patchOf?.(i), 1));
  return patchOf;
}

/** Counts batched steps for onProgress. */
function stepCounter(report: BatchGenerateOptions['onProgress'], total: number): (steps: number) => void {
  let done = 0;
  return (steps) => {
    done += steps;
    report?.({ phase: 'generate', done, total });
  };
}

/** Generates from every prompt in `prompts` (token ids), steered when `steering` is given; results in prompt order. */
export async function generateBatch(model: Model, prompts: readonly (readonly number[])[], steering: Steering | undefined,
  options: BatchGenerateOptions): Promise<Generation[]> {
  const job = planJob(model, prompts, options);
  const patchOf = steering ? checkSteering(job, steering) : undefined;
  const count = stepCounter(options.onProgress, job.groups.length * options.maxNewTokens);
  return runJob(model, job, steering, patchOf, count);
}

/** Generates from `promptIds`, steered when `steering` is given. */
export async function generate(model: Model, promptIds: readonly number[], steering: Steering | undefined,
  options: GenerateOptions): Promise<Generation> {
  const { patchPrompt, ...rest } = options;
  const [g] = await generateBatch(model, [promptIds], steering, { ...rest, ...(patchPrompt ? { patchPrompts: [patchPrompt] } : {}) });
  return g!;
}

/** Every prompt with the same sampling seeds without steering (before) and with it (after). */
export async function generateSideBySideBatch(model: Model, prompts: readonly (string | readonly number[])[], steering: Steering,
  options: BatchGenerateOptions): Promise<SideBySide[]> {
  const ids = prompts.map((p) => (typeof p === 'string' ? model.encode(p) : [...p]));
  const job = planJob(model, ids, options);
  const patchOf = checkSteering(job, steering);
  const count = stepCounter(options.onProgress, 2 * job.groups.length * options.maxNewTokens);
  const before = await runJob(model, job, undefined, undefined, count);
  const after = await runJob(model, job, steering, patchOf, count);
  return prompts.map((p, i) => ({
    prompt: typeof p === 'string' ? p : model.tokenizer.decode(ids[i]!), promptIds: ids[i]!, before: before[i]!, after: after[i]!,
  }));
}

/** The same prompt and sampling seed without steering (before) and with it (after). */
export async function generateSideBySide(model: Model, prompt: string | readonly number[], steering: Steering,
  options: GenerateOptions): Promise<SideBySide> {
  const { patchPrompt, ...rest } = options;
  const [sbs] = await generateSideBySideBatch(model, [prompt], steering, { ...rest, ...(patchPrompt ? { patchPrompts: [patchPrompt] } : {}) });
  return sbs!;
}

async function runJob(model: Model, job: Job, steering: Steering | undefined, patchOf: ((i: number) => TokenBatch | undefined) | undefined,
  count: (steps: number) => void): Promise<Generation[]> {
  const out: Generation[] = new Array(job.prompts.length);
  const shared: { state?: PatchState } = {};
  for (const group of job.groups) {
    const patch = steering && patchOf ? await groupPatch(steering, group, patchOf, job.options.patchPrompts!.length === 1, shared) : undefined;
    const gens = await runGroup(model, job, group, steering, patch, count);
    group.rows.forEach((r, j) => { out[r] = gens[j]!; });
  }
  return out;
}

/**
 * The patch values of a group's rows: the shared patch prompt's (captured once, broadcast), or
 * each row's own, captured with one forward per patch-prompt length and stacked.
 */
async function groupPatch(steering: Steering, group: PromptGroup, patchOf: (i: number) => TokenBatch | undefined, isShared: boolean,
  shared: { state?: PatchState }): Promise<PatchState> {
  if (isShared) return (shared.state ??= await steering.capturePatch(patchOf(0)!));
  const prompts = group.rows.map((r) => patchOf(r)!);
  const rows: PatchRow[] = new Array(prompts.length);
  for (const sub of groupByLength(prompts.map((p) => p.seq))) {
    const ids = new Int32Array(sub.rows.length * sub.length);
    sub.rows.forEach((i, k) => ids.set(prompts[i]!.ids.subarray(0, sub.length), k * sub.length));
    const state = await steering.capturePatch({ ids, batch: sub.rows.length, seq: sub.length });
    sub.rows.forEach((i, k) => { rows[i] = { state, row: k }; });
  }
  return stackPatchRows(rows);
}

/** Row `j` of a group's patch state (a shared one serves every row). */
function rowPatch(patch: PatchState | undefined, j: number): PatchState | undefined {
  return !patch || patch.batch === 1 ? patch : stackPatchRows([{ state: patch, row: j }]);
}

/**
 * One group of prompts, generated as one batch (one KV cache) to the end: of one length, or
 * left-padded to its longest prompt (every row steered at its own positions).
 */
async function runGroup(model: Model, job: Job, group: PromptGroup, steering: Steering | undefined, patch: PatchState | undefined,
  count: (steps: number) => void): Promise<Generation[]> {
  const { options } = job;
  const N = options.maxNewTokens;
  const sampling = options.sampling ?? GREEDY;
  const stop = new Set(options.stopTokens ?? []);
  const g = group.rows.length, P = group.length;
  const lengths = group.rows.map((r) => job.prompts[r]!.length);
  const padding = lengths.map((n) => P - n);
  const padded = padding.some((p) => p > 0);
  const edits = !steering ? undefined
    : padded ? paddedRowEdits(model, lengths.map((n, j) => steering.edits({ promptLength: n, patch: rowPatch(patch, j) })))
    : steering.edits({ promptLength: P, patch });
  const seqs = group.rows.map((r) => [...job.prompts[r]!]);
  const out = group.rows.map((): number[] => []);
  const stopped = new Array<boolean>(g).fill(false);
  const random = group.rows.map((r) => seededRandom(sampling.kind === 'sample' ? rowSeed(sampling.seed, r) : 0));
  let live = g, steps = 0;
  // Every position but the last generated one is fed to the model once.
  const cache = job.decoding === 'kv-cache' ? await model.createKvCache({ batch: g, maxLength: P + N - 1, ...(padded ? { padding } : {}) }) : undefined;
  try {
    while (steps < N && live > 0) {
      const step = steps;
      // Cached: only the slots the cache does not hold yet (the prompt, then the last token); rows stay of one length in slots.
      const { ids: feed, seq } = slotFeed(seqs, padding, cache ? cache.length : 0);
      const logits = await nextLogits(model, feed, g, seq, edits, cache);
      const V = logits.length / g;
      for (let j = 0; j < g; j++) {
        const ids = seqs[j]!;
        // A stopped row is fed its last token again: its output is discarded, and it draws no random numbers.
        if (stopped[j]) { ids.push(ids[ids.length - 1]!); continue; }
        const row = logits.subarray(j * V, (j + 1) * V);
        const id = chooseToken(row, sampling, random[j]!);
        ids.push(id);
        out[j]!.push(id);
        options.onToken?.({
          prompt: group.rows[j]!, steered: steering !== undefined, step, id, token: model.tokenizer.idToToken(id) ?? `<${id}>`, logits: row.slice(),
        });
        if (stop.has(id)) { stopped[j] = true; live--; }
      }
      steps++;
      count(1);
    }
  } finally {
    cache?.dispose();
  }
  if (steps < N) count(N - steps);
  return out.map((ids, j) => ({ ids, text: model.tokenizer.decode(ids), stoppedBy: stopped[j] ? 'stop-token' : 'length', decoding: job.decoding }));
}

/** Last-position logits [batch × vocab] of one forward over `feed` [batch, seq] (continuing `cache` when given). */
async function nextLogits(model: Model, feed: Int32Array, batch: number, seq: number, edits: ReadonlyMap<string, Edit> | undefined,
  cache: KvCache | undefined): Promise<Float32Array> {
  let rows: Float32Array | undefined;
  await model.ops.scope(async () => {
    const tokens = model.tokens(feed, batch, seq);
    const { logits } = await model.forward(tokens, { edits, cache, logits: { lastOnly: true } });
    rows = await f32(logits!);
  });
  return rows!;
}
