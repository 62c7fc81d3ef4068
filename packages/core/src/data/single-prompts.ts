// Single-prompt data (feature-circuits' --nopair): prompts with one answer and no patch prompt,
// from JSON lines with clean_prefix + clean_answer (no patch fields) or from the reference's
// cluster JSON {"<id>": {"context": ["piece", …], "answer": " x"}, …} (pieces joined with "").
// Selection is the reference's load_examples_nopair: the file's order (no shuffle), keep prompts
// whose answer is one token, stop when enough are collected. Prompt lengths may differ: the
// batches are right-padded (batches.ts). See docs/concepts.md, "Data".

import { InputError } from '../errors.js';
import { quoteName } from '../quote.js';
import type { Example, ExampleSelection, ExampleTokenizer, SelectExamplesOptions, SkipReason } from './examples.js';
import { isPairedLine, parseLineObject, requireStrings, splitLines } from './json-lines.js';
import { tooManyChars } from './too-long.js';

/** One single prompt as read from the file, before tokenization. */
export interface SinglePromptEntry {
  readonly prefix: string;
  readonly answer: string;
  readonly case?: string;
  /** 1-based line (JSON lines) or entry number (cluster JSON). */
  readonly line: number;
  /** The cluster JSON key. */
  readonly id?: string;
}

/** What a data file holds: contrastive pairs (left to examples.ts) or single prompts. */
export type DataKind = { readonly kind: 'paired' } | { readonly kind: 'single'; readonly entries: readonly (SinglePromptEntry | undefined)[] };

function clusterEntries(obj: Record<string, unknown>, source: string): SinglePromptEntry[] {
  return Object.entries(obj).map(([id, v], i) => {
    const where = `${source} entry ${quoteName(id)}`;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError(`${where} is not an object`, 'each entry must be {"context": ["piece", …], "answer": " x"}');
    const e = v as Record<string, unknown>;
    if (!Array.isArray(e.context) || !e.context.every((p) => typeof p === 'string')) {
      throw new InputError(`${where}: 'context' must be a list of strings`, 'each entry must be {"context": ["piece", …], "answer": " x"}');
    }
    if (typeof e.answer !== 'string') throw new InputError(`${where}: 'answer' must be a string, got ${JSON.stringify(e.answer)}`);
    return { prefix: (e.context as string[]).join(''), answer: e.answer, line: i + 1, id };
  });
}

/** A cluster JSON file: one JSON object whose values are objects with a `context` list. */
function asCluster(text: string): Record<string, unknown> | undefined {
  const trimmed = text.replace(/^\ufeff/, '').trim();
  if (!trimmed.startsWith('{')) return undefined;
  let data: unknown;
  try { data = JSON.parse(trimmed); } catch { return undefined; }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  const values = Object.values(data as Record<string, unknown>);
  const isEntry = (v: unknown) => typeof v === 'object' && v !== null && 'context' in v;
  return values.length > 0 && values.some(isEntry) ? data as Record<string, unknown> : undefined;
}

/**
 * Detects the kind of data in a file. JSON lines are pairs when their first non-blank line has a
 * patch field, single prompts otherwise; a line of the other kind is an InputError naming it.
 */
export function detectData(text: string, source: string): DataKind {
  const cluster = asCluster(text);
  if (cluster) return { kind: 'single', entries: clusterEntries(cluster, source) };
  const objs = splitLines(text).map((t, i) => ({ line: i + 1, obj: parseLineObject({ line: i + 1, text: t }, source) }));
  const first = objs.find((o) => o.obj !== undefined);
  if (!first || isPairedLine(first.obj!)) {
    const single = objs.find((o) => o.obj !== undefined && !isPairedLine(o.obj));
    if (single) throw mixed(source, single.line, first!.line);
    return { kind: 'paired' };
  }
  const pair = objs.find((o) => o.obj !== undefined && isPairedLine(o.obj));
  if (pair) throw mixed(source, first.line, pair.line);
  return {
    kind: 'single',
    entries: objs.map(({ line, obj }) => {
      if (!obj) return undefined;
      requireStrings(obj, ['clean_prefix', 'clean_answer'], `${source} line ${line}`);
      return { prefix: obj.clean_prefix as string, answer: obj.clean_answer as string, line, ...(typeof obj.case === 'string' ? { case: obj.case } : {}) };
    }),
  };
}

function mixed(source: string, singleLine: number, pairLine: number): InputError {
  return new InputError(`${source} line ${singleLine} is a single prompt (no patch_prefix / patch_answer), but line ${pairLine} is a contrastive pair`,
    'a data file holds either pairs (clean_prefix, patch_prefix, clean_answer, patch_answer) or single prompts (clean_prefix, clean_answer); split it into two files');
}

/** The reference's load_examples_nopair on detected entries: file order, one-token answers, at most numExamples. */
export function selectSinglePrompts(entries: readonly (SinglePromptEntry | undefined)[], tokenizer: ExampleTokenizer,
  options: SelectExamplesOptions & { readonly source: string }, skipped: Record<SkipReason, number>): Omit<ExampleSelection, 'requested' | 'lines' | 'skipped' | 'source'> {
  const examples: Example[] = [];
  let examined = 0;
  for (const e of entries) {
    if (examples.length >= options.numExamples) break;
    examined++;
    if (!e) { skipped.blank++; continue; }
    if (tooManyChars(e.prefix, options.maxLength, tokenizer)) { skipped['too-long']++; continue; }
    let ids: number[], ans: number[];
    try {
      ids = tokenizer.encode(e.prefix);
      ans = tokenizer.encode(e.answer);
    } catch (err) {
      if (err instanceof InputError) { skipped['unknown-token']++; continue; }
      throw err;
    }
    if (ans.length !== 1) { skipped['answer-not-one-token']++; continue; }
    if (ids.length === 0) {
      throw new InputError(`${options.source} ${e.id !== undefined ? `entry ${quoteName(e.id)}` : `line ${e.line}`}: the prompt has no tokens`, 'give every prompt some text');
    }
    if (options.maxLength !== undefined && ids.length > options.maxLength) { skipped['too-long']++; continue; }
    examples.push({
      cleanPrefix: e.prefix, cleanAnswer: e.answer, cleanIds: ids, cleanAnswerId: ans[0]!, line: e.line,
      ...(e.case !== undefined ? { case: e.case } : {}), ...(e.id !== undefined ? { id: e.id } : {}),
    });
  }
  return { examples, paired: false, linesExamined: examined };
}
