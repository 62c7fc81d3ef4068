import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FormatError, InputError, NotFoundError, parseCircuit, serializeCircuit, type Circuit } from '@sfc/core';
import { convertFcCircuit, parseFcCircuitName, readFcCircuitFile } from './fc-convert.js';
import { readFcCircuit, type FcCircuit } from './formats/fc-circuit.js';
import type { DenseTensor, SparseCooTensor } from './formats/tensor-data.js';

const CIRCUITS = fileURLToPath(new URL('../test-data/formats/circuits/', import.meta.url));
const SUM = `${CIRCUITS}small-a_agreement_n40_aggsum_node0.1.pt`;
const NONE = `${CIRCUITS}small-a_agreement_n40_aggnone_node0.1.pt`;
const NODEALL = `${CIRCUITS}small-a_agreement_n40_aggsum_nodeall.pt`;
const REF = (agg: string) => JSON.parse(readFileSync(new URL(`../../../fixtures/small-a/ref/ig_${agg}.json`, import.meta.url), 'utf8'));

/** nodes: sum [idx, effect], none [pos, idx, effect]; edges: [up, at, down, at, w] with at [idx] or [pos, idx]. */
type RefCircuit = { nodes: Record<string, number[][]>; edges: [string, number[], string, number[], number][] };

/** The reference circuit's node and edge ids (F = 128 is the error node), with weights. */
function refIds(agg: 'sum' | 'none'): { nodes: Map<string, number>; edges: Map<string, number> } {
  const ref = REF(agg);
  const c = ref.circuit as RefCircuit;
  const id = (sub: string, at: number[]) => {
    if (sub === 'y') return 'y';
    const [pos, idx] = agg === 'none' ? at : [null, at[0]!];
    return `${sub}/${idx === ref.d_sae[sub] ? 'err' : idx}${pos === null ? '' : `@${pos}`}`;
  };
  const nodes = new Map<string, number>();
  for (const [sub, list] of Object.entries(c.nodes)) {
    for (const entry of list) nodes.set(id(sub, entry.slice(0, -1)), entry[entry.length - 1]!);
  }
  const edges = new Map(c.edges.map(([up, ui, down, di, w]) => [`${id(up, ui)} > ${id(down, di)}`, w]));
  return { nodes, edges };
}

/** Same ids; weights equal up to the reference's printed precision (its edge entries carry 6 digits). */
function expectSameWeights(got: Map<string, number>, want: Map<string, number>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, w] of want) expect(Math.abs(got.get(k)! - w), k).toBeLessThanOrEqual(1e-5 * Math.abs(w) + 1e-8);
}

const nodeMap = (c: Circuit) => new Map(c.nodes.filter((n) => n.id !== 'y').map((n) => [n.id, n.effect!]));
const edgeMap = (c: Circuit) => new Map(c.edges.map((e) => [`${e.source} > ${e.target}`, e.weight]));

