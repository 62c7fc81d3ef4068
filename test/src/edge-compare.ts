// Comparison of a discover result with a PyTorch edge reference (the `ig_{sum,none}.json` layout
// of fixtures/small-a/ref and fixtures/models/<name>/edges): the pairs, the downstream nodes
// selected per example and position, every stored edge entry with counts and sums,
// resid_last → y, and the thresholded circuit. Shared by the edge parity tests.
import { expect } from 'vitest';
import { buildCircuit, edgePairs, type DiscoveryResult, type EdgeSet, type Model } from '@sfc/core';
import { relMaxError } from '@sfc/core/testing';
import type { Json } from './small-a.js';

/** Allowed |ours − reference| for one entry (edge weight, circuit node or edge). */
export const EDGE_TOL = (r: number) => 1e-3 * Math.abs(r) + 1e-5;

/** The reference's key of an entry: `down,up` (sum) or `s_down,k_down,s_up,j_up` (none). */
function entryKey(set: EdgeSet, down: number, up: number): string {
  if (set.positions === null) return `${down},${up}`;
  return `${Math.floor(down / set.downNodes)},${down % set.downNodes},${Math.floor(up / set.upNodes)},${up % set.upNodes}`;
}

/**
 * One pair against the reference: stored entries, nothing unexpected above the floor, counts and
 * sums. Returns max|Δ|/max|ref| over the stored entries (0 when none is stored).
 */
function checkPair(set: EdgeSet, expected: Json, floor: number): number {
  const label = `${set.upstream} → ${set.downstream}`;
  const ours = new Map<string, number>();
  for (let n = 0; n < set.weight.length; n++) ours.set(entryKey(set, set.down[n]!, set.up[n]!), set.weight[n]!);
  const refEntries = new Map<string, number>((expected.entries as number[][]).map((e) => [e.slice(0, -1).join(','), e[e.length - 1]!]));
  const a: number[] = [], r: number[] = [];
  for (const [k, w] of refEntries) {
    const got = ours.get(k) ?? 0;
    expect(Math.abs(got - w), `${label} entry ${k}: ${got} vs ${w}`).toBeLessThanOrEqual(EDGE_TOL(w));
    a.push(got); r.push(w);
  }
  for (const [k, w] of ours) {
    if (Math.abs(w) > floor + 1e-5) expect(refEntries.has(k), `${label}: extra entry ${k} = ${w}`).toBe(true);
  }
  const rel = relMaxError(a, r);
  expect(rel, `${label} max|Δ|/max|ref|`).toBeLessThanOrEqual(1e-3);
  expect(set.rows.length, `${label} n_rows`).toBe(expected.n_rows);
  expect(set.weight.length, `${label} nnz`).toBe(expected.nnz);
  const sum = set.weight.reduce((x, w) => x + w, 0);
  const abs = set.weight.reduce((x, w) => x + Math.abs(w), 0);
  expect(Math.abs(sum - expected.sum), `${label} sum`).toBeLessThanOrEqual(1e-3 * expected.abs_sum + 1e-5);
  expect(Math.abs(abs - expected.abs_sum), `${label} abs_sum`).toBeLessThanOrEqual(1e-3 * expected.abs_sum + 1e-5);
  return rel;
}

/** The pairs discover computed equal the reference's (sorted `up>down` keys, y excluded); returns them. */
export function checkEdgePairs(model: Model, result: DiscoveryResult, expected: Json): string[] {
  const pairs = edgePairs(model, result.submodules).map((p) => `${p.upstream}>${p.downstream}`).sort();
  const refPairs = Object.entries(expected.edges as Record<string, Record<string, unknown>>)
    .flatMap(([up, downs]) => Object.keys(downs).filter((d) => d !== 'y').map((d) => `${up}>${d}`)).sort();
  expect(pairs).toEqual(refPairs);
  return pairs;
}

