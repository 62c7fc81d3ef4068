// feature-circuits circuits (`torch.save({examples, nodes, edges})`, read by formats/fc-circuit)
// → `sfc.circuit/v1`, assembled by core's circuit builder so ids, thresholds and edge rules are
// the ones `sfc discover` uses. What the file holds, and how it maps:
//   nodes[sub] = SparseAct: act [F] (aggregation sum) or [S, F] (none) = feature effects;
//     resc [1] / [S, 1] (or older saves: res [d] / [S, d], summed over d) = error-node effect.
//   edges[up][down]: [F_D+1, F_U+1] or [S, F_D+1, S, F_U+1], downstream index first, index F
//     = error node; edges[resid_last]['y']: [F_U+1] or [S, F_U+1]. Sparse COO or dense.
// The file records no metric values, so metricClean/metricPatch are null (never invented); a
// saved 'y' node (mean total effect) becomes totalEffect. feature-circuits names the file after
// its run (`{model}_{dataset}_n{N}_agg{agg}_node{T}.pt`, older `…_dict{id}_node{T}_edge{T}_n{N}
// _agg{agg}.pt`): that is parsed into the provenance and gives the example count when the file
// has no `examples`.

import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import {
  assembleCircuit, FormatError, InputError, METRIC_NODE, NotFoundError, parseSubmoduleName,
  type Circuit, type EdgeSet, type NodeEffects,
} from '@sfc/core';
import { readFcCircuit, type FcCircuit, type FcCircuitOptions, type FcEdge } from './formats/fc-circuit.js';
import type { DenseTensor, TensorData } from './formats/tensor-data.js';

export const FC_FORMAT = 'feature-circuits';

export interface FcConvertOptions {
  /** Keep nodes with |effect| > this; default 0 = every nonzero node in the file (already thresholded upstream). */
  readonly nodeThreshold?: number;
  /** Keep edges with |weight| > this; default 0 = every nonzero edge between kept nodes. */
  readonly edgeThreshold?: number;
  /** File name recorded as provenance and parsed for run parameters (default: the circuit's source). */
  readonly file?: string;
}

/** Run parameters feature-circuits encodes in a circuit's file name (each only when present). */
export interface FcFileName {
  readonly numExamples?: number;
  readonly aggregation?: 'sum' | 'none';
  /** The node threshold that selected the edge rows (and that feature-circuits' plots apply). */
  readonly nodeThreshold?: number;
  readonly edgeThreshold?: number;
  /** `_nodeall`: saved with --nodes_only. */
  readonly nodesOnly?: boolean;
  /** `_neurons`: the "dictionaries" were the identity (neurons). */
  readonly neurons?: boolean;
  readonly dictId?: string;
}

export interface FcConversion {
  readonly circuit: Circuit;
  /** What the file name says about the run. */
  readonly fileName: FcFileName;
  /** Nonzero entries in the file (nodes with their error nodes, edges, incl. to y). */
  readonly fileNodes: number;
  readonly fileEdges: number;
  /** Edges above the edge threshold left out because an endpoint is not a kept node. */
  readonly droppedEdges: number;
  /** Things a user should know (e.g. the file name and the tensors disagree). */
  readonly warnings: readonly string[];
}

const HINT = 'expected a circuit saved by feature-circuits\' circuit.py: {"nodes": {submodule: SparseAct}, "edges": {up: {down: tensor}}}';
const NAME_HINT = 'submodules are named embed, attn_L, mlp_L, resid_L (feature-circuits\' names)';
const ROLE_ORDER = { embed: 0, attn: 1, mlp: 2, resid: 3 } as const;

