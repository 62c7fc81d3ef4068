// `sfc.circuit/v1`: a discovered circuit as versioned plain data. Nodes are SAE features and
// errors whose aggregated effect exceeds the node threshold (plus the metric node `y`); edges
// connect kept nodes with |weight| above the edge threshold (0 keeps every nonzero edge).
// Building, pruning, serializing and parsing are pure functions.
//
// Thresholds, as sfc applies them: the node threshold selects edge rows per example and position
// during discovery (as the reference's get_circuit does) and, on the aggregated effects, the
// nodes of the circuit (as the reference's plotting does); both are recorded here.
//
// Circuits sfc did not discover (e.g. converted from feature-circuits `.pt` files) carry no
// metric values: `metricClean`, `metricPatch`, `totalEffect` and `numExamples` are then null
// (never invented), and `source` records where the circuit came from.

import type { NodeEffects } from '../algorithms/attribution.js';
import type { DiscoveryResult } from '../algorithms/discover.js';
import { DEFAULT_EDGE_THRESHOLD } from '../algorithms/discover.js';
import type { EdgeSet } from '../algorithms/edges.js';
import { InputError } from '../errors.js';
import { parseSubmoduleName } from '../submodule.js';
import { metadata, type RunMetadata } from './effects-file.js';
import { compactNumber, JsonReader, type Json } from './json-checks.js';
import { stringifyFinite } from './finite-json.js';
import { METRIC_NODE, nodeIdAt, tryParseNodeId } from './node-id.js';

export const CIRCUIT_SCHEMA = 'sfc.circuit/v1';

export interface CircuitNode {
  readonly id: string;
  /** A submodule name, or `y` for the metric node. */
  readonly submodule: string;
  /** Feature index; dSae for the error node; null for `y`. */
  readonly index: number | null;
  /** Token position for aggregation none; null for sum and for `y`. */
  readonly pos: number | null;
  /** Aggregated effect (mean over examples); for `y` the total effect, null in single-prompt mode. */
  readonly effect: number | null;
}

export interface CircuitEdge {
  /** Upstream node id. */
  readonly source: string;
  /** Downstream node id (or `y`). */
  readonly target: string;
  readonly weight: number;
}

export interface Circuit extends RunMetadata {
  readonly schema: typeof CIRCUIT_SCHEMA;
  readonly method: 'attrib' | 'ig' | 'exact';
  readonly steps: number | null;
  readonly aggregation: 'sum' | 'none';
  /** Examples the effects are averaged over; null when unknown (an imported circuit that does not record it). */
  readonly numExamples: number | null;
  readonly seqLen: number | null;
  readonly metric: string;
  readonly nodeThreshold: number;
  readonly edgeThreshold: number;
  /** True when edges were not computed. */
  readonly nodesOnly: boolean;
  readonly submodules: string[];
  readonly dSae: Record<string, number>;
  /** Mean metric on the clean prompts; null when not measured (imported circuits). */
  readonly metricClean: number | null;
  /** Mean metric on the patch prompts; null in single-prompt mode and when not measured. */
  readonly metricPatch: number | null;
  /** metricPatch − metricClean; null in single-prompt mode and when not measured. */
  readonly totalEffect: number | null;
  readonly nodes: CircuitNode[];
  readonly edges: CircuitEdge[];
  /** Provenance of a circuit sfc did not discover, e.g. `{format: 'feature-circuits', file}`; absent for sfc discoveries. */
  readonly source?: Json;
}

/**
 * What a circuit is assembled from: aggregated node effects and edge sets (as `discover`
 * returns them, or as a converter builds them from another tool's file) and run metadata.
 * A DiscoveryResult is one.
 */
export interface CircuitParts {
  readonly method: Circuit['method'];
  readonly steps: number | null;
  readonly aggregation: 'sum' | 'none';
  readonly numExamples: number | null;
  readonly seqLen: number | null;
  readonly metric: string;
  readonly submodules: readonly string[];
  readonly effects: ReadonlyMap<string, NodeEffects>;
  /** One set per (upstream, downstream) pair, downstream may be `y`. */
  readonly edges: readonly EdgeSet[];
  readonly nodesOnly: boolean;
  readonly metricClean: number | null;
  readonly metricPatch: number | null;
  readonly totalEffect: number | null;
}

export interface BuildCircuitOptions {
  /** Default: the discovery's node threshold. */
  readonly nodeThreshold?: number;
  /** Default 0.01; 0 keeps every nonzero edge between kept nodes. */
  readonly edgeThreshold?: number;
  readonly meta?: RunMetadata;
}

