import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError, InputError, NotFoundError } from '../errors.js';
import { batchExamples, PAD_ID, singlePromptBatch } from './batches.js';
import { loadExamples, selectExamples, splitLines, type ExampleTokenizer } from './examples.js';

/**
 * A toy GPT-2-like tokenizer: one token per space-prefixed word, words longer than 7 characters
 * split in two (so prefix lengths vary), `#` words are unknown. The Python oracle that produced
 * the expected selections below uses the same rule with CPython's random and feature-circuits'
 * load_examples logic (HEAD), so these tests compare against the reference, not against ourselves.
 */
function toyTokenizer(): ExampleTokenizer {
  const vocab = new Map<string, number>();
  return {
    encode(text: string): number[] {
      const out: number[] = [];
      for (const m of text.matchAll(/\s?\S+/g)) {
        const w = m[0];
        if (w.includes('#')) throw new InputError(`unknown token '${w}'`);
        for (const p of w.length > 7 ? [w.slice(0, 4), w.slice(4)] : [w]) {
          if (!vocab.has(p)) vocab.set(p, vocab.size);
          out.push(vocab.get(p)!);
        }
      }
      return out;
    },
  };
}

const line = (cp: string, pp: string, ca: string, pa: string) =>
  JSON.stringify({ clean_prefix: cp, patch_prefix: pp, clean_answer: ca, patch_answer: pa, case: 'x' });

