// Reader for circuits saved by feature-circuits (saprmarks/feature-circuits): a torch.save'd dict
// `{examples?, nodes, edges}` where nodes[submodule] is an `activation_utils.SparseAct` (attributes
// act, resc and sometimes res, all tensors) and edges[upstream][downstream] is a sparse COO or
// dense tensor. SparseAct is recorded as inert data (its class is never needed). Returns plain
// typed records; conversion to sfc.circuit/v1 lives elsewhere.

import { FormatError, quoteName } from '@sfc/core';
import { isPickleObject, type PickleValue } from './pickle.js';
import { isDenseTensor, isSparseCoo, readTorchCheckpoint, type TorchCheckpointOptions } from './torch-checkpoint.js';
import { toDense, type DenseTensor, type SparseCooTensor } from './tensor-data.js';

/** Class names feature-circuits has used for SparseAct. */
export const SPARSE_ACT_CLASSES: readonly string[] = Object.freeze(['activation_utils.SparseAct', 'utils.activation.SparseAct']);

export interface FcCircuitNode {
  /** Effects of the dictionary features: [d_dict], or [n_pos, d_dict] for aggregation 'none'. */
  readonly act: DenseTensor;
  /** Contracted residual (error-node effect): [1] or [n_pos, 1]. */
  readonly resc?: DenseTensor;
  /** Uncontracted residual, present in some older saves: [d_model] or [n_pos, d_model]. */
  readonly res?: DenseTensor;
}

export type FcEdge = DenseTensor | SparseCooTensor;

export interface FcCircuit {
  readonly source: string;
  /** nodes[submodule name, e.g. 'resid_0'] (null-prototype record). */
  readonly nodes: Readonly<Record<string, FcCircuitNode>>;
  /** edges[upstream][downstream] (null-prototype records); downstream may be 'y'. Empty when nodesOnly. */
  readonly edges: Readonly<Record<string, Readonly<Record<string, FcEdge>>>>;
  /** The file has no edges (`edges: None`, saved by feature-circuits' --nodes_only). */
  readonly nodesOnly: boolean;
  /** The saved `examples` value as unpickled, when present. */
  readonly examples?: PickleValue;
}

export interface FcCircuitOptions extends TorchCheckpointOptions {
  /** More class names to accept for SparseAct (default SPARSE_ACT_CLASSES). */
  readonly sparseActClasses?: readonly string[];
  /** Largest sparse node tensor densified (default 2^26 elements). */
  readonly maxDenseElements?: number;
}

export function readFcCircuit(bytes: Uint8Array, source: string, options: FcCircuitOptions = {}): FcCircuit {
  const classes = [...SPARSE_ACT_CLASSES, ...(options.sparseActClasses ?? [])];
  const root = readTorchCheckpoint(bytes, source, { ...options, dataClasses: [...classes, ...(options.dataClasses ?? [])] });
  const bad = (m: string) => new FormatError(`${source}: ${m}`, 'expected a circuit saved by feature-circuits: torch.save({"nodes": ..., "edges": ...})');
  if (!(root instanceof Map)) throw bad('the file does not hold a dict');
  const rawNodes = root.get('nodes');
  const rawEdges = root.get('edges');
  if (!(rawNodes instanceof Map)) throw bad("no 'nodes' dict");
  if (rawEdges !== null && !(rawEdges instanceof Map)) throw bad("no 'edges' dict");
  const maxDense = options.maxDenseElements ?? 2 ** 26;
  const tensorAt = (v: PickleValue | undefined, where: string): DenseTensor => {
    if (isDenseTensor(v)) return v;
    if (isSparseCoo(v)) return toDense(v, maxDense);
    throw bad(`${where} is ${describe(v)}, not a tensor`);
  };

  const nodes: Record<string, FcCircuitNode> = Object.create(null);
  for (const [name, v] of rawNodes) {
    if (typeof name !== 'string') throw bad(`node key ${String(name)} is not a string`);
    if (isDenseTensor(v)) { nodes[name] = { act: v }; continue; }
    if (!isPickleObject(v) || !classes.includes(v.__class__)) throw bad(`nodes[${quoteName(name)}] is ${describe(v)}, not a SparseAct`);
    const state = v.state;
    if (!(state instanceof Map)) throw bad(`nodes[${quoteName(name)}] (SparseAct) has no attributes`);
    const node: { act: DenseTensor; resc?: DenseTensor; res?: DenseTensor } = { act: tensorAt(state.get('act'), `nodes[${quoteName(name)}].act`) };
    for (const attr of ['resc', 'res'] as const) {
      const a = state.get(attr);
      if (a !== undefined && a !== null) node[attr] = tensorAt(a, `nodes[${quoteName(name)}].${attr}`);
    }
    nodes[name] = node;
  }

  const edges: Record<string, Record<string, FcEdge>> = Object.create(null);
  const edgeMap: Map<PickleValue, PickleValue> = rawEdges instanceof Map ? rawEdges : new Map();
  for (const [up, downs] of edgeMap) {
    if (typeof up !== 'string') throw bad(`edge key ${String(up)} is not a string`);
    if (!(downs instanceof Map)) throw bad(`edges[${quoteName(up)}] is ${describe(downs)}, not a dict`);
    const row: Record<string, FcEdge> = Object.create(null);
    for (const [down, t] of downs) {
      if (typeof down !== 'string') throw bad(`edge key ${quoteName(String(down))} under ${quoteName(up)} is not a string`);
      if (!isDenseTensor(t) && !isSparseCoo(t)) throw bad(`edges[${quoteName(up)}][${quoteName(down)}] is ${describe(t)}, not a tensor`);
      row[down] = t;
    }
    edges[up] = row;
  }
  const examples = root.get('examples');
  const nodesOnly = rawEdges === null;
  return examples === undefined ? { source, nodes, edges, nodesOnly } : { source, nodes, edges, nodesOnly, examples };
}

function describe(v: PickleValue | undefined): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'a sequence';
  if (v instanceof Map) return 'a dict';
  if (isPickleObject(v)) return `a ${v.__class__} object`;
  if (typeof v === 'object' && 'kind' in v) return `a ${String(v.kind)}`;
  return `a ${typeof v}`;
}
