// `sfc convert` end to end, as a subprocess: feature-circuits' saves of fixtures/small-a's
// reference circuit (packages/dictionaries/test-data/formats/circuits, made by
// tools/refgen/make_dict_files.py from the PyTorch reference) → sfc.circuit/v1, then the
// converted file through `sfc plot`, `sfc steer --circuit`, `sfc evaluate` and
// `sfc export neuronpedia`; and the errors on files that are not circuits.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '@sfc/core';
import { sfc, STACK_LINE } from './cli-run.js';
import { REPO_ROOT, SMALL_A } from './paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'sfc-cli-convert-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const FORMATS = join(REPO_ROOT, 'packages', 'dictionaries', 'test-data', 'formats');
const PT = (agg: string, node = '0.1') => join(FORMATS, 'circuits', `small-a_agreement_n40_agg${agg}_node${node}.pt`);
const MODEL = ['--model', SMALL_A, '--dictionaries', join(SMALL_A, 'saelens')];

interface Doc { schema: string; nodes: { id: string; effect: number | null }[]; edges: { source: string; target: string; weight: number }[]; [k: string]: unknown }
const read = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Doc;

/** The reference circuit's node ids (sum: [idx, effect], F = 128 is the error node). */
function refNodeIds(): string[] {
  const ref = JSON.parse(readFileSync(join(SMALL_A, 'ref', 'ig_sum.json'), 'utf8'));
  return Object.entries(ref.circuit.nodes as Record<string, number[][]>)
    .flatMap(([sub, list]) => list.map(([idx]) => `${sub}/${idx === 128 ? 'err' : idx}`));
}

describe('sfc convert', () => {
  const full = join(TMP, 'full.json');
  const circuit = join(TMP, 'circuit.json');

  it('writes sfc.circuit/v1 with every node and edge of the file, null metrics and provenance', async () => {
    const r = await sfc(['convert', PT('sum'), '--out', full]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^wrote .*full\.json: 824 nodes and 1774 edges of 824 nodes and 1774 edges in the file \(feature-circuits, aggregation sum, 40 examples\)$/m);
    expect(r.stderr).toMatch(/the file name records node threshold 0\.1.*--node-threshold 0\.1/);
    const doc = read(full);
    expect(doc).toMatchObject({
      schema: 'sfc.circuit/v1', method: 'ig', steps: null, aggregation: 'sum', numExamples: 40, metric: 'logit-diff',
      nodeThreshold: 0, edgeThreshold: 0, metricClean: null, metricPatch: null, totalEffect: null,
      source: { format: 'feature-circuits', file: 'small-a_agreement_n40_aggsum_node0.1.pt', fileName: { numExamples: 40, aggregation: 'sum', nodeThreshold: 0.1 } },
    });
    expect(doc.nodes[0]).toEqual({ id: 'y', submodule: 'y', index: null, pos: null, effect: null });
  });

  it('at feature-circuits\' thresholds gives the reference circuit; sfc plot draws it', async () => {
    const r = await sfc(['convert', PT('sum'), '--node-threshold', '0.1', '--edge-threshold', '0.01', '--out', circuit]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/note:/);
    const doc = read(circuit);
    expect(doc.nodes.map((n) => n.id).slice(1).sort()).toEqual(refNodeIds().sort());
    expect(doc.edges).toHaveLength(164);
    expect(doc).toMatchObject({ nodeThreshold: 0.1, edgeThreshold: 0.01 });
    const svg = join(TMP, 'circuit.svg');
    const p = await sfc(['plot', circuit, '--out', svg]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stderr).toMatch(/^wrote .*circuit\.svg: 52 nodes, 164 edges$/m);
    expect(readFileSync(svg, 'utf8')).toContain('resid_1/8');
  });

  it('sfc steer --circuit takes the converted file, and the .pt directly, with the same features', async () => {
    const [json, pt] = await Promise.all([circuit, PT('sum')].map((c) => sfc(['steer', '--circuit', c, '--top-k', '6', '--dry-run', '--json'], { cwd: TMP })));
    expect(json!.code, json!.stderr).toBe(0);
    expect(pt!.code, pt!.stderr).toBe(0);
    const features = JSON.parse(json!.stdout).features;
    expect(features).toHaveLength(6);
    expect(JSON.parse(pt!.stdout).features).toEqual(features);
    const r = await sfc(['steer', '--circuit', circuit, '--top-k', '6', '--op', 'scale', '--value', '0', ...MODEL,
      '--prompt', 'The parents that the guards know', '--answer', ' is', '--patch-answer', ' are', '--json'], { cwd: TMP });
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.features).toEqual(features);
    expect(rep.prompts).toHaveLength(1);
    expect(rep.prompts[0].after.metric).not.toBeCloseTo(rep.prompts[0].before.metric, 3);
  });

  it('sfc evaluate and sfc export neuronpedia read converted circuits (no metric values needed)', async () => {
    const ev = await sfc(['evaluate', '--circuit', circuit, ...MODEL, '--data', join(SMALL_A, 'data.jsonl'), '--num-examples', '4', '--thresholds', '0.1']);
    expect(ev.code, ev.stderr).toBe(0);
    // 35 of the circuit's 52 nodes at 0.1 sit outside embed: embed is not ablated by default, as in
    // feature-circuits' ablation.py (include_embed=False), so its nodes are not counted.
    expect(ev.stdout).toMatch(/^ +0\.1 +35 /m);
    const np = await sfc(['export', 'neuronpedia', PT('sum'), '--model-id', 'small-a', '--top-k', '3']);
    expect(np.code, np.stderr).toBe(0);
    const url = new URL(np.stdout.trim());
    expect(url.searchParams.get('name')).toBe('small-a_agreement_n40_aggsum_node0.1');
    expect(JSON.parse(url.searchParams.get('features')!)).toHaveLength(3);
  });

  it('keeps positions (aggregation none) and nodes-only saves', async () => {
    const none = join(TMP, 'none.json');
    const r = await sfc(['convert', PT('none'), '--node-threshold', '0.1', '--edge-threshold', '0.01', '--out', none]);
    expect(r.code, r.stderr).toBe(0);
    const doc = read(none);
    expect(doc).toMatchObject({ aggregation: 'none', seqLen: 6 });
    expect(doc.nodes.map((n) => n.id)).toContain('resid_1/8@5');
    expect(doc.edges.some((e) => e.source === 'resid_1/8@5' && e.target === 'y')).toBe(true);
    const p = await sfc(['plot', none, '--out', join(TMP, 'none.svg')]);
    expect(p.code, p.stderr).toBe(0);
    const nodesOnly = join(TMP, 'nodes.json');
    const n = await sfc(['convert', PT('sum', 'all'), '--out', nodesOnly]);
    expect(n.code, n.stderr).toBe(0);
    expect(n.stderr).toMatch(/, nodes only\)$/m);
    expect(read(nodesOnly)).toMatchObject({ nodesOnly: true, edges: [] });
  });
});