/** Parses feature-circuits' circuit file name (`…_n40_aggsum_node0.1.pt`); unknown parts are ignored. */
export function parseFcCircuitName(file: string): FcFileName {
  const stem = basename(file).replace(/\.(pt|pth)$/i, '');
  const parts = stem.split('_');
  const out: { -readonly [K in keyof FcFileName]: FcFileName[K] } = {};
  // Older saves wrote thresholds with '.' replaced by '_' (node0_1): rejoin digit runs.
  const num = (i: number, text: string): { value: number; used: number } | undefined => {
    let t = text;
    let used = 0;
    if (/^\d+$/.test(t) && /^\d+$/.test(parts[i + 1] ?? '') && !/^(n|agg|node|edge|dict)/.test(parts[i + 1]!)) { t = `${t}.${parts[i + 1]}`; used = 1; }
    const v = Number(t);
    return t !== '' && Number.isFinite(v) && v >= 0 ? { value: v, used } : undefined;
  };
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    let m: RegExpExecArray | null;
    if ((m = /^n(\d+)$/.exec(p))) out.numExamples = Number(m[1]);
    else if ((m = /^agg(sum|none)$/.exec(p))) out.aggregation = m[1] as 'sum' | 'none';
    else if (p === 'nodeall') out.nodesOnly = true;
    else if (p === 'neurons') out.neurons = true;
    else if ((m = /^dict(\w+)$/.exec(p))) out.dictId = m[1]!;
    else if ((m = /^(node|edge)([\d.eE+-]+)$/.exec(p))) {
      const v = num(i, m[2]!);
      if (!v) continue;
      if (m[1] === 'node') out.nodeThreshold = v.value; else out.edgeThreshold = v.value;
      i += v.used;
    }
  }
  return out;
}

function forwardOrder(name: string): number {
  const s = parseSubmoduleName(name)!;
  return s.role === 'embed' ? -1 : s.layer * 4 + ROLE_ORDER[s.role];
}

