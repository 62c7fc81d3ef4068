// tokenizer.json (Hugging Face) → ids, through @huggingface/tokenizers (pure JS, offline).
// Adds what sfc needs on top: strict unknown-token detection and clear errors.

import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { bosTokenId } from './special-tokens.js';
import { FormatError, InputError, NotFoundError } from '../errors.js';

export interface Tokenizer {
  /** Token ids of `text` (no special tokens added). Throws InputError on unknown words when the vocabulary has no unk token. */
  encode(text: string): number[];
  /**
   * Token ids of `text` with the special tokens tokenizer.json's post-processor adds (Gemma's
   * `<bos>`, Llama 3's `<|begin_of_text|>`; nothing for GPT-2, Pythia, Qwen): what Hugging Face's
   * `tokenizer(text)` returns by default, so what feature-circuits runs the model on.
   */
  encodeWithSpecialTokens(text: string): number[];
  /**
   * The BOS id (tokenizer_config.json's `bos_token`, else the one token the post-processor gives
   * an empty text), or undefined. feature-circuits strips it from the front of answers.
   */
  readonly bosId: number | undefined;
  decode(ids: readonly number[]): string;
  /** The string of one token id (e.g. ' is'), or undefined. */
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  readonly vocabSize: number;
  /** Id of the unknown token, if the vocabulary has one. */
  readonly unkId: number | undefined;
}

const REQUIRED_KEYS = ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder'] as const;

export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const path = join(dir, 'tokenizer.json');
  if (!existsSync(path)) throw new NotFoundError(`no tokenizer.json in ${dir}`, 'copy the tokenizer.json that came with the model into the model folder');
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new FormatError(`${path} is not valid JSON: ${(e as Error).message}`, 'restore the tokenizer.json saved with the model');
  }
  let config: Record<string, unknown> = {};
  const cfgPath = join(dir, 'tokenizer_config.json');
  if (existsSync(cfgPath)) {
    try { config = JSON.parse(await readFile(cfgPath, 'utf8')); } catch (e) {
      throw new FormatError(`${cfgPath} is not valid JSON: ${(e as Error).message}`);
    }
  }
  return tokenizerFromJson(json, config, path);
}

export function tokenizerFromJson(json: Record<string, unknown>, config: Record<string, unknown> = {}, source = 'tokenizer.json'): Tokenizer {
  if (typeof json !== 'object' || json === null || typeof json.model !== 'object' || json.model === null) {
    throw new FormatError(`${source}: no 'model' section`, 'expected a Hugging Face tokenizers file (tokenizer.json)');
  }
  const model = json.model as Record<string, unknown>;
  const filled: Record<string, unknown> = { ...json };
  for (const k of REQUIRED_KEYS) if (!(k in filled)) filled[k] = null;
  const vocab = (model.vocab ?? {}) as Record<string, number> | [string, number][];
  const unkToken = (model.unk_token as string | undefined) ?? (config.unk_token as string | undefined);
  const cfg = { ...config };
  if (unkToken && !cfg.unk_token) cfg.unk_token = unkToken;
  let tok: HfTokenizer;
  try {
    tok = new HfTokenizer(filled, cfg);
  } catch (e) {
    throw new FormatError(`${source}: cannot build the tokenizer (${(e as Error).message})`, 'supported models: BPE (byte-level, as GPT-2/Pythia), WordLevel, WordPiece, Unigram');
  }
  const unkId = unkToken !== undefined ? tok.token_to_id(unkToken) : undefined;
  const addedCount = Array.isArray(json.added_tokens) ? json.added_tokens.length : 0;
  const vocabSize = Math.max(Array.isArray(vocab) ? vocab.length : Object.keys(vocab).length, addedCount);
  return {
    encode(text: string): number[] {
      const enc = tok.encode(text, { add_special_tokens: false });
      const ids = enc.ids as (number | undefined)[];
      const bad = ids.findIndex((id) => id === undefined || id === null);
      if (bad >= 0) {
        throw new InputError(`unknown token '${enc.tokens[bad]}' in ${JSON.stringify(text)}`,
          'the tokenizer has no unknown-token id; use only words from the model\'s vocabulary');
      }
      return ids as number[];
    },
    encodeWithSpecialTokens(text: string): number[] {
      this.encode(text); // checks every id of the text; the special tokens are in the vocabulary
      return tok.encode(text, { add_special_tokens: true }).ids as number[];
    },
    bosId: bosTokenId(config, (t) => tok.token_to_id(t), () => tok.encode('', { add_special_tokens: true }).ids as number[]),
    decode: (ids) => (ids.length === 0 ? '' : tok.decode([...ids], { skip_special_tokens: false })), // the library refuses []
    idToToken: (id) => tok.id_to_token(id),
    tokenToId: (t) => tok.token_to_id(t),
    vocabSize,
    unkId,
  };
}
