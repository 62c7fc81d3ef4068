// Prompt batches: the token ids and answer ids the algorithms run on. A batch holds prompts of
// one token length (no padding), so examples are grouped by length before chunking.

import { InputError } from '../errors.js';
import type { Example } from './examples.js';

export interface PromptBatch {
  /** Number of prompts. */
  readonly size: number;
  /** Tokens per prompt. */
  readonly seq: number;
  /** Clean prompt ids, row-major [size, seq]. */
  readonly clean: Int32Array;
  /** Patch prompt ids [size, seq]; absent in single-prompt mode. */
  readonly patch?: Int32Array;
  /** Answer id per clean prompt. */
  readonly cleanAnswer: Int32Array;
  /** Answer id per patch prompt (paired mode). */
  readonly patchAnswer?: Int32Array;
  /** Index of each row in the example list it came from. */
  readonly exampleIndex: readonly number[];
}

/** Paired batches of at most `batchSize` examples, grouped by prefix length (in order of first appearance). */
export function batchExamples(examples: readonly Example[], batchSize: number): PromptBatch[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batch size must be a positive integer, got ${batchSize}`, 'pass --batch-size B with B ≥ 1');
  const byLength = new Map<number, number[]>();
  examples.forEach((e, i) => {
    const list = byLength.get(e.cleanIds.length) ?? [];
    list.push(i);
    byLength.set(e.cleanIds.length, list);
  });
  const out: PromptBatch[] = [];
  for (const [seq, idx] of byLength) {
    for (let start = 0; start < idx.length; start += batchSize) {
      const rows = idx.slice(start, start + batchSize);
      const clean = new Int32Array(rows.length * seq);
      const patch = new Int32Array(rows.length * seq);
      rows.forEach((ei, r) => {
        const e = examples[ei]!;
        if (e.patchIds.length !== seq) throw new InputError(`example on line ${e.line}: clean and patch prefixes differ in length`);
        clean.set(e.cleanIds, r * seq);
        patch.set(e.patchIds, r * seq);
      });
      out.push({
        size: rows.length, seq, clean, patch,
        cleanAnswer: Int32Array.from(rows, (i) => examples[i]!.cleanAnswerId),
        patchAnswer: Int32Array.from(rows, (i) => examples[i]!.patchAnswerId),
        exampleIndex: rows,
      });
    }
  }
  return out;
}

/** A single-prompt batch (no patch): the prompts must have equal token length. */
export function singlePromptBatch(ids: readonly (readonly number[])[], answers: readonly number[]): PromptBatch {
  if (ids.length === 0) throw new InputError('no prompts given');
  if (answers.length !== ids.length) throw new InputError(`${ids.length} prompts but ${answers.length} answers`);
  const seq = ids[0]!.length;
  if (seq === 0) throw new InputError('a prompt has no tokens');
  if (ids.some((r) => r.length !== seq)) throw new InputError(`prompts of different token lengths (${ids.map((r) => r.length).join(', ')})`, 'run prompts of different lengths separately');
  const clean = new Int32Array(ids.length * seq);
  ids.forEach((r, i) => clean.set(r, i * seq));
  return { size: ids.length, seq, clean, cleanAnswer: Int32Array.from(answers), exampleIndex: ids.map((_, i) => i) };
}

/** Total number of prompts over batches. */
export function countPrompts(batches: readonly PromptBatch[]): number {
  return batches.reduce((n, b) => n + b.size, 0);
}
