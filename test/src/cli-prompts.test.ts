// The CLI on single-prompt data and on pairs of mixed lengths (issue 14): `sfc attribute`,
// `discover`, `evaluate` and `steer` detect single prompts from the file (the reference's cluster
// JSON, or JSON lines without patch fields) and run them in right-padded batches; exact node
// effects equal the PyTorch reference of each prompt alone (tools/refgen/make_nopair_refs.py).
// A file mixing pairs and single prompts is an input error naming a line; `--no-min-length-only`
// batches pairs of mixed lengths.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '@sfc/core';
import { relMaxError } from '@sfc/core/testing';
import { sfc } from './cli-run.js';
import { MODELS, SMALL_A } from './paths.js';
import { refNodeVector, type Json } from './small-a.js';

const TMP = mkdtempSync(join(tmpdir(), 'sfc-cli-prompts-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const NAME = 'neox-seq-r100';
const NOPAIR = join(MODELS, NAME, 'nopair');
const MODEL = ['--model', join(MODELS, NAME), '--dictionaries', join(MODELS, NAME, 'edges', 'saes'), '--batch-size', '2'];
const INPUTS = [...MODEL, '--data', join(NOPAIR, 'clusters.json')];
const ref = (file: string): Json => JSON.parse(readFileSync(join(NOPAIR, file), 'utf8'));

describe('single-prompt data (cluster JSON)', () => {
  it('attribute --method exact: the reference effects of each prompt alone, from right-padded batches', async () => {
    const out = join(TMP, 'exact.json');
    const r = await sfc(['attribute', ...INPUTS, '--method', 'exact', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^data: 5 single prompts \(file order, all lengths\) from clusters\.json \(6 entries, skipped: 1 answer-not-one-token\), 3 batches, right-padded/m);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    const want = ref('exact_sum.json');
    expect(doc).toMatchObject({ numExamples: 5, metric: 'neg-answer-logit', metricPatch: null, totalEffect: null, seqLen: null });
    expect(doc.data).toMatchObject({ kind: 'single-prompts', used: 5 });
    expect(doc.data.seed).toBeUndefined();
    for (const sub of want.submodules as string[]) {
      expect(relMaxError([...doc.effects[sub].features, doc.effects[sub].error], refNodeVector(want.nodes[sub])), sub).toBeLessThanOrEqual(1e-3);
    }
  });

  it('discover → evaluate → steer (with generation) run on the same file', async () => {
    const circuit = join(TMP, 'circuit.json');
    const d = await sfc(['discover', ...INPUTS, '--node-threshold', '0.05', '--out', circuit]);
    expect(d.code, d.stderr).toBe(0);
    const c = JSON.parse(readFileSync(circuit, 'utf8'));
    expect(c).toMatchObject({ numExamples: 5, metricPatch: null });
    expect(c.nodes.length).toBeGreaterThan(1);
    const e = await sfc(['evaluate', ...INPUTS, '--circuit', circuit, '--thresholds', '0.05,0.5', '--json']);
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout).rows).toHaveLength(2);
    const s = await sfc(['steer', ...INPUTS, '--circuit', circuit, '--top-k', '3', '--op', 'scale', '--value', '-2', '--generate', '2', '--json']);
    expect(s.code, s.stderr).toBe(0);
    const steer = JSON.parse(s.stdout);
    expect(steer.summary.prompts).toBe(5);
  });

  it('reads JSON lines without patch fields too, and refuses a file mixing pairs and single prompts', async () => {
    const lines = join(TMP, 'single.jsonl');
    const clusters = ref('../nopair/clusters.json') as Record<string, { context: string[]; answer: string }>;
    writeFileSync(lines, Object.values(clusters).map((c) => JSON.stringify({ clean_prefix: c.context.join(''), clean_answer: c.answer })).join('\n'));
    const out = join(TMP, 'exact-lines.json');
    const a = await sfc(['attribute', ...MODEL, '--data', lines, '--method', 'exact', '--out', out]);
    expect(a.code, a.stderr).toBe(0);
    const want = ref('exact_sum.json');
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    expect(relMaxError([...doc.effects.resid_2.features, doc.effects.resid_2.error], refNodeVector(want.nodes.resid_2))).toBeLessThanOrEqual(1e-3);

    const mixed = join(TMP, 'mixed.jsonl');
    writeFileSync(mixed, [JSON.stringify({ clean_prefix: 'a b', clean_answer: ' c' }),
      JSON.stringify({ clean_prefix: 'a b', patch_prefix: 'a c', clean_answer: ' c', patch_answer: ' d' })].join('\n'));
    const m = await sfc(['attribute', ...MODEL, '--data', mixed, '--method', 'attrib', '--out', join(TMP, 'never.json')]);
    expect(m.code).toBe(EXIT_CODES.INPUT);
    expect(m.stderr).toMatch(/mixed\.jsonl line 1 is a single prompt .*but line 2 is a contrastive pair/);
  });
});

describe('pairs of mixed lengths', () => {
  it('--min-length-only (default) keeps the shortest length; --no-min-length-only batches every length, right-padded', async () => {
    // small-a's pairs cut to 4, 5 and 6 words (still differing at the subject, one-token answers).
    const rows = readFileSync(join(SMALL_A, 'data.jsonl'), 'utf8').trim().split('\n').slice(0, 9).map((l) => JSON.parse(l));
    const cut = (t: string, n: number) => t.split(' ').slice(0, n).join(' ');
    const file = join(TMP, 'pairs.jsonl');
    writeFileSync(file, rows.map((r, i) => JSON.stringify({ ...r, clean_prefix: cut(r.clean_prefix, 4 + (i % 3)), patch_prefix: cut(r.patch_prefix, 4 + (i % 3)) })).join('\n'));
    const out = join(TMP, 'pairs-effects.json');
    const base = ['attribute', '--model', SMALL_A, '--dictionaries', join(SMALL_A, 'saelens'), '--data', file, '--method', 'attrib', '--batch-size', '4', '--out', out];
    const shortest = await sfc(base);
    expect(shortest.code, shortest.stderr).toBe(0);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({ numExamples: 3, seqLen: 4 });
    const all = await sfc([...base, '--no-min-length-only']);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stderr).toMatch(/^data: 9 examples .*3 batches, right-padded \(mixed lengths\)/m);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({ numExamples: 9, seqLen: null });
    const none = await sfc([...base, '--no-min-length-only', '--aggregation', 'none']);
    expect(none.code).toBe(EXIT_CODES.INPUT);
    expect(none.stderr).toMatch(/aggregation 'none' keeps positions, but the examples have 3 different token lengths \(4, 5, 6\)/);
  });
});