describe('feature-circuits circuit files → sfc.circuit/v1', () => {
  for (const agg of ['sum', 'none'] as const) {
    it(`aggregation ${agg}: at the reference thresholds (0.1, 0.01) the circuit is the PyTorch reference's`, async () => {
      const { circuit, warnings } = await readFcCircuitFile(agg === 'sum' ? SUM : NONE, { nodeThreshold: 0.1, edgeThreshold: 0.01 });
      const want = refIds(agg);
      expectSameWeights(nodeMap(circuit), want.nodes);
      expectSameWeights(edgeMap(circuit), want.edges);
      expect(circuit).toMatchObject({
        schema: 'sfc.circuit/v1', method: 'ig', steps: null, aggregation: agg, seqLen: agg === 'none' ? 6 : null,
        numExamples: 40, metric: 'logit-diff', nodeThreshold: 0.1, edgeThreshold: 0.01, nodesOnly: false,
        submodules: ['embed', 'attn_0', 'mlp_0', 'resid_0', 'attn_1', 'mlp_1', 'resid_1'],
        metricClean: null, metricPatch: null, totalEffect: null,
      });
      expect(circuit.dSae).toEqual(Object.fromEntries(circuit.submodules.map((s) => [s, 128])));
      expect(warnings).toEqual([]);
      expect(parseCircuit(serializeCircuit(circuit), 'c.json')).toEqual(circuit);
    });
  }

  it('by default keeps every nonzero node and every edge of the file between them, and records provenance', async () => {
    const r = await readFcCircuitFile(SUM);
    const ref = REF('sum');
    let nonzero = 0;
    for (const sub of ref.submodules) nonzero += (ref.nodes[sub].act as number[]).filter((v) => v !== 0).length + (ref.nodes[sub].err !== 0 ? 1 : 0);
    expect(r.circuit.nodes.length).toBe(nonzero + 1); // + y
    expect(r.fileNodes).toBe(nonzero);
    expect(r.circuit).toMatchObject({ nodeThreshold: 0, edgeThreshold: 0 });
    // Every stored edge is kept unless an endpoint has zero effect.
    expect(r.circuit.edges.length + r.droppedEdges).toBe(r.fileEdges);
    expect(r.circuit.edges.length).toBeGreaterThan(1500);
    expect(r.circuit.source).toEqual({
      format: 'feature-circuits', file: 'small-a_agreement_n40_aggsum_node0.1.pt',
      fileName: { numExamples: 40, aggregation: 'sum', nodeThreshold: 0.1 },
    });
    // Edges to y are resid_1's node effects.
    const y = r.circuit.edges.filter((e) => e.target === 'y');
    expect(y.length).toBe((ref.edges.resid_1.y.dense as number[]).filter((v) => v !== 0).length);
    for (const e of y) expect(e.weight).toBe(r.circuit.nodes.find((n) => n.id === e.source)!.effect);
  });

  it('a nodes-only save (edges: None) becomes a nodes-only circuit', async () => {
    const { circuit } = await readFcCircuitFile(NODEALL, { nodeThreshold: 0.1 });
    expect(circuit.nodesOnly).toBe(true);
    expect(circuit.edges).toEqual([]);
    expect(new Set(nodeMap(circuit).keys())).toEqual(new Set(refIds('sum').nodes.keys()));
    expect(circuit.source).toMatchObject({ fileName: { nodesOnly: true, aggregation: 'sum', numExamples: 40 } });
  });

  it('refuses mixed aggregations and says which node is off', () => {
    const fc = readFcCircuit(new Uint8Array(readFileSync(new URL('../test-data/formats/circuit.pt', import.meta.url))), 'circuit.pt');
    expect(() => convertFcCircuit(fc)).toThrow(FormatError);
    expect(() => convertFcCircuit(fc)).toThrow(/nodes\['resid_1'\]\.act has shape \[3, 16\]; expected a \[F\] vector/);
  });

  it('missing files and bad thresholds are typed errors', async () => {
    await expect(readFcCircuitFile(`${CIRCUITS}nope.pt`)).rejects.toBeInstanceOf(NotFoundError);
    await expect(readFcCircuitFile(SUM, { nodeThreshold: -1 })).rejects.toBeInstanceOf(InputError);
  });
});