function floats(t: DenseTensor | FcEdge, what: string, source: string): TensorData {
  const data = t.kind === 'tensor' ? t.data : t.values;
  if (!(data instanceof Float32Array)) throw new FormatError(`${source}: ${what} has dtype ${t.dtype}, not a floating-point type`, HINT);
  return data;
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Calls fn(flatIndex, value) for every stored entry (sparse: duplicates as stored; dense: nonzeros). */
function forEachEntry(t: FcEdge, data: TensorData, fn: (flat: number, value: number) => void): void {
  if (t.kind === 'tensor') {
    for (let i = 0; i < data.length; i++) if (data[i] !== 0) fn(i, data[i] as number);
    return;
  }
  const { shape, sparseDim, nnz, indices } = t;
  const block = shape.slice(sparseDim).reduce((a, b) => a * b, 1);
  for (let n = 0; n < nnz; n++) {
    let base = 0;
    for (let d = 0; d < sparseDim; d++) base = base * shape[d]! + indices[d * nnz + n]!;
    for (let j = 0; j < block; j++) fn(base * block + j, data[n * block + j] as number);
  }
}

/** feature-circuits circuit data → `sfc.circuit/v1` (see the header for the mapping). */
export function convertFcCircuit(fc: FcCircuit, options: FcConvertOptions = {}): FcConversion {
  const source = fc.source;
  const file = options.file ?? source;
  const fail = (m: string, hint = HINT): never => { throw new FormatError(`${source}: ${m}`, hint); };
  const nodeThreshold = options.nodeThreshold ?? 0;
  const edgeThreshold = options.edgeThreshold ?? 0;
  for (const [t, what] of [[nodeThreshold, 'node threshold'], [edgeThreshold, 'edge threshold']] as const) {
    if (!(Number.isFinite(t) && t >= 0)) throw new InputError(`the ${what} must be a number ≥ 0, got ${t}`, 'the default 0 keeps everything the file holds');
  }
  const fileName = parseFcCircuitName(file);
  const warnings: string[] = [];

  // Nodes: effects per submodule, in forward order; 'y' (when saved) is the total effect.
  let totalEffect: number | null = null;
  const names = Object.keys(fc.nodes).filter((n) => n !== METRIC_NODE);
  const bad = names.filter((n) => !parseSubmoduleName(n));
  if (bad.length) fail(`unknown submodule name${bad.length > 1 ? 's' : ''} ${bad.map((b) => `'${b}'`).join(', ')} in nodes`, NAME_HINT);
  if (names.length === 0) fail('the circuit has no nodes');
  const submodules = names.sort((a, b) => forwardOrder(a) - forwardOrder(b));
  const y = fc.nodes[METRIC_NODE];
  if (y) {
    const v = floats(y.act, "nodes['y']", source);
    if (v.length === 1) totalEffect = v[0] as number;
    else warnings.push(`nodes['y'] has ${v.length} values, not one total effect; ignored`);
  }
  const rank = fc.nodes[submodules[0]!]!.act.shape.length;
  if (rank !== 1 && rank !== 2) fail(`nodes['${submodules[0]}'].act has shape ${shapeText(fc.nodes[submodules[0]!]!.act.shape)}; expected [F] (aggregation sum) or [positions, F] (none)`);
  const aggregation = rank === 1 ? 'sum' : 'none';
  const positions = aggregation === 'none' ? fc.nodes[submodules[0]!]!.act.shape[0]! : null;
  const P = positions ?? 1;
  if (positions === 0) fail('the nodes have 0 positions');
  if (fileName.aggregation && fileName.aggregation !== aggregation) {
    warnings.push(`the file name says aggregation ${fileName.aggregation}, but the node tensors are aggregation ${aggregation}; using ${aggregation}`);
  }
  const effects = new Map<string, NodeEffects>();
  let missingErrors = 0;
  let fileNodes = 0;
  for (const sub of submodules) {
    const n = fc.nodes[sub]!;
    const shape = n.act.shape;
    const expected = positions === null ? 'a [F] vector like the other nodes' : `[${positions}, F] like the other nodes`;
    if (shape.length !== rank || (positions !== null && shape[0] !== positions)) fail(`nodes['${sub}'].act has shape ${shapeText(shape)}; expected ${expected}`);
    const F = shape[shape.length - 1]!;
    if (F < 1) fail(`nodes['${sub}'].act has no features`);
    const features = Float64Array.from(floats(n.act, `nodes['${sub}'].act`, source) as Float32Array);
    const error = new Float64Array(P);
    if (n.resc) {
      const r = floats(n.resc, `nodes['${sub}'].resc`, source);
      if (r.length !== P) fail(`nodes['${sub}'].resc has shape ${shapeText(n.resc.shape)}; expected ${positions === null ? '[1]' : `[${positions}, 1]`}`);
      for (let p = 0; p < P; p++) error[p] = r[p] as number;
    } else if (n.res) {
      // Older saves kept the error effect per model dimension: the node's effect is its sum.
      const r = floats(n.res, `nodes['${sub}'].res`, source);
      if (r.length % P !== 0 || (positions !== null && n.res.shape[0] !== positions)) fail(`nodes['${sub}'].res has shape ${shapeText(n.res.shape)}, which does not match ${P} position(s)`);
      const d = r.length / P;
      for (let p = 0; p < P; p++) { let s = 0; for (let k = 0; k < d; k++) s += r[p * d + k] as number; error[p] = s; }
    } else {
      missingErrors++;
    }
    for (const v of features) if (v !== 0) fileNodes++;
    for (const v of error) if (v !== 0) fileNodes++;
    effects.set(sub, { submodule: sub, dSae: F, positions, features, error });
  }
  if (missingErrors) warnings.push(`${missingErrors} submodule(s) have no error-node effect (no resc or res); their error nodes are left out`);

  // Edges: one EdgeSet per (upstream, downstream), flat indices pos·(F+1) + index.
  const edges: EdgeSet[] = [];
  let fileEdges = 0;
  let aboveThreshold = 0;
  for (const up of Object.keys(fc.edges)) {
    const U = effects.get(up) ?? fail(`edges['${up}'] starts at '${up}', which is not in nodes`, `nodes: ${submodules.join(', ')}`);
    for (const down of Object.keys(fc.edges[up]!)) {
      const t = fc.edges[up]![down]!;
      const what = `edges['${up}']['${down}']`;
      const toY = down === METRIC_NODE;
      const D = toY ? undefined : effects.get(down) ?? fail(`${what} ends at '${down}', which is not in nodes`, `nodes: ${submodules.join(', ')} (and y)`);
      const upNodes = U.dSae + 1;
      const downNodes = D ? D.dSae + 1 : 1;
      const want = toY ? (positions === null ? [upNodes] : [positions, upNodes])
        : positions === null ? [downNodes, upNodes] : [positions, downNodes, positions, upNodes];
      if (shapeText(t.shape) !== shapeText(want)) {
        fail(`${what} has shape ${shapeText(t.shape)}; expected ${shapeText(want)} (downstream first, index F = error node)`);
      }
      // Sum duplicates (uncoalesced sparse tensors) before anything else.
      const sums = new Map<number, number>();
      forEachEntry(t, floats(t, what, source), (flat, v) => sums.set(flat, (sums.get(flat) ?? 0) + v));
      const entries = [...sums].filter(([, w]) => w !== 0).map(([flat, w]) => {
        // Flat index over `want`: (down position, down index, up position, up index).
        const j = flat % upNodes;
        const rest = Math.floor(flat / upNodes);
        if (toY) return { down: 0, up: (positions === null ? 0 : rest) * upNodes + j, w };
        const sUp = positions === null ? 0 : rest % positions;
        const r2 = positions === null ? rest : Math.floor(rest / positions);
        const k = r2 % downNodes;
        const sDown = Math.floor(r2 / downNodes);
        return { down: sDown * downNodes + k, up: sUp * upNodes + j, w };
      }).sort((a, b) => a.down - b.down || a.up - b.up);
      fileEdges += entries.length;
      aboveThreshold += entries.filter((e) => Math.abs(e.w) > edgeThreshold).length;
      edges.push({
        upstream: up, downstream: down, positions, downNodes, upNodes,
        down: Int32Array.from(entries, (e) => e.down), up: Int32Array.from(entries, (e) => e.up),
        weight: Float64Array.from(entries, (e) => e.w),
        rows: Int32Array.from(new Set(entries.map((e) => e.down))),
      });
    }
  }
  const nodesOnly = fc.nodesOnly;
  if (fileName.nodesOnly !== undefined && fileName.nodesOnly !== nodesOnly) warnings.push(`the file name says nodes only, but the file has edges`);

  const examples = Array.isArray(fc.examples) ? fc.examples : undefined;
  const numExamples = examples?.length || fileName.numExamples || null;
  if (examples && fileName.numExamples !== undefined && fileName.numExamples !== examples.length) {
    warnings.push(`the file name says ${fileName.numExamples} examples, but the file holds ${examples.length}; using ${examples.length}`);
  }
  // feature-circuits' metric with paired data is logit[patch] − logit[clean], sfc's logit-diff.
  const paired = examples !== undefined && examples.length > 0 && examples.every((e) => e instanceof Map && e.get('patch_prefix') != null);
  const circuit = assembleCircuit({
    method: 'ig', steps: null, aggregation, numExamples, seqLen: positions, metric: paired ? 'logit-diff' : '',
    submodules, effects, edges, nodesOnly, metricClean: null, metricPatch: null, totalEffect,
  }, {
    nodeThreshold, edgeThreshold,
    source: { format: FC_FORMAT, file: basename(file), ...(Object.keys(fileName).length ? { fileName: { ...fileName } } : {}) },
  });
  const droppedEdges = aboveThreshold - circuit.edges.length;
  return { circuit, fileName, fileNodes, fileEdges, droppedEdges, warnings };
}

export interface ReadFcCircuitFileOptions extends FcConvertOptions {
  /** Reader limits and extra SparseAct class names. */
  readonly read?: FcCircuitOptions;
}

/** Reads a feature-circuits `.pt` circuit file and converts it (see convertFcCircuit). */
export async function readFcCircuitFile(path: string, options: ReadFcCircuitFileOptions = {}): Promise<FcConversion> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`circuit file ${path} does not exist`, 'give the .pt file feature-circuits saved (circuits/…_node0.1.pt)');
    throw e;
  }
  const { read, ...convert } = options;
  return convertFcCircuit(readFcCircuit(bytes, basename(path), read), { file: path, ...convert });
}
