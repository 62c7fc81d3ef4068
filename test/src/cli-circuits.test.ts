// The circuit commands end to end on fixtures/small-a: `sfc attribute` against the PyTorch
// reference effects (so the CLI passes method, steps, aggregation, data and dictionaries through
// correctly), `sfc discover` → `sfc plot` → `sfc evaluate`, and their input errors.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '@sfc/core';
import { sfc, STACK_LINE } from './cli-run.js';
import { SMALL_A } from './paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'sfc-cli-circuits-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const INPUTS = ['--model', SMALL_A, '--dictionaries', join(SMALL_A, 'saelens'), '--data', join(SMALL_A, 'data.jsonl')];

interface RefNodes { nodes: Record<string, { act: number[] | number[][]; err: number | number[] }>; metric: { clean_mean: number }; total_effect: { mean: number } }
const ref = (name: string) => JSON.parse(readFileSync(join(SMALL_A, 'ref', `${name}.json`), 'utf8')) as RefNodes;

/** max |a − r| / max |r| over a submodule's features (flattened). */
function relErr(a: number[] | number[][], r: number[] | number[][]): number {
  const fa = (a as number[]).flat(), fr = (r as number[]).flat();
  expect(fa.length).toBe(fr.length);
  let d = 0, m = 0;
  fr.forEach((v, i) => { d = Math.max(d, Math.abs(fa[i]! - v)); m = Math.max(m, Math.abs(v)); });
  return d / m;
}

