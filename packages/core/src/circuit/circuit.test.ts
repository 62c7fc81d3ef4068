import { describe, expect, it } from 'vitest';
import type { NodeEffects } from '../algorithms/attribution.js';
import type { DiscoveryResult } from '../algorithms/discover.js';
import { EdgeAccumulator, metricEdges } from '../algorithms/edges.js';
import { FormatError, InputError } from '../errors.js';
import { assembleCircuit, buildCircuit, circuitNodeEffects, parseCircuit, pruneCircuit, serializeCircuit, type Circuit } from './circuit.js';
import { effectsFromFile, effectsToFile, parseEffects, serializeEffects } from './effects-file.js';

const F = 4;

function effect(sub: string, features: number[], error: number[], positions: number | null): NodeEffects {
  return { submodule: sub, dSae: F, positions, features: Float64Array.from(features), error: Float64Array.from(error) };
}

/** A tiny discovery: embed → resid_0, aggregation sum, F = 4. */
function discovery(): DiscoveryResult {
  const effects = new Map([
    ['embed', effect('embed', [0.5, -0.05, 0, -0.3], [0.2], null)],
    ['resid_0', effect('resid_0', [0, 0.7, -0.15, 0.01], [0.12], null)],
  ]);
  const acc = new EdgeAccumulator('embed', 'resid_0', null, F + 1, F + 1);
  // Rows: downstream resid_0/1 and resid_0/err; entries over upstream embed nodes 0..4.
  acc.addDense([1, 4], Float32Array.from([0.4, 0.02, 0, -0.6, 0.005, /* err row */ 0, 0, 0, 0.3, -0.2]), F + 1);
  acc.addDense([1], Float32Array.from([0.4, 0, 0, 0, 0]), F + 1); // a second batch adds to the first
  const r0 = effects.get('resid_0')!;
  return {
    method: 'ig', steps: 10, aggregation: 'sum', numExamples: 2, seqLen: 3, submodules: ['embed', 'resid_0'], effects,
    metric: 'logit-diff', metricClean: -1, metricPatch: 1.5, totalEffect: 2.5,
    perExample: { exampleIndex: [0, 1], metricClean: Float64Array.of(-1, -1), metricPatch: Float64Array.of(1.5, 1.5) },
    nodeThreshold: 0.1, nodesOnly: false,
    edges: [metricEdges('resid_0', F, null, r0.features, r0.error), acc.result(2)],
    downstreamNodes: new Map([['embed', 3], ['resid_0', 2]]),
  };
}

