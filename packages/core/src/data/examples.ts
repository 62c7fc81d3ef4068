// feature-circuits' contrastive-pair datasets (JSON lines with clean_prefix, patch_prefix,
// clean_answer, patch_answer, case) and the reference's example selection: shuffle the lines with
// CPython's random.Random(seed), then walk them keeping pairs whose answers are one token, whose
// prefixes have equal token length and whose tokenization is compositional, optionally only the
// shortest length class, until enough are collected. Files without patch fields (and the
// reference's cluster JSON) are single-prompt data, selected by single-prompts.ts.

import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { InputError, NotFoundError } from '../errors.js';
import { PythonRandom } from './python-random.js';
import { parseLineObject, requireStrings, splitLines, type RawLine } from './json-lines.js';
import { detectData, selectSinglePrompts } from './single-prompts.js';
import { tooManyChars } from './too-long.js';

export { splitLines } from './json-lines.js';

/** One example: a contrastive pair, or a single prompt (no patch fields; see single-prompts.ts). */
export interface Example {
  readonly cleanPrefix: string;
  readonly cleanAnswer: string;
  readonly case?: string;
  readonly cleanIds: readonly number[];
  readonly cleanAnswerId: number;
  /** Patch prompt and answer: present for pairs, absent for single prompts. */
  readonly patchPrefix?: string;
  readonly patchAnswer?: string;
  readonly patchIds?: readonly number[];
  readonly patchAnswerId?: number;
  /** 1-based line in the source file (cluster JSON: 1-based entry number). */
  readonly line: number;
  /** The entry's key in a cluster JSON file. */
  readonly id?: string;
}

export type SkipReason =
  | 'blank'                  // an empty line
  | 'unknown-token'          // the tokenizer cannot encode a field
  | 'answer-not-one-token'   // clean or patch answer is not exactly one token
  | 'prefix-length-mismatch' // clean and patch prefixes differ in token length
  | 'not-compositional'      // tokens(prefix + answer) ≠ tokens(prefix) + tokens(answer)
  | 'too-long'               // longer than maxLength
  | 'not-shortest';          // dropped by minLengthOnly (a shorter length class exists)

export const SKIP_REASONS: readonly SkipReason[] = ['blank', 'unknown-token', 'answer-not-one-token', 'prefix-length-mismatch',
  'not-compositional', 'too-long', 'not-shortest'];

/**
 * The part of a tokenizer the loader needs. feature-circuits tokenizes with Hugging Face's default
 * (`tokenizer(text)`: the post-processor's special tokens, e.g. Gemma's BOS) and strips a leading
 * BOS from answers; a tokenizer without `encodeWithSpecialTokens` is used as is.
 */
export interface ExampleTokenizer {
  encodeWithSpecialTokens?(text: string): number[];
  readonly bosId?: number | undefined;
  encode(text: string): number[];
  /** Longest token string: with maxLength, a prefix longer than maxLength × 4 × this is skipped as too-long without tokenizing it. */
  readonly maxTokenChars?: number;
}

export interface SelectExamplesOptions {
  readonly numExamples: number;
  /** Shuffle seed (CPython random.Random(seed).shuffle); default 12 as the reference; null keeps file order. */
  readonly seed?: number | null;
  /** Keep only the shortest prefix length found (the reference's use_min_length_only); default true. */
  readonly minLengthOnly?: boolean;
  /** Skip prefixes longer than this many tokens (the model's context: longer prompts cannot run). */
  readonly maxLength?: number;
  /** Name used in messages (the file name). */
  readonly source?: string;
  /** Called when fewer usable examples exist than asked for. */
  readonly onWarning?: (message: string) => void;
}

export interface ExampleSelection {
  readonly examples: Example[];
  /** Contrastive pairs (true) or single prompts (false), as detected from the file. */
  readonly paired: boolean;
  readonly requested: number;
  /** Lines in the file. */
  readonly lines: number;
  /** Lines looked at before enough examples were found (in shuffled order). */
  readonly linesExamined: number;
  readonly skipped: Readonly<Record<SkipReason, number>>;
  readonly source: string;
}


