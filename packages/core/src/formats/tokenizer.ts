// tokenizer.json (Hugging Face) → ids, through @huggingface/tokenizers (pure JS, offline).
// Adds what sfc needs on top: strict unknown-token detection (a word the vocabulary does not know
// is an InputError, never a silent unknown token or a dropped character, unless the caller opts
// in), token ids validated at load, and clear errors.

import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { FormatError, InputError, NotFoundError } from '../errors.js';
import { jsonSyntaxError } from '../circuit/json-checks.js';
import { quoteName } from '../quote.js';

export interface Tokenizer {
  /** Token ids of `text` (no special tokens added). Throws InputError on unknown words when the vocabulary has no unk token. */
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** The string of one token id (e.g. ' is'), or undefined. */
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  readonly vocabSize: number;
  /** Id of the unknown token, if the vocabulary has one. */
  readonly unkId: number | undefined;
  /** Longest token string in the vocabulary (UTF-16 units): bounds how much text one token can cover. */
  readonly maxTokenChars?: number;
}

export interface TokenizerOptions {
  /**
   * Map unknown words to the vocabulary's unknown token instead of refusing them (only for
   * tokenizers that have one); `warn` is then told once per text that contains one.
   */
  readonly allowUnknown?: boolean;
  readonly warn?: (message: string) => void;
}

const REQUIRED_KEYS = ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder'] as const;

export async function loadTokenizer(dir: string, options: TokenizerOptions = {}): Promise<Tokenizer> {
  const path = join(dir, 'tokenizer.json');
  if (!existsSync(path)) throw new NotFoundError(`no tokenizer.json in ${dir}`, 'copy the tokenizer.json that came with the model into the model folder');
  let json: Record<string, unknown>;
  const text = await readFile(path, 'utf8');
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${path} is not valid JSON: ${jsonSyntaxError(e, text)}`, 'restore the tokenizer.json saved with the model');
  }
  let config: Record<string, unknown> = {};
  const cfgPath = join(dir, 'tokenizer_config.json');
  if (existsSync(cfgPath)) {
    const cfgText = await readFile(cfgPath, 'utf8');
    try { config = JSON.parse(cfgText); } catch (e) {
      throw new FormatError(`${cfgPath} is not valid JSON: ${jsonSyntaxError(e, cfgText)}`);
    }
  }
  return tokenizerFromJson(json, config, path, options);
}

/** Stands for "no unknown token" in a BPE model, so a character it cannot encode shows up instead of being dropped. */
const UNKNOWN_SENTINEL = '\u0000sfc-unknown\u0000';

/** Largest token id accepted (ids are stored as int32 tensors). */
const MAX_TOKEN_ID = 2 ** 31 - 1;

export function tokenizerFromJson(json: Record<string, unknown>, config: Record<string, unknown> = {}, source = 'tokenizer.json',
  options: TokenizerOptions = {}): Tokenizer {
  if (typeof json !== 'object' || json === null || typeof json.model !== 'object' || json.model === null) {
    throw new FormatError(`${source}: no 'model' section`, 'expected a Hugging Face tokenizers file (tokenizer.json)');
  }
  const model = json.model as Record<string, unknown>;
  const filled: Record<string, unknown> = { ...json };
  for (const k of REQUIRED_KEYS) if (!(k in filled)) filled[k] = null;
  const vocab = (model.vocab ?? {}) as Record<string, number> | [string, number][];
  const unkToken = (model.unk_token as string | undefined) ?? (config.unk_token as string | undefined);
  // The BPE implementation drops a piece it has no token for when the model has no unk_token:
  // give it a sentinel, which then surfaces as an unknown token below.
  if (model.type === 'BPE' && (model.unk_token === undefined || model.unk_token === null)) filled.model = { ...model, unk_token: UNKNOWN_SENTINEL };
  const cfg = { ...config };
  if (unkToken && !cfg.unk_token) cfg.unk_token = unkToken;
  const { maxId, maxTokenChars } = checkTokenIds(vocab, json.added_tokens, source);
  let tok: HfTokenizer;
  try {
    tok = new HfTokenizer(filled, cfg);
  } catch (e) {
    throw new FormatError(`${source}: cannot build the tokenizer (${(e as Error).message})`, 'supported models: BPE (byte-level, as GPT-2/Pythia), WordLevel, WordPiece, Unigram');
  }
  const unkId = unkToken !== undefined ? tok.token_to_id(unkToken) : undefined;
  // Only the model's own unknown token marks unknown words: tokenizer_config.json's unk_token is
  // a placeholder for byte-level BPE models (GPT-2 and Pythia name <|endoftext|>), which encode any text.
  const modelUnkId = typeof model.unk_token === 'string' ? tok.token_to_id(model.unk_token) : undefined;
  return {
    encode(text: string): number[] {
      const enc = tok.encode(text, { add_special_tokens: false });
      const ids = enc.ids as (number | undefined)[];
      // An id the vocabulary lacks (no unknown token, or a BPE piece it would have dropped), or the unknown token itself.
      const missing = ids.findIndex((id) => id === undefined || id === null);
      const unknownAt = missing >= 0 ? missing : modelUnkId === undefined ? -1 : ids.indexOf(modelUnkId);
      if (unknownAt >= 0) {
        const word = enc.tokens[unknownAt];
        const shown = word === UNKNOWN_SENTINEL || word === unkToken ? 'unknown characters' : `unknown token ${quoteName(word)}`;
        if (missing < 0 && options.allowUnknown) {
          options.warn?.(`${shown} in ${quoteName(text)}: encoded as the unknown token ${quoteName(unkToken)}`);
          return ids as number[];
        }
        throw new InputError(`${shown} in ${quoteName(text)} (not in the tokenizer's vocabulary)`,
          modelUnkId === undefined ? 'the tokenizer has no unknown-token id; use only words from the model\'s vocabulary'
            : `use only words from the model's vocabulary (the model would see its unknown token ${quoteName(unkToken)} instead)`);
      }
      return ids as number[];
    },
    decode: (ids) => tok.decode([...ids], { skip_special_tokens: false }),
    idToToken: (id) => tok.id_to_token(id),
    tokenToId: (t) => tok.token_to_id(t),
    vocabSize: maxId + 1,
    unkId,
    maxTokenChars,
  };
}