describe('example selection', () => {
  it('splits lines like Python readlines', () => {
    expect(splitLines('a\nb\n')).toEqual(['a', 'b']);
    expect(splitLines('a\r\nb')).toEqual(['a', 'b']);
    expect(splitLines('a\n\nb\n')).toEqual(['a', '', 'b']);
    expect(splitLines('\ufeffa\rb')).toEqual(['a', 'b']);
  });

  it('filters and counts skipped examples by reason', () => {
    const text = [
      line('The dog', 'The dogs', ' runs', ' run'),                 // ok
      line('The dog', 'The dogs', ' runs', ' run fast'),            // patch answer two tokens
      line('The dog', 'The big dogs', ' runs', ' run'),             // prefix lengths differ
      line('The dog', 'The dogs', 'gy', ' run'),                    // "doggy" ≠ "dog" + "gy"
      line('The #dog', 'The dogs', ' runs', ' run'),                // unknown token
      '',
      line('The cat', 'The cats', ' sits', ' sit'),                 // ok
    ].join('\n');
    const sel = selectExamples(text, toyTokenizer(), { numExamples: 10, seed: null, onWarning: () => {} });
    expect(sel.examples.map((e) => e.line)).toEqual([1, 7]);
    expect(sel.skipped).toMatchObject({ 'answer-not-one-token': 1, 'prefix-length-mismatch': 1, 'not-compositional': 1, 'unknown-token': 1, blank: 1 });
    expect(sel.examples[0]!.cleanIds).toHaveLength(2);
    expect(sel.examples[0]!.case).toBe('x');
  });

  it('keeps only the shortest length class, restarting like the reference', () => {
    const text = [
      line('The teachers', 'The teacher', ' are', ' is'),           // 3 tokens ("teachers" splits)
      line('The dog', 'The dogs', ' runs', ' run'),                 // 2 tokens: restart
      line('The swimmers', 'The swimmer', ' are', ' is'),           // 3 tokens: skipped
      line('The cat', 'The cats', ' sits', ' sit'),
    ].join('\n');
    const sel = selectExamples(text, toyTokenizer(), { numExamples: 2, seed: null });
    expect(sel.examples.map((e) => e.line)).toEqual([2, 4]);
    expect(sel.skipped['not-shortest']).toBe(2);
    const all = selectExamples(text, toyTokenizer(), { numExamples: 3, seed: null, minLengthOnly: false });
    expect(all.examples.map((e) => e.line)).toEqual([1, 2, 3]);
    // Mixed lengths: one right-padded batch in selection order, with each row's real length.
    const batches = batchExamples(all.examples, 8);
    expect(batches.map((b) => [b.seq, b.size])).toEqual([[3, 3]]);
    expect(batches[0]!.exampleIndex).toEqual([0, 1, 2]);
    expect([...batches[0]!.lengths!]).toEqual([3, 2, 3]);
    expect([...batches[0]!.clean.subarray(3, 6)]).toEqual([...all.examples[1]!.cleanIds, PAD_ID]);
    expect([...batches[0]!.patch!.subarray(3, 6)]).toEqual([...all.examples[1]!.patchIds!, PAD_ID]);
    // One length: pad-free batches, no lengths.
    expect(batchExamples(sel.examples, 1).map((b) => [b.seq, b.size, b.lengths])).toEqual([[2, 1, undefined], [2, 1, undefined]]);
  });

  it('warns and continues when fewer examples are usable than asked', () => {
    const warnings: string[] = [];
    const sel = selectExamples(line('The dog', 'The dogs', ' runs', ' run'), toyTokenizer(), { numExamples: 5, onWarning: (m) => warnings.push(m) });
    expect(sel.examples).toHaveLength(1);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/only 1 usable examples, fewer than the 5/);
  });

  it('names the line of a missing field or bad JSON', () => {
    const bad = [line('a', 'b', ' c', ' d'), JSON.stringify({ clean_prefix: 'a', patch_prefix: 'b', clean_answer: ' c' })].join('\n');
    expect(() => selectExamples(bad, toyTokenizer(), { numExamples: 1, source: 'x.jsonl' })).toThrow(InputError);
    expect(() => selectExamples(bad, toyTokenizer(), { numExamples: 1, source: 'x.jsonl' })).toThrow(/x.jsonl line 2: missing field 'patch_answer'/);
    expect(() => selectExamples('{"clean_prefix": ', toyTokenizer(), { numExamples: 1 })).toThrow(FormatError);
    expect(() => selectExamples(line('The #a', 'The #b', ' c', ' d'), toyTokenizer(), { numExamples: 1 })).toThrow(/no usable examples/);
    expect(() => selectExamples('', toyTokenizer(), { numExamples: 0 })).toThrow(InputError);
  });

  it('reads single prompts from JSON lines without patch fields, in file order, any length', () => {
    const one = (cp: string, ca: string) => JSON.stringify({ clean_prefix: cp, clean_answer: ca });
    const text = [one('The teachers', ' are'), one('The dog', ' runs fast'), '', one('The cat', ' sits'), one('The #x', ' y')].join('\n');
    const sel = selectExamples(text, toyTokenizer(), { numExamples: 10, seed: 12, minLengthOnly: true, onWarning: () => {} });
    expect(sel.paired).toBe(false);
    expect(sel.examples.map((e) => e.line)).toEqual([1, 4]); // file order (no shuffle), lengths 3 and 2 both kept
    expect(sel.examples[0]!.patchIds).toBeUndefined();
    expect(sel.skipped).toMatchObject({ 'answer-not-one-token': 1, blank: 1, 'unknown-token': 1 });
    const [b] = batchExamples(sel.examples, 4);
    expect(b!.patch).toBeUndefined();
    expect([...b!.lengths!]).toEqual([3, 2]);
    expect(selectExamples(text, toyTokenizer(), { numExamples: 1 }).examples.map((e) => e.line)).toEqual([1]);
  });

  it('singlePromptBatch right-pads prompts of different lengths', () => {
    const b = singlePromptBatch([[4, 5, 6], [7]], [1, 2]);
    expect([b.size, b.seq, [...b.clean], [...b.lengths!]]).toEqual([2, 3, [4, 5, 6, 7, PAD_ID, PAD_ID], [3, 1]]);
    expect(singlePromptBatch([[4, 5], [6, 7]], [1, 2]).lengths).toBeUndefined();
    expect(() => singlePromptBatch([[4], []], [1, 2])).toThrow(InputError);
  });

  it('reads the reference\'s cluster JSON (context pieces joined with "")', () => {
    const text = JSON.stringify({ a7: { context: ['The', ' teachers'], answer: ' are' }, b2: { context: ['The', ' dog'], answer: ' runs fast' }, c: { context: ['The cat'], answer: ' sits' } });
    const sel = selectExamples(text, toyTokenizer(), { numExamples: 5, onWarning: () => {} });
    expect(sel.paired).toBe(false);
    expect(sel.examples.map((e) => [e.id, e.cleanPrefix, e.cleanIds.length])).toEqual([['a7', 'The teachers', 3], ['c', 'The cat', 2]]);
    expect(sel.skipped['answer-not-one-token']).toBe(1);
    expect(() => selectExamples(JSON.stringify({ x: { context: 'The cat', answer: ' is' } }), toyTokenizer(), { numExamples: 1 }))
      .toThrow(/entry 'x': 'context' must be a list of strings/);
  });

  it('refuses a file that mixes pairs and single prompts, naming a line', () => {
    const single = JSON.stringify({ clean_prefix: 'The cat', clean_answer: ' sits' });
    const pair = line('The dog', 'The dogs', ' runs', ' run');
    expect(() => selectExamples([pair, single].join('\n'), toyTokenizer(), { numExamples: 2, source: 'm.jsonl' }))
      .toThrow(/m.jsonl line 2 is a single prompt .* but line 1 is a contrastive pair/);
    expect(() => selectExamples([single, '', pair].join('\n'), toyTokenizer(), { numExamples: 2, source: 'm.jsonl' }))
      .toThrow(/m.jsonl line 1 is a single prompt .* but line 3 is a contrastive pair/);
    expect(() => selectExamples(JSON.stringify({ clean_prefix: 'a', clean_answer: ' b', patch_prefix: 'c' }), toyTokenizer(), { numExamples: 1 }))
      .toThrow(/missing field 'patch_answer'/);
  });

  it('reports a missing file as NotFoundError', async () => {
    await expect(loadExamples('/nonexistent/data.jsonl', toyTokenizer(), { numExamples: 1 })).rejects.toThrow(NotFoundError);
  });
});