function checkThreshold(t: number, what: string): void {
  if (!(Number.isFinite(t) && t >= 0)) throw new InputError(`${what} must be a number ≥ 0, got ${t}`);
}

function metricNode(effect: number | null): CircuitNode {
  return { id: METRIC_NODE, submodule: METRIC_NODE, index: null, pos: null, effect: effect === null ? null : compactNumber(effect) };
}

/** Kept nodes of aggregated node effects: |effect| > threshold, in forward order, then position, then index. */
export function thresholdNodes(submodules: readonly string[], effects: ReadonlyMap<string, NodeEffects>, threshold: number): CircuitNode[] {
  const nodes: CircuitNode[] = [];
  for (const sub of submodules) {
    const e = effects.get(sub)!;
    const P = e.positions ?? 1;
    for (let p = 0; p < P; p++) {
      const pos = e.positions === null ? null : p;
      for (let i = 0; i <= e.dSae; i++) {
        const w = i < e.dSae ? e.features[p * e.dSae + i]! : e.error[p]!;
        if (Math.abs(w) > threshold) nodes.push({ id: nodeIdAt(sub, i, e.dSae, pos), submodule: sub, index: i, pos, effect: compactNumber(w) });
      }
    }
  }
  return nodes;
}

/** The circuit of a discovery: nodes above the node threshold, edges between them above the edge threshold. */
export function buildCircuit(result: DiscoveryResult, options: BuildCircuitOptions = {}): Circuit {
  return assembleCircuit(result, {
    nodeThreshold: options.nodeThreshold ?? result.nodeThreshold,
    edgeThreshold: options.edgeThreshold ?? DEFAULT_EDGE_THRESHOLD,
    ...(options.meta ? { meta: options.meta } : {}),
  });
}

export interface AssembleCircuitOptions {
  readonly nodeThreshold: number;
  readonly edgeThreshold: number;
  readonly meta?: RunMetadata;
  /** Provenance, for circuits not discovered by sfc. */
  readonly source?: Json;
}

/**
 * A circuit from its parts: nodes with |effect| > nodeThreshold, edges with |weight| >
 * edgeThreshold between kept nodes. buildCircuit and converters of other tools' files share it.
 */
export function assembleCircuit(result: CircuitParts, options: AssembleCircuitOptions): Circuit {
  const { nodeThreshold, edgeThreshold } = options;
  checkThreshold(nodeThreshold, 'node threshold');
  checkThreshold(edgeThreshold, 'edge threshold');
  const nodes = [metricNode(result.totalEffect), ...thresholdNodes(result.submodules, result.effects, nodeThreshold)];
  const kept = new Set(nodes.map((n) => n.id));
  const edges: CircuitEdge[] = [];
  const dSae = Object.fromEntries(result.submodules.map((s) => [s, result.effects.get(s)!.dSae]));
  for (const set of result.edges) {
    const FU = set.upNodes - 1;
    const FD = set.downNodes - 1;
    for (let n = 0; n < set.weight.length; n++) {
      const w = set.weight[n]!;
      if (!(Math.abs(w) > edgeThreshold)) continue;
      const upPos = Math.floor(set.up[n]! / set.upNodes);
      const source = nodeIdAt(set.upstream, set.up[n]! % set.upNodes, FU, set.positions === null ? null : upPos);
      const target = set.downstream === METRIC_NODE ? METRIC_NODE
        : nodeIdAt(set.downstream, set.down[n]! % set.downNodes, FD, set.positions === null ? null : Math.floor(set.down[n]! / set.downNodes));
      if (kept.has(source) && kept.has(target)) edges.push({ source, target, weight: compactNumber(w) });
    }
  }
  return {
    schema: CIRCUIT_SCHEMA, method: result.method, steps: result.steps, aggregation: result.aggregation,
    numExamples: result.numExamples, seqLen: result.seqLen, metric: result.metric,
    nodeThreshold, edgeThreshold, nodesOnly: result.nodesOnly,
    submodules: [...result.submodules], dSae,
    metricClean: result.metricClean === null ? null : compactNumber(result.metricClean),
    metricPatch: result.metricPatch === null ? null : compactNumber(result.metricPatch),
    totalEffect: result.totalEffect === null ? null : compactNumber(result.totalEffect),
    nodes, edges, ...options.meta, ...(options.source ? { source: options.source } : {}),
  };
}