describe.concurrent('sfc convert on bad input', () => {
  const cases: { name: string; file: string; extra?: string[]; out?: string; code: number; message: RegExp }[] = [
    { name: 'a .pt that is not a circuit', file: join(FORMATS, 'tensors.pt'), code: EXIT_CODES.FORMAT, message: /tensors\.pt: no 'nodes' dict/ },
    { name: 'a circuit mixing aggregations', file: join(FORMATS, 'circuit.pt'), code: EXIT_CODES.FORMAT, message: /nodes\['resid_1'\]\.act has shape \[3, 16\]/ },
    { name: 'a pickle that would run code', file: join(FORMATS, 'evil', 'os_system.pt'), code: EXIT_CODES.SECURITY, message: /os\.system/ },
    { name: 'a missing file', file: join(TMP, 'nope.pt'), code: EXIT_CODES.NOT_FOUND, message: /circuit file .*nope\.pt does not exist/ },
    { name: 'a negative threshold', file: PT('sum'), extra: ['--node-threshold', '-1'], code: 2, message: /--node-threshold must be a number ≥ 0/ },
    { name: 'an output folder that does not exist', file: PT('sum'), out: join(TMP, 'no-dir', 'x.json'), code: EXIT_CODES.NOT_FOUND, message: /folder .* does not exist/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = await sfc(['convert', c.file, ...(c.extra ?? []), '--out', c.out ?? join(TMP, 'x.json')]);
      expect(r.code, r.stderr).toBe(c.code);
      expect(r.stderr).toMatch(/^error: /m);
      expect(r.stderr).toMatch(c.message);
      expect(r.stderr).not.toMatch(STACK_LINE);
      expect(existsSync(join(TMP, 'x.json'))).toBe(false);
      expect(readdirSync(TMP).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    });
  }
});