// feature-circuits' own datasets, copied with their MIT license (fixtures/fc-data/README.md).
const FC_DATA = join(fileURLToPath(new URL('../../../../', import.meta.url)), 'fixtures', 'fc-data');
describe('selection on feature-circuits data files (seed 12)', () => {
  // Expected 1-based line numbers from the Python oracle (CPython random + HEAD load_examples, same toy tokenizer).
  const cases: [string, number, number[]][] = [
    ['simple_train', 40, [316, 89, 439, 310, 325, 400, 470, 56, 353, 341, 85, 34, 41, 250, 417, 279, 387, 165, 132, 194, 456, 269, 202,
      7, 288, 371, 447, 55, 268, 452, 298, 225, 50, 120, 396, 158, 446, 377, 460, 423]],
    ['nounpp_train', 40, [244, 1393, 1796, 1361, 1368, 407, 1200, 158, 1638, 1525, 1695, 400, 84, 1713, 719, 1160, 1405, 794, 1493, 32,
      1046, 1486, 1555, 897, 324, 1072, 537, 295, 1260, 196, 1002, 707, 1792, 1717, 1692, 1131, 220, 1686, 1711, 397]],
    ['within_rc_test', 25, [783, 1825, 2143, 2302, 1665, 2156, 273, 2205, 884, 662, 2384, 1543, 247, 1671, 1834, 1491, 1549, 2339, 152,
      1237, 945, 2293, 912, 243, 852]],
  ];
  for (const [name, n, expected] of cases) {
    it(`${name}: same examples in the same order as the reference`, async () => {
      const sel = await loadExamples(join(FC_DATA, `${name}.json`), toyTokenizer(), { numExamples: n, seed: 12 });
      expect(sel.examples.map((e) => e.line)).toEqual(expected);
    });
  }
  it('simple_train without minLengthOnly', async () => {
    const sel = await loadExamples(join(FC_DATA, 'simple_train.json'), toyTokenizer(), { numExamples: 10, minLengthOnly: false });
    expect(sel.examples.map((e) => e.line)).toEqual([316, 89, 439, 310, 325, 400, 391, 203, 470, 56]);
    expect(sel.lines).toBe(readFileSync(join(FC_DATA, 'simple_train.json'), 'utf8').trimEnd().split('\n').length);
  });
});

describe('prompts past the model context (issue 16)', () => {
  it('skips a prefix longer than maxLength without tokenizing it, counting it as too-long', () => {
    let encoded = 0;
    const base = toyTokenizer();
    const tok: ExampleTokenizer = { encode: (t) => { encoded += t.length; return base.encode(t); }, maxTokenChars: 8 };
    const huge = ' the'.repeat(2_500_000); // 10 M characters
    const text = [line(`The dog${huge}`, `The dogs${huge}`, ' runs', ' run'), line('The dog', 'The cat', ' runs', ' run')].join('\n');
    const sel = selectExamples(text, tok, { numExamples: 2, seed: null, maxLength: 16 });
    expect(sel.skipped['too-long']).toBe(1);
    expect(sel.examples.map((e) => e.line)).toEqual([2]);
    expect(encoded).toBeLessThan(1000);
  });

  it('skips a single prompt longer than maxLength without tokenizing it, as for pairs', () => {
    let encoded = 0;
    const base = toyTokenizer();
    const tok: ExampleTokenizer = { encode: (t) => { encoded += t.length; return base.encode(t); }, maxTokenChars: 8 };
    const single = (prefix: string) => JSON.stringify({ clean_prefix: prefix, clean_answer: ' runs' });
    const text = [single(`The dog${' the'.repeat(2_500_000)}`), single('The dog')].join('\n');
    const sel = selectExamples(text, tok, { numExamples: 2, maxLength: 16 });
    expect(sel.paired).toBe(false);
    expect(sel.skipped['too-long']).toBe(1);
    expect(sel.examples.map((e) => e.line)).toEqual([2]);
    expect(encoded).toBeLessThan(1000);
  });

  it('skips prefixes with more tokens than maxLength', () => {
    const text = [line(`The${' big'.repeat(20)} dog`, `The${' big'.repeat(20)} cat`, ' runs', ' run'), line('The dog', 'The cat', ' runs', ' run')].join('\n');
    const sel = selectExamples(text, toyTokenizer(), { numExamples: 2, seed: null, maxLength: 16 });
    expect(sel.skipped['too-long']).toBe(1);
    expect(sel.examples).toHaveLength(1);
  });
});
