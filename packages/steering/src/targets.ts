// What a steer is meant to produce, per prompt: the next tokens that count as on target. By
// default (scoring.ts) a paired prompt's target is its patch answer (" were" for a " was"
// prompt). Two other sources: tokens the user names (`--target " were"`, any data), and the
// answers of a dataset's case — every patch answer among the prompts sharing a prompt's `case`
// (feature-circuits' field, e.g. singular_plural), so a singular prompt counts as on target when
// the steered model's top-1 is any of the plural verb forms the data uses (" were", " are",
// " have", " do"), not only its own patch answer. See docs/concepts.md (steering outcome).

import { InputError, selectExamples, type ExampleTokenizer } from '@sfc/core';
import type { ScoreBatch } from './scoring.js';

/**
 * The batches with explicit targets: `targetsOf(example)` gives row r's target ids, where
 * example is the row's exampleIndex (or its running index over all batches without one).
 */
export function withTargets<B extends ScoreBatch>(batches: readonly B[], targetsOf: (example: number) => readonly number[]): B[] {
  let offset = 0;
  return batches.map((b) => {
    const targets = Array.from({ length: b.size }, (_, r) => targetsOf(b.exampleIndex?.[r] ?? offset + r));
    offset += b.size;
    return { ...b, targets };
  });
}

/** Example fields targetsByCase reads (core's Example has them). */
export interface CaseExample {
  readonly case?: string;
  /** Absent for single-prompt data (no patch answers: no case answers either). */
  readonly patchAnswerId?: number;
}

/**
 * Per example: every patch answer among the `pool` examples of its case (ids ascending). The
 * pool defaults to the examples themselves; pass every example of the data file
 * (caseAnswerPool) so a small selection still sees all of its cases' answers.
 */
export function targetsByCase(examples: readonly CaseExample[], pool: readonly CaseExample[] = examples): (example: number) => readonly number[] {
  const noCase = (i: number) => new InputError(`example ${i} has no "case" field, so its case's answers are unknown`, 'give the target tokens instead (--target TOKEN)');
  const byCase = new Map<string, Set<number>>();
  pool.forEach((e, i) => {
    if (e.case === undefined) throw noCase(i);
    if (e.patchAnswerId === undefined) {
      throw new InputError(`example ${i} has no patch answer, so its case has no answers to target`, 'give the target tokens instead (--target TOKEN)');
    }
    const set = byCase.get(e.case) ?? new Set<number>();
    set.add(e.patchAnswerId);
    byCase.set(e.case, set);
  });
  const lists = new Map([...byCase].map(([c, set]) => [c, [...set].sort((a, b) => a - b)]));
  examples.forEach((e, i) => {
    if (e.case === undefined) throw noCase(i);
    if (!lists.has(e.case)) throw new InputError(`example ${i}: case "${e.case}" has no examples in the answer pool`, 'build the pool from the same data file');
  });
  return (i) => {
    const e = examples[i];
    if (!e) throw new InputError(`no example ${i} (${examples.length} examples)`);
    return lists.get(e.case!)!;
  };
}

/** Every usable example of a data file's text (any length, file order): the pool for targetsByCase. */
export function caseAnswerPool(text: string, tokenizer: ExampleTokenizer, source?: string): CaseExample[] {
  const lines = text.split('\n').length;
  return selectExamples(text, tokenizer, { numExamples: lines, seed: null, minLengthOnly: false, ...(source ? { source } : {}) }).examples;
}
