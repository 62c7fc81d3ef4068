// Today's tokenizer.json families (Gemma, Llama 2/Mistral, Llama 3, Qwen 2) against Hugging Face's
// Rust tokenizers: hand-made files and ids from tools/refgen/make_tokenizers.py.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tokenizerFromJson } from './tokenizer.js';

const DIR = join(__dirname, '..', '..', '..', '..', 'fixtures', 'tokenizers');

interface Case { text: string; ids: number[]; tokens: string[]; ids_with_special: number[]; decoded: string }
const load = (family: string) => ({
  json: JSON.parse(readFileSync(join(DIR, family, 'tokenizer.json'), 'utf8')) as Record<string, unknown>,
  expected: JSON.parse(readFileSync(join(DIR, family, 'expected.json'), 'utf8')) as { cases: Case[] },
});

const BOS: Record<string, [string, number] | undefined> = {
  gemma: ['<bos>', 2], llama2: ['<s>', 1], llama3: ['<|begin_of_text|>', 0], qwen2: undefined,
};

describe.each(Object.keys(BOS))('tokenizer.json family %s', (family) => {
  const { json, expected } = load(family);
  const tok = tokenizerFromJson(json, {}, `${family}/tokenizer.json`);

  it('encodes every case as Hugging Face tokenizers does, with and without special tokens, and decodes back', () => {
    for (const c of expected.cases) {
      expect(tok.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
      expect(tok.encodeWithSpecialTokens(c.text), JSON.stringify(c.text)).toEqual(c.ids_with_special);
      expect(c.ids.map((i) => tok.idToToken(i))).toEqual(c.tokens);
      expect(tok.decode(c.ids)).toBe(c.decoded);
    }
  });

  it('reads merges saved as "a b" strings (older tokenizers releases, e.g. Gemma 2\'s and Llama 2\'s files) the same', () => {
    const old = { ...json, model: { ...(json.model as Record<string, unknown>), merges: ((json.model as { merges: string[][] }).merges).map((m) => m.join(' ')) } };
    const t = tokenizerFromJson(old);
    for (const c of expected.cases) expect(t.encodeWithSpecialTokens(c.text), JSON.stringify(c.text)).toEqual(c.ids_with_special);
  });

  it('finds the BOS the post-processor prepends (none for Qwen), and prefers tokenizer_config.json', () => {
    const bos = BOS[family];
    expect(tok.bosId).toBe(bos?.[1]);
    if (bos) expect(tok.idToToken(tok.bosId!)).toBe(bos[0]);
    const eot = family === 'qwen2' ? '<|endoftext|>' : family === 'llama3' ? '<|end_of_text|>' : family === 'gemma' ? '<eos>' : '</s>';
    expect(tokenizerFromJson(json, { bos_token: { content: eot } }).bosId).toBe(tok.tokenToId(eot));
    expect(tokenizerFromJson(json, { bos_token: null }).bosId).toBeUndefined();
  });
});

describe('byte fallback', () => {
  it('spells a character outside the vocabulary as its UTF-8 bytes (<0xE2><0x98><0x83> for ☃) and decodes it back', () => {
    const { json } = load('gemma');
    const tok = tokenizerFromJson(json);
    const ids = tok.encode('☃');
    expect(ids.map((i) => tok.idToToken(i))).toEqual(['<0xE2>', '<0x98>', '<0x83>']);
    expect(tok.decode(ids)).toBe('☃');
  });
});
