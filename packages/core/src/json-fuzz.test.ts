// Mutation fuzzing of the JSON inputs sfc reads (issue 16): config.json, tokenizer.json, data
// files (JSON lines), sfc.circuit/v1 and sfc.effects/v1. Each case must be accepted or refused
// with an SfcError, in bounded time and memory. 1,000 cases per format by default (a few seconds on
// two cores); SFC_FUZZ_CASES=20000 (and SFC_FUZZ_SEED) for a long run. The binary formats are
// fuzzed in @sfc/dictionaries (formats/fuzz.test.ts) with the same harness (testing/fuzz.ts).

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseCircuit } from './circuit/circuit.js';
import { parseEffects } from './circuit/effects-file.js';
import { selectExamples } from './data/examples.js';
import { tokenizerFromJson } from './formats/tokenizer.js';
import { parseModelConfig } from './model/config.js';
import { fuzz, fuzzSummary, mutateBytes, mutateDigits, mutateJson, type FuzzResult, type Rng } from './testing/fuzz.js';

const CASES = Number(process.env.SFC_FUZZ_CASES ?? 1000);
const SEED = Number(process.env.SFC_FUZZ_SEED ?? 20261203);
const MEMORY_BOUND = 256 * 2 ** 20;
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const readText = (rel: string) => readFileSync(`${ROOT}${rel}`, 'utf8');
const readJson = (rel: string) => JSON.parse(readText(rel)) as Record<string, unknown>;

function report(res: FuzzResult): void {
  console.info(fuzzSummary(res));
  expect(res.failures.slice(0, 5)).toEqual([]);
  expect(res.slowest).toBeLessThan(5_000);
  expect(res.maxMemory).toBeLessThan(MEMORY_BOUND);
}

/** A text mutation: bytes (decoded leniently), a number swapped, or a JSON-level mutation re-serialized. */
function mutateText(r: Rng, text: string, json?: unknown): string {
  const k = r.int(3);
  if (k === 0) return new TextDecoder().decode(mutateBytes(r, new TextEncoder().encode(text)));
  if (k === 1 || json === undefined) return mutateDigits(r, text);
  return JSON.stringify(mutateJson(r, json)) ?? 'null';
}

describe(`fuzz JSON inputs (${CASES} cases per format, seed ${SEED})`, () => {
  it('the harness measures the memory a case allocates', () => {
    let kept: Uint8Array | undefined;
    const res = fuzz('meta', 1, 1, () => ({ strategy: 'x', run: () => { kept = new Uint8Array(64 * 2 ** 20).fill(1); } }));
    expect(kept?.length).toBe(64 * 2 ** 20);
    expect(res.maxMemory).toBeGreaterThanOrEqual(64 * 2 ** 20);
  });

  it('config.json (parseModelConfig)', () => {
    const bases = ['fixtures/models/gpt2-a', 'fixtures/models/neox-rope-yarn', 'fixtures/models/neox-rope-llama3', 'fixtures/models/neox-seq-r100', 'fixtures/small-a']
      .map((d) => readJson(`${d}/config.json`));
    report(fuzz('config.json', CASES, SEED, (r) => {
      const cfg = mutateJson(r, r.pick(bases));
      return { strategy: 'json', run: () => { parseModelConfig(cfg); } };
    }));
  });

  it('tokenizer.json (tokenizerFromJson, then encode)', () => {
    const bpe = {
      normalizer: null, pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: null,
      added_tokens: [{ id: 5, content: '<|endoftext|>', special: true }],
      model: { type: 'BPE', vocab: { T: 0, h: 1, e: 2, Th: 3, The: 4 }, merges: ['T h', 'Th e'], unk_token: null },
    };
    const bases = [readJson('fixtures/small-a/tokenizer.json'), readJson('fixtures/models/gpt2-a/tokenizer.json'), bpe];
    const texts = ['The parents that the guards know', 'The x', '', 'The <|endoftext|>'];
    report(fuzz('tokenizer.json', CASES, SEED + 1, (r) => {
      const json = mutateJson(r, r.pick(bases)) as Record<string, unknown>;
      const text = r.pick(texts);
      return { strategy: 'json', run: () => { tokenizerFromJson(json).encode(text); } };
    }));
  });

  it('data files (JSON lines through selectExamples)', () => {
    const tok = tokenizerFromJson(readJson('fixtures/small-a/tokenizer.json'));
    const text = readText('fixtures/small-a/data.jsonl').split('\n').slice(0, 12).join('\n');
    const lines = text.split('\n');
    report(fuzz('data .jsonl', CASES, SEED + 2, (r) => {
      const i = r.int(lines.length);
      const mutated = [...lines];
      mutated[i] = mutateText(r, lines[i]!, JSON.parse(lines[i]!));
      const data = r.next() < 0.2 ? mutateText(r, text) : mutated.join('\n');
      return { strategy: 'line', run: () => { selectExamples(data, tok, { numExamples: 4, seed: r.int(100), maxLength: 16 }); } };
    }));
  });

  it('sfc.circuit/v1 and sfc.effects/v1 (parseCircuit, parseEffects)', () => {
    const circuits = ['small-a-circuit.json', 'small-a-circuit-2.json'].map((f) => readText(`packages/cli-tui/src/tui/test-data/${f}`));
    const vec = (k: number) => Array.from({ length: 4 }, (_, i) => (i - k) / 4);
    const effects = (aggregation: 'sum' | 'none') => JSON.stringify({
      schema: 'sfc.effects/v1', method: 'attrib', steps: null, aggregation, numExamples: 2, seqLen: aggregation === 'sum' ? null : 2,
      metric: 'logit-diff', submodules: ['embed', 'attn_0', 'resid_0'], dSae: { embed: 4, attn_0: 4, resid_0: 4 },
      effects: Object.fromEntries(['embed', 'attn_0', 'resid_0'].map((s, j) => [s,
        aggregation === 'sum' ? { features: vec(j), error: 0.25 } : { features: [vec(j), vec(j + 1)], error: [0.25, -0.5] }])),
      metricClean: 1.5, metricPatch: -0.5, totalEffect: -2,
    });
    const effectFiles = [effects('sum'), effects('none')];
    for (const c of circuits) parseCircuit(c);
    for (const e of effectFiles) parseEffects(e);
    report(fuzz('circuit/effects JSON', CASES, SEED + 3, (r) => {
      const isCircuit = r.next() < 0.5;
      const base = r.pick(isCircuit ? circuits : effectFiles);
      const text = mutateText(r, base, JSON.parse(base));
      return { strategy: isCircuit ? 'circuit' : 'effects', run: () => { if (isCircuit) parseCircuit(text); else parseEffects(text); } };
    }));
  });
});