/** How many downstream nodes (example, position, feature) were selected per submodule. */
export function checkDownstreamNodes(result: DiscoveryResult, expected: Json): void {
  for (const [sub, n] of Object.entries(expected.downstream_nodes_above_threshold as Record<string, number>)) {
    expect(result.downstreamNodes.get(sub), sub).toBe(n);
  }
}

/**
 * Every pair but → y against the reference (`onPair` gets each pair's max|Δ|/max|ref|); returns
 * how many stored entries were compared.
 */
export function checkEdgeSets(result: DiscoveryResult, expected: Json, onPair?: (relError: number) => void): number {
  let checked = 0;
  for (const set of result.edges) {
    if (set.downstream === 'y') continue;
    const e = expected.edges[set.upstream]?.[set.downstream];
    expect(e, `${set.upstream} → ${set.downstream} in the reference`).toBeDefined();
    const rel = checkPair(set, e, expected.edges_entry_floor); // not inside onPair?.(…): that skips its arguments without onPair
    onPair?.(rel);
    checked += e.entries.length;
  }
  return checked;
}

/** resid_last → y is the node effect of the last resid (the reference's dense row). */
export function checkLastToY(result: DiscoveryResult, expected: Json): void {
  const last = result.submodules[result.submodules.length - 1]!;
  const y = result.edges.find((e) => e.downstream === 'y')!;
  expect(y.upstream).toBe(last);
  const flat = (expected.edges[last].y.dense as number[] | number[][]).flat();
  const ours = new Array<number>(flat.length).fill(0);
  for (let n = 0; n < y.weight.length; n++) ours[y.up[n]!] = y.weight[n]!;
  expect(relMaxError(ours, flat)).toBeLessThanOrEqual(1e-3);
}

/** The reference circuit as node ids (`resid_1/7`, `attn_0/err@3`) and `source>target` edge keys. */
function refCircuit(expected: Json): { nodes: Map<string, number>; edges: Map<string, number> } {
  const id = (sub: string, idx: number[]): string => {
    if (sub === 'y') return 'y';
    const k = idx[idx.length - 1]!;
    const base = `${sub}/${k === expected.d_sae[sub] ? 'err' : k}`;
    return idx.length === 2 ? `${base}@${idx[0]}` : base;
  };
  const nodes = new Map<string, number>();
  for (const [sub, list] of Object.entries(expected.circuit.nodes as Record<string, number[][]>)) {
    for (const n of list) nodes.set(id(sub, n.slice(0, -1)), n[n.length - 1]!);
  }
  const edges = new Map<string, number>();
  for (const [up, ui, down, di, w] of expected.circuit.edges as [string, number[], string, number[], number][]) edges.set(`${id(up, ui)}>${id(down, di)}`, w);
  return { nodes, edges };
}

/** buildCircuit at the reference's thresholds gives its nodes and edges; returns the reference circuit. */
export function checkCircuit(result: DiscoveryResult, expected: Json): { nodes: Map<string, number>; edges: Map<string, number> } {
  const c = buildCircuit(result, { nodeThreshold: expected.node_threshold, edgeThreshold: expected.edge_threshold });
  const want = refCircuit(expected);
  const nodes = new Map(c.nodes.filter((n) => n.id !== 'y').map((n) => [n.id, n.effect!]));
  expect([...nodes.keys()].sort()).toEqual([...want.nodes.keys()].sort());
  for (const [k, w] of want.nodes) expect(Math.abs(nodes.get(k)! - w), k).toBeLessThanOrEqual(EDGE_TOL(w));
  const edges = new Map(c.edges.map((e) => [`${e.source}>${e.target}`, e.weight]));
  expect([...edges.keys()].sort()).toEqual([...want.edges.keys()].sort());
  for (const [k, w] of want.edges) expect(Math.abs(edges.get(k)! - w), k).toBeLessThanOrEqual(EDGE_TOL(w));
  return want;
}
