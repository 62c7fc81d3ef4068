import { readFileSync } from 'node:fs';
import { FormatError, SecurityError } from '@sfc/core';
import { describe, expect, it } from 'vitest';
import { readFcCircuit } from './fc-circuit.js';
import { toDense, type TensorData } from './tensor-data.js';

const DIR = new URL('../../test-data/formats/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, DIR)));
interface DenseExp { dtype: string; shape: number[]; data: number[] }
interface EdgeExp { kind: string; shape: number[]; data?: number[]; indices?: number[]; values?: number[]; dense?: number[]; nnz?: number }
const expected = JSON.parse(readFileSync(new URL('expected.json', DIR), 'utf8'))['circuit.pt'] as {
  nodes: Record<string, Record<string, DenseExp>>;
  edges: Record<string, Record<string, EdgeExp>>;
  examples: unknown[];
};
const nums = (d: TensorData) => Array.from(d as ArrayLike<number | bigint>, Number);

describe('readFcCircuit', () => {
  const c = readFcCircuit(read('circuit.pt'), 'circuit.pt');

  it('reads every SparseAct node (act, resc, res) exactly', () => {
    expect(Object.keys(c.nodes).sort()).toEqual(Object.keys(expected.nodes).sort());
    for (const [name, e] of Object.entries(expected.nodes)) {
      const node = c.nodes[name]!;
      expect(Object.keys(node).sort(), name).toEqual(Object.keys(e).sort());
      for (const [attr, t] of Object.entries(e)) {
        const got = node[attr as 'act' | 'resc' | 'res']!;
        expect(got.shape, `${name}.${attr}`).toEqual(t.shape);
        expect(nums(got.data), `${name}.${attr}`).toEqual(t.data);
      }
    }
  });

  it('reads sparse and dense edges (storages tagged cuda:0) exactly', () => {
    expect(Object.keys(c.edges).sort()).toEqual(Object.keys(expected.edges).sort());
    let sparse = 0, dense = 0;
    for (const [up, downs] of Object.entries(expected.edges)) {
      expect(Object.keys(c.edges[up]!).sort(), up).toEqual(Object.keys(downs).sort());
      for (const [down, e] of Object.entries(downs)) {
        const got = c.edges[up]![down]!;
        const what = `${up}->${down}`;
        expect(got.kind, what).toBe(e.kind);
        expect(got.shape, what).toEqual(e.shape);
        if (got.kind === 'sparse_coo') {
          sparse++;
          expect(got.nnz, what).toBe(e.nnz);
          expect(Array.from(got.indices), what).toEqual(e.indices);
          expect(nums(got.values), what).toEqual(e.values);
          expect(nums(toDense(got).data), what).toEqual(e.dense);
        } else {
          dense++;
          expect(nums(got.data), what).toEqual(e.data);
        }
      }
    }
    expect(sparse).toBeGreaterThan(5);
    expect(dense).toBe(1);
    expect(c.edges['resid_1']!['y']!.shape).toEqual([17]);
  });

  it('keeps the saved examples as plain data', () => {
    const ex = c.examples as Map<string, unknown>[];
    expect(ex.map((m) => Object.fromEntries(m))).toEqual(expected.examples);
  });

  it('returns null-prototype records', () => {
    expect(Object.getPrototypeOf(c.nodes)).toBe(null);
    expect(Object.getPrototypeOf(c.edges)).toBe(null);
  });

  it('rejects files that are not circuits, and code in circuits', () => {
    expect(() => readFcCircuit(read('tensors.pt'), 'tensors.pt')).toThrow(FormatError);
    expect(() => readFcCircuit(read('evil/os_system.pt'), 'evil.pt')).toThrow(SecurityError);
    expect(() => readFcCircuit(read('circuit.pt'), 'c', { limits: { maxTotalElements: 100 } })).toThrow(FormatError);
  });
});

describe('readFcCircuit on saves of feature-circuits\' circuit.py', () => {
  const dir = new URL('circuits/', DIR);
  const file = (name: string) => new Uint8Array(readFileSync(new URL(name, dir)));

  it('reads a nodes-only save (edges: None) as a circuit without edges', () => {
    const c = readFcCircuit(file('small-a_agreement_n40_aggsum_nodeall.pt'), 'nodeall.pt');
    expect(c.nodesOnly).toBe(true);
    expect(Object.keys(c.edges)).toEqual([]);
    expect(Object.keys(c.nodes)).toEqual(['embed', 'attn_0', 'mlp_0', 'resid_0', 'attn_1', 'mlp_1', 'resid_1']);
    expect(c.nodes['resid_0']!.act.shape).toEqual([128]);
    expect(c.nodes['resid_0']!.resc!.shape).toEqual([1]);
  });

  it('reads position-resolved edges as 4-d sparse tensors', () => {
    const c = readFcCircuit(file('small-a_agreement_n40_aggnone_node0.1.pt'), 'none.pt');
    expect(c.nodesOnly).toBe(false);
    const e = c.edges['embed']!['attn_0']!;
    expect(e.kind).toBe('sparse_coo');
    expect(e.shape).toEqual([6, 129, 6, 129]);
    expect(c.edges['resid_1']!['y']!.shape).toEqual([6, 129]);
    expect(readFcCircuit(read('circuit.pt'), 'circuit.pt').nodesOnly).toBe(false);
  });
});