describe('convertFcCircuit on hand-made circuits', () => {
  const dense = (shape: number[], data: number[]): DenseTensor => ({ kind: 'tensor', dtype: 'float32', shape, data: Float32Array.from(data) });
  const sparse = (shape: number[], idx: number[][], values: number[]): SparseCooTensor => ({
    kind: 'sparse_coo', dtype: 'float32', shape, sparseDim: idx.length, nnz: values.length,
    indices: Int32Array.from(idx.flat()), values: Float32Array.from(values),
  });
  const circuit = (over: Partial<FcCircuit> = {}): FcCircuit => ({
    source: 'hand.pt', nodesOnly: false,
    nodes: {
      embed: { act: dense([3], [0.5, 0, -0.2]), resc: dense([1], [0.1]) },
      // an older save: the error effect per model dimension (summed: 0.25 + 0.05 = 0.3)
      resid_0: { act: dense([3], [0, 0.4, 0]), res: dense([2], [0.25, 0.05]) },
    },
    edges: {
      // [F_D+1, F_U+1]: resid_0/1 ← embed/0 stored twice (uncoalesced: 0.1 + 0.2), resid_0/err ← embed/err
      embed: { resid_0: sparse([4, 4], [[1, 1, 3], [0, 0, 3]], [0.1, 0.2, -0.7]) },
      resid_0: { y: dense([4], [0, 0.4, 0, 0.3]) },
    },
    ...over,
  });

  it('sums duplicate entries, reads res-only error nodes, maps index F to the error node', () => {
    const { circuit: c, fileEdges, droppedEdges } = convertFcCircuit(circuit());
    expect(c.nodes.map((n) => [n.id, n.effect])).toEqual([
      ['y', null], ['embed/0', 0.5], ['embed/2', -0.2], ['embed/err', 0.1], ['resid_0/1', 0.4], ['resid_0/err', 0.3],
    ]);
    expect(c.edges.map((e) => [e.source, e.target, e.weight])).toEqual([
      ['embed/0', 'resid_0/1', 0.3], ['embed/err', 'resid_0/err', -0.7], ['resid_0/1', 'y', 0.4], ['resid_0/err', 'y', 0.3],
    ]);
    expect([fileEdges, droppedEdges]).toEqual([4, 0]);
    expect(c.numExamples).toBeNull();
    expect(c.metric).toBe('');
  });

  it('a saved y node is the total effect; a file name gives the example count', () => {
    const c = convertFcCircuit(circuit({ nodes: { ...circuit().nodes, y: { act: dense([], [2.5]) } } }), { file: 'x_dict10_node0.1_edge0.01_n12_aggsum.pt' }).circuit;
    expect(c.totalEffect).toBe(2.5);
    expect(c.nodes[0]).toMatchObject({ id: 'y', effect: 2.5 });
    expect(c.numExamples).toBe(12);
  });

  it('edges above the threshold whose endpoints are not kept are counted as dropped', () => {
    const r = convertFcCircuit(circuit(), { nodeThreshold: 0.35, edgeThreshold: 0 });
    expect(r.circuit.nodes.map((n) => n.id)).toEqual(['y', 'embed/0', 'resid_0/1']);
    expect(r.circuit.edges.map((e) => `${e.source}>${e.target}`)).toEqual(['embed/0>resid_0/1', 'resid_0/1>y']);
    expect(r.droppedEdges).toBe(2);
  });

  it('bad files name the tensor and the expected shape', () => {
    const wrong = circuit({ edges: { embed: { resid_0: dense([4, 3], new Array(12).fill(0)) } } });
    expect(() => convertFcCircuit(wrong)).toThrow(/edges\['embed'\]\['resid_0'\] has shape \[4, 3\]; expected \[4, 4\] \(downstream first/);
    expect(() => convertFcCircuit(circuit({ edges: { mlp_0: { resid_0: dense([4, 4], new Array(16).fill(0)) } } }))).toThrow(/'mlp_0', which is not in nodes/);
    expect(() => convertFcCircuit(circuit({ nodes: { 'model.layers.0': { act: dense([3], [1, 2, 3]) } } }))).toThrow(/unknown submodule name 'model\.layers\.0'/);
    const ints: DenseTensor = { kind: 'tensor', dtype: 'int64', shape: [3], data: new BigInt64Array(3) };
    expect(() => convertFcCircuit(circuit({ nodes: { embed: { act: ints } }, edges: {} }))).toThrow(/dtype int64/);
    expect(() => convertFcCircuit(circuit({ nodes: {} }))).toThrow(/no nodes/);
  });

  it('warns when the file name and the tensors disagree', () => {
    const r = convertFcCircuit(circuit(), { file: 'm_d_n5_aggnone_node0.2.pt' });
    expect(r.warnings.join('\n')).toMatch(/aggregation none.*aggregation sum/);
  });
});

describe('feature-circuits file names', () => {
  it('parses the names circuit.py has used', () => {
    expect(parseFcCircuitName('circuits/pythia-70m-deduped_simple_train_n100_aggnone_node0.1.pt'))
      .toEqual({ numExamples: 100, aggregation: 'none', nodeThreshold: 0.1 });
    expect(parseFcCircuitName('gemma-2-2b_rc_train_n100_aggnone_neurons_nodeall.pt'))
      .toEqual({ numExamples: 100, aggregation: 'none', neurons: true, nodesOnly: true });
    expect(parseFcCircuitName('rc_dict10_node0.1_edge0.01_n3_aggsum.pt'))
      .toEqual({ dictId: '10', nodeThreshold: 0.1, edgeThreshold: 0.01, numExamples: 3, aggregation: 'sum' });
    // save_circuit wrote thresholds with '.' replaced by '_'
    expect(parseFcCircuitName('simple_pythia_node0_1_edge0_01_n10.pt')).toEqual({ nodeThreshold: 0.1, edgeThreshold: 0.01, numExamples: 10 });
    expect(parseFcCircuitName('my circuit.pt')).toEqual({});
  });
});
