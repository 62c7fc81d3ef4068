// What the circuit panes show, computed from an sfc.circuit/v1 circuit as pure functions: the
// node list grouped by submodule (forward order, the metric node y last) and sorted by |effect|,
// the text filter, a node's strongest incoming and outgoing edges, per-submodule effect totals
// for the bar chart, and the Neuronpedia page of a feature.

import { METRIC_NODE, type Circuit, type CircuitEdge, type CircuitNode } from '@sfc/core';
import { DEFAULT_SAE_SET, featurePageUrl } from '@sfc/steering';
import { annotationOf, type Annotations } from '../annotations.js';

export { annotationOf, type Annotations };

export interface GroupRow {
  readonly kind: 'group';
  readonly submodule: string;
  /** Nodes of the submodule that pass the filter. */
  readonly shown: number;
  /** Nodes of the submodule in the circuit. */
  readonly total: number;
}

export interface NodeRow {
  readonly kind: 'node';
  readonly node: CircuitNode;
  readonly annotation?: string;
}

export type Row = GroupRow | NodeRow;

/** True for SAE error nodes (index dSae). */
export function isErrorNode(circuit: Circuit, node: CircuitNode): boolean {
  return node.index !== null && node.index === circuit.dSae[node.submodule];
}

/** Case-insensitive match of every space-separated word against the id and the annotation. */
export function matchesFilter(id: string, annotation: string | undefined, filter: string): boolean {
  const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
  const hay = `${id} ${annotation ?? ''}`.toLowerCase();
  return words.every((w) => hay.includes(w));
}

/** Group headers and node rows: submodules in forward order, y last; |effect| descending within. */
export function circuitRows(circuit: Circuit, annotations: Annotations | undefined, filter: string): Row[] {
  const bySub = new Map<string, CircuitNode[]>();
  for (const n of circuit.nodes) bySub.set(n.submodule, [...(bySub.get(n.submodule) ?? []), n]);
  const order = [...circuit.submodules, METRIC_NODE];
  const rows: Row[] = [];
  for (const sub of order) {
    const all = bySub.get(sub) ?? [];
    const shown = all
      .filter((n) => matchesFilter(n.id, annotationOf(annotations, n.id), filter))
      .sort((a, b) => Math.abs(b.effect ?? 0) - Math.abs(a.effect ?? 0) || (a.index ?? 0) - (b.index ?? 0) || (a.pos ?? 0) - (b.pos ?? 0));
    if (shown.length === 0) continue;
    rows.push({ kind: 'group', submodule: sub, shown: shown.length, total: all.length });
    for (const node of shown) {
      const annotation = annotationOf(annotations, node.id);
      rows.push(annotation === undefined ? { kind: 'node', node } : { kind: 'node', node, annotation });
    }
  }
  return rows;
}

/** Node rows only (what the cursor moves over). */
export function nodeRows(rows: readonly Row[]): NodeRow[] {
  return rows.filter((r): r is NodeRow => r.kind === 'node');
}

export interface NodeEdges {
  /** Edges into the node, |weight| descending. */
  readonly incoming: readonly CircuitEdge[];
  readonly outgoing: readonly CircuitEdge[];
}

const byWeight = (a: CircuitEdge, b: CircuitEdge) => Math.abs(b.weight) - Math.abs(a.weight);

/** The node's `limit` strongest incoming and outgoing edges. */
export function nodeEdges(circuit: Circuit, id: string, limit: number): NodeEdges {
  return {
    incoming: circuit.edges.filter((e) => e.target === id).sort(byWeight).slice(0, Math.max(0, limit)),
    outgoing: circuit.edges.filter((e) => e.source === id).sort(byWeight).slice(0, Math.max(0, limit)),
  };
}

export interface SubmoduleTotal {
  readonly submodule: string;
  /** Sum of the effects of its nodes in the circuit. */
  readonly sum: number;
  /** Sum of |effect|. */
  readonly abs: number;
  readonly nodes: number;
}

/**
 * Effect totals per submodule in forward order (submodules without nodes included, with 0). With
 * `limit`, the `limit` largest by |effect| sum, still in forward order.
 */
export function submoduleTotals(circuit: Circuit, limit?: number): SubmoduleTotal[] {
  const totals = circuit.submodules.map((submodule) => {
    const nodes = circuit.nodes.filter((n) => n.submodule === submodule);
    return {
      submodule,
      sum: nodes.reduce((s, n) => s + (n.effect ?? 0), 0),
      abs: nodes.reduce((s, n) => s + Math.abs(n.effect ?? 0), 0),
      nodes: nodes.length,
    };
  });
  if (limit === undefined || totals.length <= limit) return totals;
  const keep = new Set([...totals].sort((a, b) => b.abs - a.abs).slice(0, Math.max(0, limit)).map((t) => t.submodule));
  return totals.filter((t) => keep.has(t.submodule));
}

export interface NeuronpediaOptions {
  readonly modelId?: string;
  readonly saeSet?: string;
}

/**
 * The Neuronpedia page of a feature node, or why there is none (no model id configured, an
 * error node, the metric node).
 */
export function neuronpediaLink(circuit: Circuit, node: CircuitNode, options: NeuronpediaOptions): { url: string } | { none: string } {
  if (node.submodule === METRIC_NODE) return { none: 'the metric node has no feature page' };
  if (isErrorNode(circuit, node)) return { none: 'SAE error nodes have no Neuronpedia page' };
  if (!options.modelId) return { none: 'no link: give --model-id if Neuronpedia hosts this model' };
  return { url: featurePageUrl({ kind: 'feature', submodule: node.submodule, index: node.index!, pos: null }, { modelId: options.modelId, saeSet: options.saeSet ?? DEFAULT_SAE_SET }) };
}