describe('circuits (sfc.circuit/v1)', () => {
  it('keeps nodes above the node threshold and edges between kept nodes above the edge threshold', () => {
    const c = buildCircuit(discovery(), { edgeThreshold: 0.01 });
    expect(c.schema).toBe('sfc.circuit/v1');
    expect(c.nodes.map((n) => n.id)).toEqual(['y', 'embed/0', 'embed/3', 'embed/err', 'resid_0/1', 'resid_0/2', 'resid_0/err']);
    expect(c.nodes.find((n) => n.id === 'resid_0/err')).toEqual({ id: 'resid_0/err', submodule: 'resid_0', index: 4, pos: null, effect: 0.12 });
    expect(c.nodes[0]).toEqual({ id: 'y', submodule: 'y', index: null, pos: null, effect: 2.5 });
    // Edge weights are means over the 2 examples; (0.4 + 0.4) / 2 = 0.4.
    expect(c.edges).toEqual([
      { source: 'resid_0/1', target: 'y', weight: 0.7 },
      { source: 'resid_0/2', target: 'y', weight: -0.15 },
      { source: 'resid_0/err', target: 'y', weight: 0.12 },
      { source: 'embed/0', target: 'resid_0/1', weight: 0.4 },
      { source: 'embed/3', target: 'resid_0/1', weight: -0.3 },
      { source: 'embed/3', target: 'resid_0/err', weight: 0.15 },
      { source: 'embed/err', target: 'resid_0/err', weight: -0.1 },
    ]);
    // Threshold 0 keeps every nonzero edge between kept nodes: embed/err → resid_0/1 (0.005 / 2) appears.
    const all = buildCircuit(discovery(), { edgeThreshold: 0 });
    expect(all.edges.length).toBe(c.edges.length + 1);
    expect(all.edges).toContainEqual({ source: 'embed/err', target: 'resid_0/1', weight: 0.0025 });
    const wide = buildCircuit(discovery(), { nodeThreshold: 0.001, edgeThreshold: 0 });
    expect(wide.edges.some((e) => e.source === 'embed/1' && e.target === 'resid_0/1')).toBe(true);
    expect(wide.edges.some((e) => e.source === 'embed/2')).toBe(false); // zero weights are never edges
  });

  it('round-trips through JSON and rejects malformed files with the field path', () => {
    const c = buildCircuit(discovery(), { meta: { model: { name: 'tiny' } } });
    const back = parseCircuit(serializeCircuit(c), 'c.json');
    expect(back).toEqual(c);
    const broken = (edit: (o: Record<string, any>) => void): string => {
      const o = JSON.parse(serializeCircuit(c));
      edit(o);
      return JSON.stringify(o);
    };
    const expectFail = (text: string, re: RegExp) => {
      expect(() => parseCircuit(text, 'c.json')).toThrow(FormatError);
      expect(() => parseCircuit(text, 'c.json')).toThrow(re);
    };
    expectFail('{', /not valid JSON/);
    expectFail(broken((o) => { o.schema = 'sfc.circuit/v2'; }), /schema must be "sfc.circuit\/v1"/);
    expectFail(broken((o) => { o.nodes[1].id = 'embed/7'; }), /nodes\[1\]\.id feature 7 is out of range/);
    expectFail(broken((o) => { o.nodes[1].index = 2; }), /nodes\[1\]\.index must be 0/);
    expectFail(broken((o) => { o.nodes[1].id = 'embed/0@1'; }), /must not have a @pos/);
    expectFail(broken((o) => { o.nodes[2].id = 'embed/0'; o.nodes[2].index = 0; }), /duplicates node embed\/0/);
    expectFail(broken((o) => { o.edges[0].source = 'mlp_0/1'; }), /edges\[0\]\.source is not a node of the circuit/);
    expectFail(broken((o) => { o.edges[0].weight = 'x'; }), /edges\[0\]\.weight must be a finite number/);
    expectFail(broken((o) => { o.nodes[1].id = 'embed/4'; o.nodes[1].index = 4; }), /write it as embed\/err/);
    expectFail(broken((o) => { o.aggregation = 'mean'; }), /aggregation must be one of sum, none/);
  });

  it('prunes purely: higher thresholds, connectivity to y', () => {
    const c = buildCircuit(discovery(), { edgeThreshold: 0 });
    const frozen = JSON.stringify(c);
    const p = pruneCircuit(c, { nodeThreshold: 0.25 });
    expect(JSON.stringify(c)).toBe(frozen);
    expect(p.nodeThreshold).toBe(0.25);
    expect(p.nodes.map((n) => n.id)).toEqual(['y', 'embed/0', 'embed/3', 'resid_0/1']);
    expect(p.edges.every((e) => p.nodes.some((n) => n.id === e.source) && p.nodes.some((n) => n.id === e.target))).toBe(true);
    const lower = pruneCircuit(c, { nodeThreshold: 0.01 });
    expect(lower.nodeThreshold).toBe(0.1); // cannot go below what the file holds
    const conn = pruneCircuit(pruneCircuit(c, { edgeThreshold: 0.35 }), { connectedOnly: true });
    expect(conn.nodes.map((n) => n.id)).toEqual(['y', 'embed/0', 'resid_0/1']);
    expect(() => pruneCircuit({ ...c, nodesOnly: true }, { connectedOnly: true })).toThrow(InputError);
  });

  it('gives dense node effects for evaluation', () => {
    const e = circuitNodeEffects(buildCircuit(discovery()));
    expect([...e.get('embed')!.features]).toEqual([0.5, 0, 0, -0.3]);
    expect([...e.get('resid_0')!.error]).toEqual([0.12]);
  });

  it('imported circuits: metric fields and the example count may be null, provenance is kept', () => {
    // A circuit converted from another tool's file: no metric was measured, so none is invented.
    const parts = { ...discovery(), numExamples: null, metric: '', metricClean: null, metricPatch: null, totalEffect: null };
    const source = { format: 'feature-circuits', file: 'rc_n40_aggsum_node0.1.pt' };
    const c = assembleCircuit(parts, { nodeThreshold: 0.1, edgeThreshold: 0.01, source });
    expect(c).toMatchObject({ numExamples: null, metricClean: null, metricPatch: null, totalEffect: null, source });
    expect(c.nodes[0]).toEqual({ id: 'y', submodule: 'y', index: null, pos: null, effect: null });
    // Same nodes and edges as buildCircuit with the same thresholds.
    const built = buildCircuit(discovery(), { edgeThreshold: 0.01 });
    expect(c.nodes.slice(1)).toEqual(built.nodes.slice(1));
    expect(c.edges).toEqual(built.edges);
    const text = serializeCircuit(c);
    expect(JSON.parse(text)).toMatchObject({ metricClean: null, numExamples: null, source });
    expect(parseCircuit(text, 'c.json')).toEqual(c);
    // Still typed: a wrong value is an error, not a null.
    expect(() => parseCircuit(text.replace('"metricClean":null', '"metricClean":"n/a"'), 'c.json')).toThrow(/metricClean must be a finite number/);
    expect(() => parseCircuit(text.replace('"numExamples":null', '"numExamples":0'), 'c.json')).toThrow(/numExamples must be an integer ≥ 1/);
    expect(() => parseCircuit(text.replace('"source":{', '"source":7,"x":{'), 'c.json')).toThrow(/source must be an object/);
    expect(buildCircuit(discovery()).source).toBeUndefined();
  });

  it('handles aggregation none (positions in ids, [s][F] effects)', () => {
    const effects = new Map([['resid_0', effect('resid_0', [0, 0.3, 0, 0, /* pos 1 */ 0, 0, -0.2, 0], [0.5, 0], 2)]]);
    const r: DiscoveryResult = {
      ...discovery(), aggregation: 'none', seqLen: 2, submodules: ['resid_0'], effects,
      edges: [metricEdges('resid_0', F, 2, effects.get('resid_0')!.features, effects.get('resid_0')!.error)],
    };
    const c: Circuit = buildCircuit(r);
    expect(c.nodes.map((n) => n.id)).toEqual(['y', 'resid_0/1@0', 'resid_0/err@0', 'resid_0/2@1']);
    expect(c.edges.map((e) => `${e.source}>${e.target}`)).toEqual(['resid_0/1@0>y', 'resid_0/err@0>y', 'resid_0/2@1>y']);
    expect(parseCircuit(serializeCircuit(c))).toEqual(c);
    expect(() => parseCircuit(serializeCircuit(c).replace('"resid_0/2@1"', '"resid_0/2@2"'))).toThrow(/position 2 is out of range/);
    const dense = circuitNodeEffects(c).get('resid_0')!;
    expect([...dense.features]).toEqual([0, 0.3, 0, 0, 0, 0, -0.2, 0]);
    expect([...dense.error]).toEqual([0.5, 0]);
  });
});