interface Fields {
  readonly clean_prefix: string;
  readonly patch_prefix: string;
  readonly clean_answer: string;
  readonly patch_answer: string;
  readonly case?: string;
}

const REQUIRED = ['clean_prefix', 'patch_prefix', 'clean_answer', 'patch_answer'] as const;

function parseFields(raw: RawLine, source: string): Fields | undefined {
  const obj = parseLineObject(raw, source);
  if (!obj) return undefined;
  requireStrings(obj, REQUIRED, `${source} line ${raw.line}`);
  return obj as unknown as Fields;
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

type Tokenized = { ok: true; example: Example } | { ok: false; reason: SkipReason };

function tokenizeLine(fields: Fields, line: number, tok: ExampleTokenizer, maxLength: number | undefined): Tokenized {
  if (tooManyChars(fields.clean_prefix, maxLength, tok) || tooManyChars(fields.patch_prefix, maxLength, tok)) return { ok: false, reason: 'too-long' };
  let cleanIds: number[], patchIds: number[], cleanAns: number[], patchAns: number[], cleanFull: number[], patchFull: number[];
  const ids = (text: string) => (tok.encodeWithSpecialTokens ? tok.encodeWithSpecialTokens(text) : tok.encode(text));
  const answer = (text: string) => { const a = ids(text); return a.length > 0 && a[0] === tok.bosId ? a.slice(1) : a; };
  try {
    cleanIds = ids(fields.clean_prefix);
    patchIds = ids(fields.patch_prefix);
    cleanAns = answer(fields.clean_answer);
    patchAns = answer(fields.patch_answer);
    cleanFull = ids(fields.clean_prefix + fields.clean_answer);
    patchFull = ids(fields.patch_prefix + fields.patch_answer);
  } catch (e) {
    if (e instanceof InputError) return { ok: false, reason: 'unknown-token' };
    throw e;
  }
  // Same order of checks as the reference loader.
  if (cleanAns.length !== 1 || patchAns.length !== 1) return { ok: false, reason: 'answer-not-one-token' };
  if (cleanIds.length !== patchIds.length) return { ok: false, reason: 'prefix-length-mismatch' };
  if (!sameIds([...cleanIds, ...cleanAns], cleanFull) || !sameIds([...patchIds, ...patchAns], patchFull)) {
    return { ok: false, reason: 'not-compositional' };
  }
  if (maxLength !== undefined && cleanIds.length > maxLength) return { ok: false, reason: 'too-long' };
  return {
    ok: true,
    example: {
      cleanPrefix: fields.clean_prefix, patchPrefix: fields.patch_prefix,
      cleanAnswer: fields.clean_answer, patchAnswer: fields.patch_answer,
      ...(fields.case !== undefined ? { case: fields.case } : {}),
      cleanIds, patchIds, cleanAnswerId: cleanAns[0]!, patchAnswerId: patchAns[0]!, line,
    },
  };
}

/**
 * Selects examples from the text of a data file exactly as feature-circuits does: contrastive
 * pairs as load_examples (shuffled with `seed`, optionally the shortest length class only), single
 * prompts (JSON lines without patch fields, or cluster JSON) as load_examples_nopair (file order;
 * `seed` and `minLengthOnly` do not apply).
 */
export function selectExamples(text: string, tokenizer: ExampleTokenizer, options: SelectExamplesOptions): ExampleSelection {
  const source = options.source ?? 'data';
  const n = options.numExamples;
  if (!Number.isInteger(n) || n < 1) throw new InputError(`number of examples must be a positive integer, got ${n}`, 'pass --num-examples N with N ≥ 1');
  if (options.maxLength !== undefined && !(Number.isInteger(options.maxLength) && options.maxLength >= 1)) {
    throw new InputError(`maxLength must be a positive integer, got ${options.maxLength}`);
  }
  const data = detectData(text, source);
  if (data.kind === 'single') {
    const skipped = noSkips();
    const sel = selectSinglePrompts(data.entries, tokenizer, { ...options, source }, skipped);
    return finish(sel.examples, { paired: false, requested: n, lines: data.entries.length, linesExamined: sel.linesExamined, skipped, source }, options);
  }
  const raw: RawLine[] = splitLines(text).map((t, i) => ({ line: i + 1, text: t }));
  // Validate every line first, so a malformed file fails before any work (and independently of the seed).
  const parsed = raw.map((r) => parseFields(r, source));
  const order = [...raw.keys()];
  const seed = options.seed === undefined ? 12 : options.seed;
  if (seed !== null) new PythonRandom(seed).shuffle(order);

  const minOnly = options.minLengthOnly ?? true;
  const skipped = noSkips();
  let examples: Example[] = [];
  let minLength = Infinity;
  let examined = 0;
  for (const i of order) {
    if (examples.length >= n) break;
    examined++;
    const fields = parsed[i];
    if (!fields) { skipped.blank++; continue; }
    const t = tokenizeLine(fields, raw[i]!.line, tokenizer, options.maxLength);
    if (!t.ok) { skipped[t.reason]++; continue; }
    if (minOnly) {
      const len = t.example.cleanIds.length;
      if (len < minLength) {
        // A new shortest length: the reference restarts its collection.
        skipped['not-shortest'] += examples.length;
        examples = [];
        minLength = len;
      } else if (len > minLength) {
        skipped['not-shortest']++;
        continue;
      }
    }
    examples.push(t.example);
  }
  return finish(examples, { paired: true, requested: n, lines: raw.length, linesExamined: examined, skipped, source }, options);
}

function noSkips(): Record<SkipReason, number> {
  return Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;
}

/** The selection, or an InputError when nothing is usable; a warning when fewer than asked for. */
function finish(examples: Example[], rest: Omit<ExampleSelection, 'examples'>, options: SelectExamplesOptions): ExampleSelection {
  const { source, skipped, requested: n } = rest;
  if (examples.length === 0) {
    throw new InputError(`${source}: no usable examples among ${rest.lines} ${rest.paired ? 'lines' : 'prompts'} (${describeSkips(skipped)})`,
      skipped['too-long'] > 0 && options.maxLength !== undefined
        ? `prefixes may have at most ${options.maxLength} tokens (the model's context); use shorter prompts or a model with a longer context`
        : rest.paired
          ? 'examples need one-token answers and clean/patch prefixes of equal token length; check that the data matches the model\'s tokenizer'
          : 'single prompts need a one-token answer; check that the data matches the model\'s tokenizer');
  }
  if (examples.length < n) {
    options.onWarning?.(`${source}: only ${examples.length} usable examples, fewer than the ${n} asked for (${describeSkips(skipped)}); continuing with ${examples.length}`);
  }
  return { examples, ...rest };
}

export function describeSkips(skipped: Readonly<Record<SkipReason, number>>): string {
  const parts = SKIP_REASONS.filter((r) => skipped[r] > 0).map((r) => `${skipped[r]} ${r}`);
  return parts.length ? `skipped: ${parts.join(', ')}` : 'none skipped';
}

/** Reads a JSON-lines file and selects examples (see selectExamples). */
export async function loadExamples(path: string, tokenizer: ExampleTokenizer, options: SelectExamplesOptions): Promise<ExampleSelection> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`data file ${path} does not exist`, 'pass --data FILE with JSON lines (clean_prefix, patch_prefix, clean_answer, patch_answer)');
    throw new InputError(`cannot read data file ${path}: ${(e as Error).message}`, undefined, { cause: e });
  }
  return selectExamples(text, tokenizer, { source: basename(path), ...options });
}
