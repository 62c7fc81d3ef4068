import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.js';
import { mergeTopContexts, parseTopContexts, serializeTopContexts, tokenPieces, topContextsFiles, type TopContextsFile } from './top-contexts-file.js';

const WORDS = ['The', 'cats', 'that', 'the', 'dog', 'sees', 'are'];
/** A word-level tokenizer's decode: words joined with spaces (decoding one token loses them). */
const decode = (ids: readonly number[]) => ids.map((i) => WORDS[i]).join(' ');

describe('top-context files', () => {
  it('keeps the spaces a tokenizer puts between tokens', () => {
    expect(tokenPieces(decode, [0, 1, 2])).toEqual(['The', ' cats', ' that']);
    expect(tokenPieces(decode, [0, 1, 2]).join('')).toBe(decode([0, 1, 2]));
  });

  it('cuts contexts at their row, marks the token, round-trips and merges', () => {
    const tokens = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 0]);
    const result = { seqLen: 4, tokens: 8, features: new Map([['resid_0', new Map([[7, [{ token: 5, value: 2.5 }, { token: 1, value: 1 }]]])]]) };
    const meta = { sae: { path: '/s', hash: 'h1' }, model: {}, corpus: { path: 'c', hash: 'c1', tokens: 8 }, k: 2, before: 3, after: 5 };
    const [file] = topContextsFiles(result, tokens, decode, () => meta);
    // Token 5 is in the row of tokens 4–7: 1 before it in the row, 2 after.
    expect(file!.features['7']![0]).toEqual({ value: 2.5, tokens: ['dog', ' sees', ' are', ' The'], at: 1 });
    expect(file!.features['7']![1]).toEqual({ value: 1, tokens: ['The', ' cats', ' that', ' the'], at: 1 });
    const back = parseTopContexts(serializeTopContexts(file!));
    expect(back).toEqual(file);
    const other: TopContextsFile = { ...file!, features: { 9: [] } };
    expect(Object.keys(mergeTopContexts(file, other).features)).toEqual(['7', '9']);
    expect(Object.keys(mergeTopContexts({ ...file!, corpus: { ...file!.corpus, hash: 'c2' } }, other).features)).toEqual(['9']);
    expect(() => parseTopContexts(JSON.stringify({ ...file, features: { 7: [{ value: 1, tokens: ['a'], at: 3 }] } }))).toThrow(FormatError);
  });
});