export interface PruneOptions {
  /** Raise the node threshold (nodes below the recorded one are not in the file and cannot come back). */
  readonly nodeThreshold?: number;
  readonly edgeThreshold?: number;
  /** Keep only nodes with a path of kept edges to `y`. */
  readonly connectedOnly?: boolean;
}

/** A smaller circuit: higher thresholds, optionally only nodes connected to the metric. Pure. */
export function pruneCircuit(circuit: Circuit, options: PruneOptions): Circuit {
  const nodeThreshold = Math.max(circuit.nodeThreshold, options.nodeThreshold ?? circuit.nodeThreshold);
  const edgeThreshold = Math.max(circuit.edgeThreshold, options.edgeThreshold ?? circuit.edgeThreshold);
  checkThreshold(nodeThreshold, 'node threshold');
  checkThreshold(edgeThreshold, 'edge threshold');
  let nodes = circuit.nodes.filter((n) => n.id === METRIC_NODE || Math.abs(n.effect ?? 0) > nodeThreshold);
  let ids = new Set(nodes.map((n) => n.id));
  let edges = circuit.edges.filter((e) => ids.has(e.source) && ids.has(e.target) && Math.abs(e.weight) > edgeThreshold);
  if (options.connectedOnly) {
    if (circuit.nodesOnly) throw new InputError('the circuit has no edges (discovered with --nodes-only), so connectivity is unknown', 'rediscover with edges or drop --connected-only');
    const incoming = new Map<string, string[]>();
    for (const e of edges) incoming.set(e.target, [...(incoming.get(e.target) ?? []), e.source]);
    const reach = new Set([METRIC_NODE]);
    const stack = [METRIC_NODE];
    while (stack.length) {
      for (const s of incoming.get(stack.pop()!) ?? []) if (!reach.has(s)) { reach.add(s); stack.push(s); }
    }
    nodes = nodes.filter((n) => reach.has(n.id));
    ids = new Set(nodes.map((n) => n.id));
    edges = edges.filter((e) => ids.has(e.source) && ids.has(e.target));
  }
  return { ...circuit, nodeThreshold, edgeThreshold, nodes, edges };
}

export function serializeCircuit(circuit: Circuit): string {
  return `${stringifyFinite(circuit, 'circuit')}\n`;
}

const HINT = 'an sfc.circuit/v1 file is written by `sfc discover --out FILE`';

