// Prompt batches: the token ids and answer ids the algorithms run on. Examples of one token length
// make pad-free batches; prompts of mixed lengths are right-padded, with each row's real length in
// `lengths`. In a causal model a real token attends only to earlier (real) tokens, so with right
// padding every real position computes exactly what it computes alone, at its own positions
// 0..len−1; the algorithms read each row's metric at its last real token and give pad positions no
// effect (docs/concepts.md, "Prompts of different lengths").

import { InputError } from '../errors.js';
import type { Example } from './examples.js';

/** The token id written at pad positions (any valid id: nothing at a pad position is read). */
export const PAD_ID = 0;

export interface PromptBatch {
  /** Number of prompts. */
  readonly size: number;
  /** Tokens per row (the longest prompt's length when padded). */
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
  /**
   * Real tokens per row when the batch is right-padded (rows shorter than `seq` end in PAD_ID);
   * absent when every row has `seq` tokens. A paired example's clean and patch prompts have one length.
   */
  readonly lengths?: Int32Array;
}

/** Token count of row b. */
export function rowLength(batch: PromptBatch, b: number): number {
  return batch.lengths ? batch.lengths[b]! : batch.seq;
}

/** Rows right-padded to the longest: ids [rows × seq] and the lengths (undefined when all are equal). */
export function padRows(rows: readonly (readonly number[])[]): { ids: Int32Array; seq: number; lengths?: Int32Array } {
  const seq = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * seq).fill(PAD_ID);
  rows.forEach((r, i) => ids.set(r, i * seq));
  const ragged = rows.some((r) => r.length !== seq);
  return { ids, seq, ...(ragged ? { lengths: Int32Array.from(rows, (r) => r.length) } : {}) };
}

/** One batch of the examples `rows` (indices into `examples`). */
function makeBatch(examples: readonly Example[], rows: readonly number[]): PromptBatch {
  const es = rows.map((i) => examples[i]!);
  const clean = padRows(es.map((e) => e.cleanIds));
  const paired = es[0]!.patchIds !== undefined;
  let patch: Int32Array | undefined;
  if (paired) {
    for (const e of es) {
      if (!e.patchIds || e.patchAnswerId === undefined) throw new InputError(`example on line ${e.line} is a single prompt among pairs`, 'run pairs and single prompts separately');
      if (e.patchIds.length !== e.cleanIds.length) throw new InputError(`example on line ${e.line}: clean and patch prefixes differ in length`);
    }
    patch = padRows(es.map((e) => e.patchIds!)).ids;
  } else if (es.some((e) => e.patchIds !== undefined)) {
    throw new InputError(`example on line ${es.find((e) => e.patchIds !== undefined)!.line} is a pair among single prompts`, 'run pairs and single prompts separately');
  }
  return {
    size: rows.length, seq: clean.seq, clean: clean.ids,
    ...(patch ? { patch, patchAnswer: Int32Array.from(es, (e) => e.patchAnswerId!) } : {}),
    cleanAnswer: Int32Array.from(es, (e) => e.cleanAnswerId),
    exampleIndex: [...rows],
    ...(clean.lengths ? { lengths: clean.lengths } : {}),
  };
}

/**
 * Batches of at most `batchSize` examples. Examples of one token length make pad-free batches (as
 * before: grouped by length, in order of first appearance); when lengths differ, batches follow the
 * examples' order and are right-padded (as the reference batches its examples).
 */
export function batchExamples(examples: readonly Example[], batchSize: number): PromptBatch[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batch size must be a positive integer, got ${batchSize}`, 'pass --batch-size B with B ≥ 1');
  const out: PromptBatch[] = [];
  const idx = examples.map((_, i) => i);
  for (let start = 0; start < idx.length; start += batchSize) out.push(makeBatch(examples, idx.slice(start, start + batchSize)));
  return out;
}

/** A single-prompt batch (no patch); prompts of different token lengths are right-padded. */
export function singlePromptBatch(ids: readonly (readonly number[])[], answers: readonly number[]): PromptBatch {
  if (ids.length === 0) throw new InputError('no prompts given');
  if (answers.length !== ids.length) throw new InputError(`${ids.length} prompts but ${answers.length} answers`);
  if (ids.some((r) => r.length === 0)) throw new InputError('a prompt has no tokens');
  const p = padRows(ids);
  return { size: ids.length, seq: p.seq, clean: p.ids, cleanAnswer: Int32Array.from(answers), exampleIndex: ids.map((_, i) => i), ...(p.lengths ? { lengths: p.lengths } : {}) };
}

/** Total number of prompts over batches. */
export function countPrompts(batches: readonly PromptBatch[]): number {
  return batches.reduce((n, b) => n + b.size, 0);
}
