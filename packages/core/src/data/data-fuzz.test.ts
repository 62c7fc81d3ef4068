// Deterministic mutation fuzzing of the data-file reader (pairs, single-prompt JSON lines, cluster
// JSON): every mutated file must either be selected from or be refused with an SfcError
// (InputError / FormatError) — never another exception type. The default run does 3,000 cases;
// SFC_FUZZ_CASES (and SFC_FUZZ_SEED) for a longer one.
import { describe, expect, it } from 'vitest';
import { InputError, SfcError } from '../errors.js';
import { batchExamples } from './batches.js';
import { selectExamples, type ExampleTokenizer } from './examples.js';

const CASES = Number(process.env.SFC_FUZZ_CASES ?? 3000);
const SEED = Number(process.env.SFC_FUZZ_SEED ?? 1414);

/** One token per space-prefixed word; words with `#` are unknown (InputError, as the real tokenizer). */
const tokenizer: ExampleTokenizer = {
  encode(text) {
    const out: number[] = [];
    for (const m of text.matchAll(/\s?\S+/g)) {
      if (m[0].includes('#')) throw new InputError(`unknown token ${m[0]}`);
      out.push(m[0].length);
    }
    return out;
  },
};

function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s / 4294967296; };
  return { next, int: (n: number) => Math.floor(next() * n) };
}

const pair = (i: number) => JSON.stringify({ clean_prefix: `The cat${' x'.repeat(i % 3)}`, patch_prefix: `The cats${' x'.repeat(i % 3)}`, clean_answer: ' is', patch_answer: ' are' });
const single = (i: number) => JSON.stringify({ clean_prefix: `A dog${' y'.repeat(i % 4)}`, clean_answer: ' ran', case: 'c' });
const SEEDS = [
  Array.from({ length: 6 }, (_, i) => pair(i)).join('\n'),
  Array.from({ length: 6 }, (_, i) => single(i)).join('\n'),
  JSON.stringify(Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`k${i}`, { context: ['The', ' bird'.repeat(i + 1)], answer: ' sang' }]))),
];
const SNIPPETS = ['"', '{', '}', '[', ']', ',', ':', '\n', '\r\n', 'null', '1', '"patch_prefix":"a",', '"context":[],', '"answer":5,', '#', '\ufeff', ' ', '""'];

function mutate(r: ReturnType<typeof rng>, text: string): string {
  let t = text;
  for (let k = 1 + r.int(3); k > 0; k--) {
    const at = r.int(t.length + 1);
    switch (r.int(4)) {
      case 0: t = t.slice(0, at) + t.slice(at + 1 + r.int(8)); break;                                  // delete a run
      case 1: t = t.slice(0, at) + SNIPPETS[r.int(SNIPPETS.length)]! + t.slice(at); break;             // insert a token
      case 2: t = t.slice(0, at) + String.fromCharCode(r.int(128)) + t.slice(at + 1); break;          // replace a char
      default: { const lines = t.split('\n'); lines.splice(r.int(lines.length), 0, lines[r.int(lines.length)]!); t = lines.join('\n'); } // duplicate a line
    }
  }
  return t;
}

describe('data file reader (fuzz)', () => {
  it(`reads or refuses with an SfcError, for ${CASES} mutated files`, () => {
    const r = rng(SEED);
    let read = 0, refused = 0;
    for (let i = 0; i < CASES; i++) {
      const text = mutate(r, SEEDS[i % SEEDS.length]!);
      try {
        const sel = selectExamples(text, tokenizer, { numExamples: 4, seed: i % 2 ? null : 12, minLengthOnly: i % 3 === 0 });
        for (const b of batchExamples(sel.examples, 3)) {
          expect(b.clean.length).toBe(b.size * b.seq);
          if (b.lengths) expect(Math.max(...b.lengths)).toBe(b.seq);
          expect(b.patch === undefined).toBe(!sel.paired);
        }
        read++;
      } catch (e) {
        if (!(e instanceof SfcError)) throw new Error(`case ${i}: ${(e as Error).constructor.name}: ${(e as Error).message}\n${JSON.stringify(text)}`);
        refused++;
      }
    }
    expect(read).toBeGreaterThan(CASES / 20);
    expect(refused).toBeGreaterThan(CASES / 20);
  });
});
