// Activations for SAE training: runs core's Model over lines of text (one sequence per line, no
// special tokens added, truncated to the context size), in batches of equal token length, and
// keeps every token's output at the requested submodules. Lines are taken in a seeded random
// order until the token budget is full, so a capped buffer is a uniform sample of lines.

import { InputError, isSfcError, PythonRandom, type Model } from '@sfc/core';
import type { ActivationSet } from './relu-sae-trainer.js';

export interface CollectOptions {
  /** sfc submodule names (or aliases) to record. */
  readonly submodules: readonly string[];
  /** Stop after this many tokens (default: all lines). */
  readonly maxTokens?: number;
  /** Sequences per forward pass (default 64). */
  readonly batchSize?: number;
  /** Shuffle seed for the line order (default 0); null keeps file order. */
  readonly seed?: number | null;
  /** Truncate sequences to this many tokens (default and maximum: the model's positions). */
  readonly contextSize?: number;
  /** Name of the text for error messages. */
  readonly source?: string;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface CollectedActivations {
  /** By sfc submodule name. */
  readonly sets: Map<string, ActivationSet>;
  readonly tokens: number;
  readonly sequences: number;
}

/** Non-empty lines of a text (trailing whitespace and CR removed). */
export function textLines(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/\s+$/, '')).filter((l) => l.trim() !== '');
}

export async function collectActivations(model: Model, lines: readonly string[], options: CollectOptions): Promise<CollectedActivations> {
  const ops = model.ops;
  const names = [...new Set(options.submodules.map((s) => model.submodule(s).name))];
  const ctx = Math.min(options.contextSize ?? model.spec.dims.maxPositions, model.spec.dims.maxPositions);
  if (!Number.isInteger(ctx) || ctx < 1) throw new InputError(`context size must be a positive integer, got ${options.contextSize}`);
  const batchSize = Math.max(1, options.batchSize ?? 64);
  const budget = options.maxTokens ?? Infinity;
  const source = options.source ?? 'text';

  const order = lines.map((_, i) => i);
  if (options.seed !== null) {
    const rng = new PythonRandom(options.seed ?? 0);
    for (let k = order.length - 1; k > 0; k--) { const r = rng.randbelow(k + 1); const t = order[k]!; order[k] = order[r]!; order[r] = t; }
  }
  // Tokenize in that order until the budget is met; the last sequence may be cut to fit it.
  const seqs: number[][] = [];
  let tokens = 0;
  for (const i of order) {
    if (tokens >= budget) break;
    let ids: number[];
    try {
      // Only the first ctx tokens are used: a huge line is cut, well past what ctx tokens can
      // cover, before tokenizing (a 50 MB line would otherwise take seconds and gigabytes).
      const line = lines[i]!;
      const maxChars = ctx * 4 * (model.tokenizer.maxTokenChars ?? 256);
      ids = model.tokenizer.encode(line.length > maxChars ? line.slice(0, maxChars) : line);
    } catch (e) {
      if (isSfcError(e)) throw new InputError(`${source}: line ${i + 1} cannot be tokenized: ${e.message}`, e.hint, { cause: e });
      throw e;
    }
    if (ids.length === 0) continue;
    ids = ids.slice(0, Math.min(ctx, budget - tokens));
    seqs.push(ids);
    tokens += ids.length;
  }
  if (tokens === 0) throw new InputError(`${source} has no tokens`, 'give a text file with one or more non-empty lines');

  const dIn = model.spec.dims.dModel;
  const buffers = new Map(names.map((n) => [n, new Float32Array(tokens * dIn)]));
  // Equal lengths share a forward pass (no padding).
  const byLength = new Map<number, number[][]>();
  for (const s of seqs) {
    const list = byLength.get(s.length) ?? [];
    list.push(s);
    byLength.set(s.length, list);
  }
  let row = 0;
  for (const len of [...byLength.keys()].sort((a, b) => a - b)) {
    const group = byLength.get(len)!;
    for (let start = 0; start < group.length; start += batchSize) {
      const batch = group.slice(start, start + batchSize);
      const ids = new Int32Array(batch.length * len);
      batch.forEach((s, b) => ids.set(s, b * len));
      const values = await ops.scope(async () => {
        const r = await model.forward(model.tokens(ids, batch.length, len), { logits: false });
        return new Map(names.map((n) => [n, r.values.get(n)!]));
      });
      for (const n of names) {
        const t = values.get(n)!;
        buffers.get(n)!.set(await t.data() as Float32Array, row * dIn);
        t.dispose();
      }
      row += batch.length * len;
      options.onProgress?.(row, tokens);
    }
  }
  return {
    sets: new Map(names.map((n) => [n, { data: buffers.get(n)!, rows: tokens, dIn }])),
    tokens,
    sequences: seqs.length,
  };
}