/**
 * Every id of the vocabulary and the added tokens must be an integer in 0 … 2^31 − 1 (token id
 * tensors are int32: a larger id would wrap around). Returns the largest id and the longest token.
 */
function checkTokenIds(vocab: Record<string, number> | [string, number][], added: unknown, source: string): { maxId: number; maxTokenChars: number } {
  let maxId = -1, maxTokenChars = 1;
  const check = (token: unknown, id: unknown, where: string) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > MAX_TOKEN_ID) {
      throw new FormatError(`${source}: ${where} ${quoteName(String(token))} has id ${typeof id === 'number' ? id : quoteName(JSON.stringify(id) ?? String(id))}, `
        + `not an integer in 0 … ${MAX_TOKEN_ID}`, 'the tokenizer.json is corrupt; use the one saved with the model');
    }
    if (id > maxId) maxId = id;
    if (typeof token === 'string' && token.length > maxTokenChars) maxTokenChars = token.length;
  };
  if (Array.isArray(vocab)) {
    // Unigram: [piece, score] pairs, the id is the position.
    vocab.forEach((entry, i) => check(Array.isArray(entry) ? entry[0] : entry, i, 'token'));
  } else if (typeof vocab === 'object' && vocab !== null) {
    for (const [token, id] of Object.entries(vocab)) check(token, id, 'token');
  }
  if (Array.isArray(added)) {
    for (const a of added) {
      const t = (typeof a === 'object' && a !== null ? a : {}) as Record<string, unknown>;
      check(t.content, t.id, 'added token');
    }
  }
  return { maxId, maxTokenChars };
}