describe('effects files (sfc.effects/v1)', () => {
  it('writes the documented shape and reads it back', () => {
    const d = discovery();
    const file = effectsToFile(d, { model: { name: 'tiny' } });
    const json = JSON.parse(serializeEffects(file));
    expect(json).toMatchObject({
      schema: 'sfc.effects/v1', method: 'ig', steps: 10, aggregation: 'sum', numExamples: 2, submodules: ['embed', 'resid_0'],
      effects: { embed: { features: [0.5, -0.05, 0, -0.3], error: 0.2 } }, metricClean: -1, metricPatch: 1.5, totalEffect: 2.5,
      model: { name: 'tiny' },
    });
    const back = parseEffects(serializeEffects(file));
    expect(back).toEqual(file);
    expect([...effectsFromFile(back).get('resid_0')!.features]).toEqual([0, 0.7, -0.15, 0.01]);
  });

  it('keeps positions for aggregation none and checks sizes', () => {
    const e = effect('embed', [1, 2, 3, 4, 5, 6, 7, 8], [0.1, 0.2], 2);
    const file = effectsToFile({ ...discovery(), aggregation: 'none', seqLen: 2, submodules: ['embed'], effects: new Map([['embed', e]]) });
    expect(file.effects.embed).toEqual({ features: [[1, 2, 3, 4], [5, 6, 7, 8]], error: [0.1, 0.2] });
    expect(parseEffects(serializeEffects(file))).toEqual(file);
    const bad = serializeEffects(file).replace('[5,6,7,8]', '[5,6,7]');
    expect(() => parseEffects(bad, 'e.json')).toThrow(/effects\.embed\.features\[1\] must have 4 entries/);
    expect(() => parseEffects('{"schema":"sfc.circuit/v1"}', 'e.json')).toThrow(FormatError);
  });
});