describe('sfc attribute', () => {
  for (const [method, aggregation] of [['ig', 'sum'], ['attrib', 'none']] as const) {
    it(`${method}, aggregation ${aggregation}: sfc.effects/v1 matching the PyTorch reference`, async () => {
      const out = join(TMP, `effects-${method}-${aggregation}.json`);
      const r = await sfc(['attribute', ...INPUTS, '--method', method, '--aggregation', aggregation, '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^data: 40 examples from data\.jsonl/m);
      expect(r.stderr).toMatch(/^submodules: /m); // progress lines (stderr is not a TTY here)
      const doc = JSON.parse(readFileSync(out, 'utf8'));
      expect(doc).toMatchObject({ schema: 'sfc.effects/v1', method, aggregation, numExamples: 40, steps: method === 'ig' ? 10 : null });
      const want = ref(`${method}_${aggregation}`);
      expect(doc.metricClean).toBeCloseTo(want.metric.clean_mean, 4);
      expect(doc.totalEffect).toBeCloseTo(want.total_effect.mean, 4);
      expect(doc.submodules).toEqual(Object.keys(want.nodes));
      for (const sub of doc.submodules) {
        expect(relErr(doc.effects[sub].features, want.nodes[sub]!.act), sub).toBeLessThanOrEqual(1e-3);
        if (aggregation === 'none') expect(doc.effects[sub].features).toHaveLength(6);
      }
    });
  }

  it('takes its inputs from sfc.config.json; --quiet silences stderr', async () => {
    const dir = join(TMP, 'project');
    mkdirSync(dir);
    writeFileSync(join(dir, 'sfc.config.json'), JSON.stringify({
      model: SMALL_A, data: join(SMALL_A, 'data.jsonl'), dictionaries: { folder: join(SMALL_A, 'saelens') },
      circuit: { method: 'attrib', numExamples: 8, batchSize: 3 },
    }));
    const r = await sfc(['attribute', '--out', 'e.json', '--quiet'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(readFileSync(join(dir, 'e.json'), 'utf8'));
    expect(doc).toMatchObject({ method: 'attrib', numExamples: 8 });
    expect(doc.data).toMatchObject({ requested: 8, used: 8, seed: 12 });
  });
});

describe('sfc discover → plot → evaluate', () => {
  const circuit = join(TMP, 'circuit.json');

  it('discover writes sfc.circuit/v1 with the thresholds recorded', async () => {
    const r = await sfc(['discover', ...INPUTS, '--num-examples', '16', '--out', circuit]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(readFileSync(circuit, 'utf8'));
    expect(doc).toMatchObject({ schema: 'sfc.circuit/v1', method: 'ig', nodeThreshold: 0.1, edgeThreshold: 0.01, numExamples: 16 });
    expect(doc.nodes.length).toBeGreaterThan(1);
    expect(doc.edges.length).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/^wrote .*circuit\.json: \d+ nodes and \d+ edges/m);
  });

  it('plot draws it as SVG', async () => {
    const svg = join(TMP, 'circuit.svg');
    const r = await sfc(['plot', circuit, '--out', svg]);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(svg, 'utf8');
    expect(text).toContain('<svg');
    expect(text).toContain('resid_1');
  });

  it('evaluate prints a table and writes sfc.eval/v1', async () => {
    const out = join(TMP, 'eval.json');
    const r = await sfc(['evaluate', '--circuit', circuit, ...INPUTS, '--num-examples', '8', '--thresholds', '0.1,100', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ +threshold +nodes +faithfulness +completeness/);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    expect(doc.schema).toBe('sfc.eval/v1');
    expect(doc.rows.map((x: { threshold: number }) => x.threshold)).toEqual([0.1, 100]);
    // Above every effect the circuit is empty: faithfulness 0, completeness 1 by definition.
    expect(doc.rows[1].nodes).toBe(0);
    expect(doc.rows[1].faithfulness).toBeCloseTo(0, 6);
    expect(doc.rows[1].completeness).toBeCloseTo(1, 6);
    expect(doc.rows[0].nodes).toBeGreaterThan(0);
  });
});

describe('circuit commands on bad input', () => {
  const cases: { name: string; args: () => string[]; code: number; message: RegExp }[] = [
    { name: 'no data given', args: () => ['attribute', '--model', SMALL_A, '--dictionaries', join(SMALL_A, 'saelens'), '--out', join(TMP, 'x.json')], code: 2, message: /missing --data/ },
    { name: 'data file missing', args: () => ['attribute', ...INPUTS.slice(0, 4), '--data', join(TMP, 'none.jsonl'), '--out', join(TMP, 'x.json')], code: EXIT_CODES.NOT_FOUND, message: /data file .* does not exist/ },
    { name: 'malformed data line', args: () => {
      const bad = join(TMP, 'bad.jsonl');
      writeFileSync(bad, `${readFileSync(join(SMALL_A, 'data.jsonl'), 'utf8').split('\n')[0]}\n{"clean_prefix": "The\n`);
      return ['attribute', ...INPUTS.slice(0, 4), '--data', bad, '--out', join(TMP, 'x.json')];
    }, code: EXIT_CODES.FORMAT, message: /line 2 is not valid JSON/ },
    { name: 'dictionaries folder missing', args: () => ['attribute', ...INPUTS.slice(0, 2), '--dictionaries', join(TMP, 'nodicts'), ...INPUTS.slice(4), '--out', join(TMP, 'x.json')], code: EXIT_CODES.NOT_FOUND, message: /does not exist/ },
    { name: 'unknown method', args: () => ['attribute', ...INPUTS, '--method', 'fast', '--out', join(TMP, 'x.json')], code: 2, message: /Invalid values/ },
    { name: 'evaluate without a circuit or effects file', args: () => ['evaluate', ...INPUTS], code: 2, message: /give --circuit FILE or --effects FILE/ },
    { name: 'plot of a file that is not a circuit', args: () => {
      const f = join(TMP, 'not-circuit.json');
      writeFileSync(f, '{"schema": "sfc.effects/v1"}');
      return ['plot', f, '--out', join(TMP, 'x.svg')];
    }, code: EXIT_CODES.FORMAT, message: /schema/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = await sfc(c.args());
      expect(r.code, r.stderr).toBe(c.code);
      expect(r.stderr).toMatch(/^error: /m);
      expect(r.stderr).toMatch(c.message);
      expect(r.stderr).not.toMatch(STACK_LINE);
      expect(existsSync(join(TMP, 'x.json')) || existsSync(join(TMP, 'x.svg'))).toBe(false);
      expect(readdirSync(TMP).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    });
  }
});
