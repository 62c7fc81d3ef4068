// The too-long check that needs no tokenizing: a prompt with more characters than the model's
// context can cover in tokens is skipped before it is tokenized (a 50 MB line would take seconds
// and gigabytes). Shared by the pair and single-prompt loaders.

import type { ExampleTokenizer } from './examples.js';

/**
 * Characters one token can stand for, at most, relative to its string in the vocabulary: a
 * normalizer may shrink the text (accents stripped, NFKC), never by 4× or more.
 */
const CHARS_PER_TOKEN_CHAR = 4;
/** Used when the tokenizer does not say how long its tokens are. */
const DEFAULT_MAX_TOKEN_CHARS = 256;

/** Whether `prefix` is longer than `maxLength` tokens whatever its tokens (false without maxLength). */
export function tooManyChars(prefix: string, maxLength: number | undefined, tok: ExampleTokenizer): boolean {
  if (maxLength === undefined) return false;
  return prefix.length > maxLength * CHARS_PER_TOKEN_CHAR * (tok.maxTokenChars ?? DEFAULT_MAX_TOKEN_CHARS);
}
