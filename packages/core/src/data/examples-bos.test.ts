// Example selection with today's tokenizers, as feature-circuits' load_examples does it:
// prefixes carry the BOS the tokenizer's post-processor adds, answers have it stripped.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tokenizerFromJson } from '../formats/tokenizer.js';
import { selectExamples } from './examples.js';

const DIR = join(__dirname, '..', '..', '..', '..', 'fixtures', 'tokenizers');
const family = (name: string) => {
  const tok = tokenizerFromJson(JSON.parse(readFileSync(join(DIR, name, 'tokenizer.json'), 'utf8')));
  const cases = (JSON.parse(readFileSync(join(DIR, name, 'expected.json'), 'utf8')) as { cases: { text: string; ids: number[]; ids_with_special: number[] }[] }).cases;
  const ref = (text: string) => cases.find((c) => c.text === text)!;
  return { tok, ref };
};
const line = JSON.stringify({ clean_prefix: 'The knight that the women help', patch_prefix: 'The knight that the women help', clean_answer: ' was', patch_answer: ' were' });

describe('selectExamples with BOS-prepending tokenizers', () => {
  it.each(['gemma', 'llama3'])('%s: prefix ids start with BOS (the model runs on them), answers are one token after stripping BOS', (name) => {
    const { tok, ref } = family(name);
    const sel = selectExamples(line, tok, { numExamples: 1, seed: null });
    const ex = sel.examples[0]!;
    expect(ex.cleanIds).toEqual(ref('The knight that the women help').ids_with_special);
    expect(ex.cleanIds[0]).toBe(tok.bosId);
    expect(ex.cleanAnswerId).toBe(ref(' was').ids[0]);
    expect(ex.patchAnswerId).toBe(ref(' were').ids[0]);
  });

  it('qwen2: no BOS, ids as without special tokens', () => {
    const { tok, ref } = family('qwen2');
    const ex = selectExamples(line, tok, { numExamples: 1, seed: null }).examples[0]!;
    expect(ex.cleanIds).toEqual(ref('The knight that the women help').ids);
  });

  it("llama2: ' was' is two tokens ('▁', '▁was': the normalizer prepends '▁'), so the pair is skipped as the reference skips it", () => {
    const { tok } = family('llama2');
    expect(() => selectExamples(line, tok, { numExamples: 1, seed: null })).toThrow(/no usable examples among 1 lines \(skipped: 1 answer-not-one-token\)/);
  });
});
