// Steered text generation, greedy or sampled, with the steering applied at its positions on
// every step (generated tokens included). The backend has no KV cache yet, so each step re-runs
// the whole prefix from position 0; edits are position-wise, so this computes exactly what a
// cached run would. `generateSideBySide` runs the same prompt and seed without and with steering.

import { InputError, type Model } from '@sfc/core';
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
  /** Called after every token. */
  readonly onToken?: (event: { readonly steered: boolean; readonly step: number; readonly id: number; readonly token: string }) => void;
}

export interface Generation {
  /** The generated ids (prompt excluded). */
  readonly ids: readonly number[];
  /** The generated text (decoded ids). */
  readonly text: string;
  readonly stoppedBy: 'length' | 'stop-token';
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
}

/** Generates from `promptIds`, steered when `steering` is given. */
export async function generate(model: Model, promptIds: readonly number[], steering: Steering | undefined,
  options: GenerateOptions): Promise<Generation> {
  if (promptIds.length === 0) throw new InputError('empty prompt', 'give a prompt with at least one token');
  checkOptions(model, promptIds.length, options);
  let patch: PatchState | undefined;
  if (steering) {
    steering.validate(promptIds.length, promptIds.length + options.maxNewTokens - 1, steering.needsPatch ? options.patchPrompt : undefined, 1);
    if (steering.needsPatch) patch = await steering.capturePatch(options.patchPrompt!);
  }
  const sampling = options.sampling ?? GREEDY;
  const random = seededRandom(sampling.kind === 'sample' ? sampling.seed : 0);
  const stop = new Set(options.stopTokens ?? []);
  const ops = model.ops;
  const ids = [...promptIds];
  const out: number[] = [];
  let stoppedBy: Generation['stoppedBy'] = 'length';
  for (let step = 0; step < options.maxNewTokens; step++) {
    let row: Float32Array | undefined;
    await ops.scope(async () => {
      const tokens = model.tokens(Int32Array.from(ids), 1, ids.length);
      const edits = steering?.edits({ promptLength: promptIds.length, patch });
      const { logits } = await model.forward(tokens, { edits, logits: { lastOnly: true } });
      row = await f32(logits!);
    });
    const id = chooseToken(row!, sampling, random);
    ids.push(id);
    out.push(id);
    options.onToken?.({ steered: steering !== undefined, step, id, token: model.tokenizer.idToToken(id) ?? `<${id}>` });
    if (stop.has(id)) { stoppedBy = 'stop-token'; break; }
  }
  return { ids: out, text: model.tokenizer.decode(out), stoppedBy };
}

/** The same prompt and sampling seed without steering (before) and with it (after). */
export async function generateSideBySide(model: Model, prompt: string | readonly number[], steering: Steering,
  options: GenerateOptions): Promise<SideBySide> {
  const promptIds = typeof prompt === 'string' ? model.encode(prompt) : [...prompt];
  const before = await generate(model, promptIds, undefined, options);
  const after = await generate(model, promptIds, steering, options);
  return { prompt: typeof prompt === 'string' ? prompt : model.tokenizer.decode(promptIds), promptIds, before, after };
}
