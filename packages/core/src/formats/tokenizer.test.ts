// tokenizer.json: unknown words are refused (never a silent unknown token or a dropped
// character) unless the caller opts in, and token ids are validated at load (issue 16).

import { describe, expect, it } from 'vitest';
import { FormatError, InputError } from '../errors.js';
import { tokenizerFromJson } from './tokenizer.js';

const base = { normalizer: null, pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: null, added_tokens: [] };
const bpe = (unk: string | null) => ({
  ...base,
  model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2, c: 3, ...(unk ? { [unk]: 4 } : {}) }, merges: ['a b'], unk_token: unk },
});
const wordLevel = { ...base, model: { type: 'WordLevel', vocab: { the: 0, dog: 1, runs: 2, '<|unk|>': 3 }, unk_token: '<|unk|>' } };

describe('unknown words', () => {
  it('a BPE model without an unknown token refuses a character it cannot encode instead of dropping it', () => {
    const t = tokenizerFromJson(bpe(null));
    expect(t.encode('ab c')).toEqual([2, 3]);
    expect(() => t.encode('ab x c')).toThrow(InputError);
    expect(() => t.encode('é')).toThrow(/unknown characters in 'é' \(not in the tokenizer's vocabulary\)/);
  });

  it('a model with an unknown token refuses unknown words by default, naming the word', () => {
    const t = tokenizerFromJson(wordLevel);
    expect(t.encode('the dog runs')).toEqual([0, 1, 2]);
    expect(() => t.encode('the cat runs')).toThrow(/unknown token 'cat' in 'the cat runs' \(not in the tokenizer's vocabulary\)/);
    expect(() => tokenizerFromJson(bpe('<unk>')).encode('ab x')).toThrow(InputError);
  });

  it('maps unknown words to the unknown token only when the caller opts in, and warns', () => {
    const warnings: string[] = [];
    const t = tokenizerFromJson(wordLevel, {}, 'tokenizer.json', { allowUnknown: true, warn: (m) => warnings.push(m) });
    expect(t.encode('the cat runs')).toEqual([0, 3, 2]);
    expect(warnings).toEqual(["unknown token 'cat' in 'the cat runs': encoded as the unknown token '<|unk|>'"]);
  });

  it("tokenizer_config.json's placeholder unk_token (GPT-2, Pythia) does not make its token unknown", () => {
    const t = tokenizerFromJson({ ...bpe(null), added_tokens: [{ id: 4, content: '<|endoftext|>', special: true }] }, { unk_token: '<|endoftext|>' });
    expect(t.encode('ab<|endoftext|>')).toEqual([2, 4]);
  });
});

describe('token ids at load', () => {
  it('refuses ids outside 0 … 2^31 − 1 (they would wrap in int32 tensors)', () => {
    for (const id of [3567587328, -1, 1.5]) {
      const json = { ...wordLevel, model: { ...wordLevel.model, vocab: { ...wordLevel.model.vocab, dog: id } } };
      expect(() => tokenizerFromJson(json)).toThrow(FormatError);
      expect(() => tokenizerFromJson(json)).toThrow(new RegExp(`token 'dog' has id ${id}, not an integer in 0 … 2147483647`));
    }
    expect(() => tokenizerFromJson({ ...wordLevel, added_tokens: [{ id: 2 ** 32, content: '<x>' }] })).toThrow(/added token '<x>' has id 4294967296/);
  });

  it('reports the vocabulary size as the largest id + 1, so the model check sees every id', () => {
    const t = tokenizerFromJson({ ...wordLevel, added_tokens: [{ id: 1000, content: '<pad>' }] });
    expect(t.vocabSize).toBe(1001);
    expect(t.maxTokenChars).toBe('<|unk|>'.length);
  });
});