/** Parses and checks an `sfc.circuit/v1` file: field types, node ids against their fields, edges against nodes. */
export function parseCircuit(text: string, source = 'circuit file'): Circuit {
  const r: JsonReader = new JsonReader(source, HINT);
  const o = r.parse(text);
  if (o.schema !== CIRCUIT_SCHEMA) r.fail('schema', o.schema === undefined ? `is missing: not an ${CIRCUIT_SCHEMA} file` : `must be "${CIRCUIT_SCHEMA}", got ${JSON.stringify(o.schema)}`);
  const aggregation = r.oneOf(o.aggregation, 'aggregation', ['sum', 'none'] as const);
  const seqLen = r.intOrNull(o.seqLen ?? null, 'seqLen', 1);
  if (aggregation === 'none' && seqLen === null) r.fail('seqLen', 'is required for aggregation none');
  const submodules = r.array(o.submodules, 'submodules').map((s, i) => {
    const name = r.string(s, `submodules[${i}]`);
    if (!parseSubmoduleName(name)) r.fail(`submodules[${i}]`, `is not a submodule name: ${JSON.stringify(name)}`);
    return name;
  });
  const dIn = r.object(o.dSae, 'dSae');
  const dSae: Record<string, number> = {};
  for (const s of submodules) dSae[s] = r.int(dIn[s], `dSae.${s}`, 1);
  const nodes: CircuitNode[] = r.array(o.nodes, 'nodes').map((v, i) => {
    const path = `nodes[${i}]`;
    const n = r.object(v, path);
    const id = r.string(n.id, `${path}.id`);
    const ref = tryParseNodeId(id);
    if (!ref) r.fail(`${path}.id`, `is not a node id: ${JSON.stringify(id)} (expected like resid_3/1234, resid_3/err, attn_1/17@5 or y)`);
    if (ref.kind === 'metric') {
      return { id, submodule: METRIC_NODE, index: null, pos: null, effect: r.numberOrNull(n.effect ?? null, `${path}.effect`) };
    }
    const F = dSae[ref.submodule];
    if (F === undefined) r.fail(`${path}.id`, `names submodule ${ref.submodule}, which is not in 'submodules'`);
    const index = ref.kind === 'error' ? F : ref.index;
    if (index > F) r.fail(`${path}.id`, `feature ${index} is out of range (dSae ${F})`);
    if (index === F && ref.kind === 'feature') r.fail(`${path}.id`, `index ${F} is the error node; write it as ${ref.submodule}/err`);
    if ((aggregation === 'none') !== (ref.pos !== null)) r.fail(`${path}.id`, aggregation === 'none' ? 'needs a @pos suffix (aggregation none)' : 'must not have a @pos suffix (aggregation sum)');
    if (ref.pos !== null && seqLen !== null && ref.pos >= seqLen) r.fail(`${path}.id`, `position ${ref.pos} is out of range (seqLen ${seqLen})`);
    if (n.submodule !== ref.submodule) r.fail(`${path}.submodule`, `must be ${JSON.stringify(ref.submodule)} (from the id)`);
    if (n.index !== index) r.fail(`${path}.index`, `must be ${index} (from the id)`);
    if ((n.pos ?? null) !== ref.pos) r.fail(`${path}.pos`, `must be ${ref.pos} (from the id)`);
    return { id, submodule: ref.submodule, index, pos: ref.pos, effect: r.number(n.effect, `${path}.effect`) };
  });
  const ids = new Set<string>();
  nodes.forEach((n, i) => {
    if (ids.has(n.id)) r.fail(`nodes[${i}].id`, `duplicates node ${n.id}`);
    ids.add(n.id);
  });
  const edges: CircuitEdge[] = r.array(o.edges, 'edges').map((v, i) => {
    const path = `edges[${i}]`;
    const e = r.object(v, path);
    const source = r.string(e.source, `${path}.source`);
    const target = r.string(e.target, `${path}.target`);
    if (!ids.has(source)) r.fail(`${path}.source`, `is not a node of the circuit: ${source}`);
    if (!ids.has(target)) r.fail(`${path}.target`, `is not a node of the circuit: ${target}`);
    if (source === METRIC_NODE) r.fail(`${path}.source`, 'cannot be the metric node y');
    return { source, target, weight: r.number(e.weight, `${path}.weight`) };
  });
  return {
    schema: CIRCUIT_SCHEMA,
    method: r.oneOf(o.method, 'method', ['attrib', 'ig', 'exact'] as const),
    steps: r.intOrNull(o.steps ?? null, 'steps', 1),
    aggregation, numExamples: r.intOrNull(o.numExamples ?? null, 'numExamples', 1), seqLen,
    metric: o.metric === undefined ? '' : r.string(o.metric, 'metric'),
    nodeThreshold: r.number(o.nodeThreshold, 'nodeThreshold'),
    edgeThreshold: r.number(o.edgeThreshold, 'edgeThreshold'),
    nodesOnly: o.nodesOnly === undefined ? false : r.boolean(o.nodesOnly, 'nodesOnly'),
    submodules, dSae,
    metricClean: r.numberOrNull(o.metricClean ?? null, 'metricClean'),
    metricPatch: r.numberOrNull(o.metricPatch ?? null, 'metricPatch'),
    totalEffect: r.numberOrNull(o.totalEffect ?? null, 'totalEffect'),
    nodes, edges, ...metadata(r, o), ...sourceOf(r, o),
  };
}

function sourceOf(r: JsonReader, o: Json): { source?: Json } {
  const source = r.optionalObject(o.source, 'source');
  return source ? { source } : {};
}

/** Dense node effects per submodule with the circuit's nodes set and every other node 0 (for evaluation). */
export function circuitNodeEffects(circuit: Circuit): Map<string, NodeEffects> {
  const P = circuit.aggregation === 'none' ? circuit.seqLen! : 1;
  const out = new Map<string, NodeEffects>();
  for (const sub of circuit.submodules) {
    const F = circuit.dSae[sub]!;
    out.set(sub, { submodule: sub, dSae: F, positions: circuit.aggregation === 'none' ? P : null, features: new Float64Array(P * F), error: new Float64Array(P) });
  }
  for (const n of circuit.nodes) {
    if (n.submodule === METRIC_NODE) continue;
    const e = out.get(n.submodule)!;
    const p = n.pos ?? 0;
    if (n.index === e.dSae) e.error[p] = n.effect!;
    else e.features[p * e.dSae + n.index!] = n.effect!;
  }
  return out;
}
