import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseCircuit } from '@sfc/core';
import { annotationOf, circuitRows, matchesFilter, neuronpediaLink, nodeEdges, nodeRows, submoduleTotals } from './circuit-view.js';

const circuit = parseCircuit(readFileSync(new URL('./test-data/small-a-circuit.json', import.meta.url), 'utf8'));
const node = (id: string) => circuit.nodes.find((n) => n.id === id)!;

describe('circuitRows', () => {
  it('groups by submodule in forward order (y last), |effect| descending within a group', () => {
    const rows = circuitRows(circuit, undefined, '');
    const groups = rows.filter((r) => r.kind === 'group').map((r) => r.kind === 'group' && `${r.submodule}:${r.shown}`);
    expect(groups).toEqual(['embed:4', 'attn_0:2', 'resid_0:4', 'attn_1:3', 'resid_1:4', 'y:1']); // mlp_0/mlp_1 have no nodes
    expect(nodeRows(rows).slice(0, 4).map((r) => r.node.id)).toEqual(['embed/err', 'embed/105', 'embed/54', 'embed/104']);
    for (const sub of circuit.submodules) {
      const effects = nodeRows(rows).filter((r) => r.node.submodule === sub).map((r) => Math.abs(r.node.effect!));
      expect(effects).toEqual([...effects].sort((a, b) => b - a));
    }
    expect(nodeRows(rows)).toHaveLength(circuit.nodes.length);
  });

  it('filters on every word, in ids and annotations, case-insensitively', () => {
    const ann = new Map([['resid_1/8', 'Plural subject'], ['resid_0/116', 'plural suffix']]);
    const ids = (f: string) => nodeRows(circuitRows(circuit, ann, f)).map((r) => r.node.id);
    expect(ids('PLURAL')).toEqual(['resid_0/116', 'resid_1/8']);
    expect(ids('plural resid_1')).toEqual(['resid_1/8']);
    expect(ids('err')).toEqual(['embed/err', 'resid_0/err', 'attn_1/err', 'resid_1/err']);
    expect(ids('nothing like this')).toEqual([]);
    const filtered = circuitRows(circuit, ann, 'plural');
    expect(filtered.find((r) => r.kind === 'group' && r.submodule === 'resid_1')).toEqual({ kind: 'group', submodule: 'resid_1', shown: 1, total: 4 });
    expect(nodeRows(filtered)[1]!.annotation).toBe('Plural subject');
  });

  it('matchesFilter treats an empty filter as everything', () => {
    expect(matchesFilter('resid_1/8', undefined, '')).toBe(true);
    expect(matchesFilter('resid_1/8', undefined, '   ')).toBe(true);
  });
});

describe('annotationOf', () => {
  it('finds position-resolved nodes by their feature id', () => {
    const ann = new Map([['resid_3/12', 'x']]);
    expect(annotationOf(ann, 'resid_3/12@4')).toBe('x');
    expect(annotationOf(ann, 'resid_3/13@4')).toBeUndefined();
    expect(annotationOf(undefined, 'resid_3/12')).toBeUndefined();
  });
});

describe('nodeEdges', () => {
  it('lists the strongest incoming and outgoing edges by |weight|', () => {
    const e = nodeEdges(circuit, 'resid_1/err', 3);
    expect(e.incoming.map((x) => [x.source, x.weight])).toEqual([['resid_0/err', 0.2182], ['attn_1/105', 0.1106], ['attn_1/56', -0.1041]]);
    expect(e.outgoing.map((x) => [x.target, x.weight])).toEqual([['y', 0.9406]]);
    expect(nodeEdges(circuit, 'embed/54', 5).incoming).toEqual([]);
    expect(nodeEdges(circuit, 'resid_1/err', 0).incoming).toEqual([]);
  });
});

describe('submoduleTotals', () => {
  it('sums effects per submodule in forward order', () => {
    const t = submoduleTotals(circuit);
    expect(t.map((x) => x.submodule)).toEqual(circuit.submodules);
    const resid1 = t.find((x) => x.submodule === 'resid_1')!;
    expect(resid1.sum).toBeCloseTo(0.9406 + 0.2582 + 0.2356 - 0.1146, 10);
    expect(resid1.abs).toBeCloseTo(0.9406 + 0.2582 + 0.2356 + 0.1146, 10);
    expect(t.find((x) => x.submodule === 'mlp_0')).toEqual({ submodule: 'mlp_0', sum: 0, abs: 0, nodes: 0 });
  });

  it('keeps the strongest submodules, still in forward order, when limited', () => {
    expect(submoduleTotals(circuit, 3).map((x) => x.submodule)).toEqual(['embed', 'resid_0', 'resid_1']);
  });
});

describe('neuronpediaLink', () => {
  it('links features when a model id is set', () => {
    expect(neuronpediaLink(circuit, node('resid_1/8'), { modelId: 'pythia-70m-deduped' })).toEqual({ url: 'https://www.neuronpedia.org/pythia-70m-deduped/1-res-sm/8' });
    expect(neuronpediaLink(circuit, node('attn_0/73'), { modelId: 'm', saeSet: 'x' })).toEqual({ url: 'https://www.neuronpedia.org/m/0-att-x/73' });
    expect(neuronpediaLink(circuit, node('embed/54'), { modelId: 'm' })).toEqual({ url: 'https://www.neuronpedia.org/m/e-res-sm/54' });
  });

  it('says why there is no link', () => {
    expect(neuronpediaLink(circuit, node('resid_1/8'), {})).toEqual({ none: expect.stringContaining('--model-id') });
    expect(neuronpediaLink(circuit, node('resid_1/err'), { modelId: 'm' })).toEqual({ none: expect.stringContaining('error nodes') });
    expect(neuronpediaLink(circuit, node('y'), { modelId: 'm' })).toEqual({ none: expect.stringContaining('metric') });
  });
});
