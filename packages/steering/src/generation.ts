// Steered text generation, greedy or sampled, with the steering applied at its positions on
// every step (generated tokens included). With a backend KV cache: one forward over the prompt,
// then one token per step, the edits told each step's position (steered and unsteered runs use
// separate caches: edits at prompt positions change the cached keys and values). Without one,
// each step re-runs the whole prefix — exact too, O(n²). The result says which path ran.
// `generateSideBySide` runs the same prompt and seed without and with steering.

import { CapabilityError, InputError, type Edit, type KvCache, type Model } from '@sfc/core';
import { f32 } from './host-data.js';
import { checkSampling, chooseToken, GREEDY, seededRandom, type Sampling } from './sampling.js';
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

export type Decoding = 'kv-cache' | 'recompute';

export interface TokenEvent {
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

function checkOptions(model: Model, promptLength: number, options: GenerateOptions): void {
  const n = options.maxNewTokens;
  if (!Number.isInteger(n) || n < 1) throw new InputError(`the number of tokens to generate must be a positive integer, got ${n}`, 'use e.g. --generate 20');
  const max = model.spec.dims.maxPositions;
  if (promptLength + n - 1 > max) {
    throw new InputError(`the prompt (${promptLength} tokens) plus ${n} generated tokens exceeds the model's ${max} positions`,
      `generate at most ${max - promptLength + 1} tokens, or shorten the prompt`);
  }
  checkSampling(options.sampling ?? GREEDY);
  const d = options.decoding ?? 'auto';
  if (d !== 'auto' && d !== 'kv-cache' && d !== 'recompute') {
    throw new InputError(`unknown decoding ${JSON.stringify(d)}`, 'use auto, kv-cache or recompute');
  }
}

function decodingFor(model: Model, option: GenerateOptions['decoding']): Decoding {
  if (option === 'recompute') return 'recompute';
  if (model.supportsKvCache) return 'kv-cache';
  if (option === 'kv-cache') {
    throw new CapabilityError(`backend '${model.backend.name}' has no KV cache`, 'use decoding auto or recompute (re-runs the prefix each step), or --backend tfjs or onnx');
  }
  return 'recompute';
}

/** Generates from `promptIds`, steered when `steering` is given. */
export async function generate(model: Model, promptIds: readonly number[], steering: Steering | undefined,
  options: GenerateOptions): Promise<Generation> {
  if (promptIds.length === 0) throw new InputError('empty prompt', 'give a prompt with at least one token');
  checkOptions(model, promptIds.length, options);
  const decoding = decodingFor(model, options.decoding);
  let patch: PatchState | undefined;
  if (steering) {
    steering.validate(promptIds.length, promptIds.length + options.maxNewTokens - 1, steering.needsPatch ? options.patchPrompt : undefined, 1);
    if (steering.needsPatch) patch = await steering.capturePatch(options.patchPrompt!);
  }
  const sampling = options.sampling ?? GREEDY;
  const random = seededRandom(sampling.kind === 'sample' ? sampling.seed : 0);
  const stop = new Set(options.stopTokens ?? []);
  const edits = steering?.edits({ promptLength: promptIds.length, patch });
  const ids = [...promptIds];
  const out: number[] = [];
  let stoppedBy: Generation['stoppedBy'] = 'length';
  // Every position but the last generated one is fed to the model once.
  const cache = decoding === 'kv-cache' ? await model.createKvCache({ batch: 1, maxLength: promptIds.length + options.maxNewTokens - 1 }) : undefined;
  try {
    for (let step = 0; step < options.maxNewTokens; step++) {
      // Cached: only the tokens the cache does not hold yet (the prompt, then the last token).
      const feed = cache ? ids.slice(cache.length) : ids;
      const row = await nextLogits(model, feed, edits, cache);
      const id = chooseToken(row, sampling, random);
      ids.push(id);
      out.push(id);
      options.onToken?.({ steered: steering !== undefined, step, id, token: model.tokenizer.idToToken(id) ?? `<${id}>`, logits: row });
      if (stop.has(id)) { stoppedBy = 'stop-token'; break; }
    }
  } finally {
    cache?.dispose();
  }
  return { ids: out, text: model.tokenizer.decode(out), stoppedBy, decoding };
}

/** Last-position logits of one forward over `feed` (continuing `cache` when given). */
async function nextLogits(model: Model, feed: readonly number[], edits: ReadonlyMap<string, Edit> | undefined, cache: KvCache | undefined): Promise<Float32Array> {
  let row: Float32Array | undefined;
  await model.ops.scope(async () => {
    const tokens = model.tokens(Int32Array.from(feed), 1, feed.length);
    const { logits } = await model.forward(tokens, { edits, cache, logits: { lastOnly: true } });
    row = await f32(logits!);
  });
  return row!;
}

/** The same prompt and sampling seed without steering (before) and with it (after). */
export async function generateSideBySide(model: Model, prompt: string | readonly number[], steering: Steering,
  options: GenerateOptions): Promise<SideBySide> {
  const promptIds = typeof prompt === 'string' ? model.encode(prompt) : [...prompt];
  const before = await generate(model, promptIds, undefined, options);
  const after = await generate(model, promptIds, steering, options);
  return { prompt: typeof prompt === 'string' ? prompt : model.tokenizer.decode(promptIds), promptIds, before, after };
}
