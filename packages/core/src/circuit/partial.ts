// `sfc.partial/v1`: one shard of an attribute, discover or evaluate run, and the merge of all
// shards into exactly the single-process result (docs/architecture.md, "Where things live";
// docs/concepts.md for effects, edges and faithfulness).
//
// A run's batches are formed once over every selected example; shard i of n runs the batches
// whose index b has b mod n = i, so every batch computes exactly what it computes unsharded. The
// algorithms report example-weighted means over their batches; a partial stores those means
// times the shard's example count (the sums) with the count, sparse as circuits are (nonzero
// effects, edges as coordinate lists). Merging adds the sums and divides by the total count;
// thresholds (circuit nodes and edges) are applied only then. Partials of different runs
// (model, dictionaries, data, options) refuse to merge, naming the first difference.

import type { AttributionResult, NodeEffects } from '../algorithms/attribution.js';
import type { DiscoveryResult } from '../algorithms/discover.js';
import { metricEdges, type EdgeSet } from '../algorithms/edges.js';
import { ratio, type EvaluationResult, type EvaluationRow } from '../algorithms/evaluation.js';
import { FormatError, InputError } from '../errors.js';
import { quoteName } from '../quote.js';
import { JsonReader, jsonSyntaxError, type Json } from './json-checks.js';
import { encodeSafetensors, SafetensorsFile } from '../formats/safetensors.js';
import type { RunMetadata } from './effects-file.js';

export const PARTIAL_SCHEMA = 'sfc.partial/v1';

export type PartialKind = 'attribute' | 'discover' | 'evaluate';

/** Shard `index` of `count` (0 ≤ index < count), as job-array indices. */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

/** Parses `i/n` (e.g. `--shard 2/8`). */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const hint = 'give --shard i/n with 0 ≤ i < n, e.g. --shard 0/4 … --shard 3/4 (job-array indices)';
  if (!m) throw new InputError(`--shard must look like i/n, got ${JSON.stringify(text)}`, hint);
  const index = Number(m[1]), count = Number(m[2]);
  if (!(count >= 1 && index < count) || !Number.isSafeInteger(count)) throw new InputError(`--shard ${text}: need 0 ≤ i < n and n ≥ 1`, hint);
  return { index, count };
}

/** The batch indices shard `shard` runs out of `numBatches`: b with b mod n = i, in run order. */
export function shardBatchIndices(numBatches: number, shard: Shard): number[] {
  const out: number[] = [];
  for (let b = shard.index; b < numBatches; b += shard.count) out.push(b);
  return out;
}

/** Nonzero entries of a dense vector. */
interface SparseVector {
  readonly idx: Int32Array;
  readonly val: Float64Array;
}

interface EffectSums {
  readonly dSae: number;
  readonly positions: number | null;
  /** Sums over the shard's examples of the features' effects ([positions × F] flattened, sparse). */
  readonly features: SparseVector;
  readonly error: Float64Array;
}

/** An edge set whose weights are sums over the shard's examples (the `y` edges are rebuilt at merge). */
type EdgeSums = EdgeSet;

/** What attribute and discover share: how the run was done, the node-effect sums and the per-example metric. */
interface NodeSums {
  readonly method: AttributionResult['method'];
  readonly steps: number | null;
  readonly aggregation: AttributionResult['aggregation'];
  readonly seqLen: number | null;
  readonly submodules: string[];
  readonly metric: string;
  readonly effects: Record<string, EffectSums>;
  /** Per example of the shard, in the shard's batch order. */
  readonly exampleIndex: number[];
  readonly metricClean: number[];
  readonly metricPatch: number[] | null;
}

interface DiscoverySums extends NodeSums {
  readonly nodeThreshold: number;
  readonly nodesOnly: boolean;
  readonly edges: EdgeSums[];
  readonly downstreamNodes: Record<string, number>;
}

interface EvaluationSums {
  readonly ablation: EvaluationResult['ablation'];
  readonly handleErrors: EvaluationResult['handleErrors'];
  readonly startLayer: number;
  readonly submodules: string[];
  readonly metric: string;
  readonly thresholds: number[];
  readonly nodes: number[];
  readonly full: number;
  readonly empty: number;
  readonly circuit: number[];
  readonly complement: number[];
}

export interface PartialFile {
  readonly schema: typeof PARTIAL_SCHEMA;
  readonly kind: PartialKind;
  readonly shard: Shard;
  /**
   * What every shard of one run shares and the merge compares key by key: options, run metadata,
   * input fingerprints, the batch sizes of the whole run. Free-form, written by the caller.
   */
  readonly identity: Json;
  /** The run metadata the merged file records. */
  readonly meta: RunMetadata;
  /** Prompts per batch of the whole run, in run order. */
  readonly batchSizes: number[];
  /** The global indices of this shard's batches (b mod n = i). */
  readonly batches: number[];
  /** Examples in this shard's batches. */
  readonly numExamples: number;
  /** null when the shard has no batches (a job array larger than the run). */
  readonly sums: NodeSums | DiscoverySums | EvaluationSums | null;
}

/** Where a shard's run sits in the whole run. */
export interface PartialContext {
  readonly shard: Shard;
  readonly identity: Json;
  readonly meta: RunMetadata;
  /** Prompts per batch of the whole run, in run order. */
  readonly batchSizes: readonly number[];
  /** This shard's global batch indices (shardBatchIndices). */
  readonly batches: readonly number[];
}

function header(kind: PartialKind, ctx: PartialContext, numExamples: number, sums: PartialFile['sums']): PartialFile {
  const want = shardBatchIndices(ctx.batchSizes.length, ctx.shard);
  if (want.length !== ctx.batches.length || want.some((b, i) => b !== ctx.batches[i])) {
    throw new InputError(`shard ${ctx.shard.index}/${ctx.shard.count} must run batches ${want.join(', ') || '(none)'}, got ${ctx.batches.join(', ') || '(none)'}`);
  }
  const expected = want.reduce((n, b) => n + ctx.batchSizes[b]!, 0);
  if (expected !== numExamples) throw new InputError(`shard ${ctx.shard.index}/${ctx.shard.count} ran ${numExamples} examples, its batches hold ${expected}`);
  return {
    schema: PARTIAL_SCHEMA, kind, shard: { ...ctx.shard }, identity: ctx.identity, meta: ctx.meta,
    batchSizes: [...ctx.batchSizes], batches: [...ctx.batches], numExamples, sums,
  };
}

function sparse(values: Float64Array, scale: number): SparseVector {
  const idx: number[] = [], val: number[] = [];
  for (let i = 0; i < values.length; i++) if (values[i] !== 0) { idx.push(i); val.push(values[i]! * scale); }
  return { idx: Int32Array.from(idx), val: Float64Array.from(val) };
}

function nodeSums(r: AttributionResult): NodeSums {
  const N = r.numExamples;
  const effects: Record<string, EffectSums> = {};
  for (const name of r.submodules) {
    const e = r.effects.get(name)!;
    effects[name] = { dSae: e.dSae, positions: e.positions, features: sparse(e.features, N), error: e.error.map((v) => v * N) };
  }
  return {
    method: r.method, steps: r.steps, aggregation: r.aggregation, seqLen: r.seqLen, submodules: [...r.submodules], metric: r.metric, effects,
    exampleIndex: [...r.perExample.exampleIndex], metricClean: Array.from(r.perExample.metricClean),
    metricPatch: r.perExample.metricPatch ? Array.from(r.perExample.metricPatch) : null,
  };
}

/** The partial of an attribute() run over the shard's batches. */
export function attributionPartial(result: AttributionResult, ctx: PartialContext): PartialFile {
  return header('attribute', ctx, result.numExamples, nodeSums(result));
}

/** The partial of a discover() run over the shard's batches. */
export function discoveryPartial(result: DiscoveryResult, ctx: PartialContext): PartialFile {
  const N = result.numExamples;
  const edges = result.edges.filter((e) => e.downstream !== 'y').map((e): EdgeSums => ({
    upstream: e.upstream, downstream: e.downstream, positions: e.positions, downNodes: e.downNodes, upNodes: e.upNodes,
    down: e.down, up: e.up, weight: e.weight.map((w) => w * N), rows: e.rows,
  }));
  const sums: DiscoverySums = {
    ...nodeSums(result), nodeThreshold: result.nodeThreshold, nodesOnly: result.nodesOnly, edges,
    downstreamNodes: Object.fromEntries(result.downstreamNodes),
  };
  return header('discover', ctx, N, sums);
}

/** The partial of an evaluate() run over the shard's batches (ablation values from every batch). */
export function evaluationPartial(result: EvaluationResult, ctx: PartialContext): PartialFile {
  const N = result.numExamples;
  const sums: EvaluationSums = {
    ablation: result.ablation, handleErrors: result.handleErrors, startLayer: result.startLayer, submodules: [...result.submodules],
    metric: result.metric, thresholds: result.rows.map((r) => r.threshold), nodes: result.rows.map((r) => r.nodes),
    full: (result.rows[0]?.mFull ?? 0) * N, empty: (result.rows[0]?.mEmpty ?? 0) * N,
    circuit: result.rows.map((r) => r.mCircuit * N), complement: result.rows.map((r) => r.mComplement * N),
  };
  return header('evaluate', ctx, N, sums);
}

/** The partial of a shard with no batches (more shards than batches). */
export function emptyPartial(kind: PartialKind, ctx: PartialContext): PartialFile {
  return header(kind, ctx, 0, null);
}

/**
 * A safetensors file: the partial as JSON in `__metadata__["sfc.partial"]`, every typed array in it
 * (sparse effects, edge lists) as a tensor `t<k>` the JSON refers to as {"$tensor": "t<k>"}, so
 * large partials are written and read without number formatting or parsing.
 */
export function serializePartial(p: PartialFile): Uint8Array {
  const tensors = new Map<string, { shape: number[]; data: Float64Array | Int32Array }>();
  const json = JSON.stringify(p, (_key, v: unknown) => {
    if (v instanceof Float64Array || v instanceof Int32Array) {
      const name = `t${tensors.size}`;
      tensors.set(name, { shape: [v.length], data: v });
      return { $tensor: name };
    }
    return v;
  });
  return encodeSafetensors(tensors, { [PARTIAL_KEY]: json });
}

const PARTIAL_KEY = 'sfc.partial';
const HINT = 'an sfc.partial/v1 file is written by `sfc attribute|discover|evaluate --shard i/n --out FILE`';

/** The JSON of a partial with its tensors in place of their {"$tensor"} references. */
function readContainer(bytes: Uint8Array, source: string): Json {
  let file: SafetensorsFile;
  try {
    file = SafetensorsFile.parse(bytes, source);
  } catch (e) {
    throw new FormatError(`${source} is not an sfc partial file: ${(e as Error).message}`, HINT);
  }
  const text = file.metadata[PARTIAL_KEY];
  if (text === undefined) throw new FormatError(`${source} is a safetensors file without "${PARTIAL_KEY}" metadata, not an sfc partial file`, HINT);
  let o: unknown;
  try {
    o = JSON.parse(text, (_key, v: unknown) => {
      if (typeof v !== 'object' || v === null || typeof (v as Json).$tensor !== 'string') return v;
      const name = (v as Json).$tensor as string;
      const e = file.entries.get(name);
      if (!e || (e.dtype !== 'F64' && e.dtype !== 'I32')) throw new FormatError(`${source}: tensor ${quoteName(name)} is missing or not F64/I32`, HINT);
      return file.getExact(name, e.dtype);
    });
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(`${source}: the "${PARTIAL_KEY}" metadata is not valid JSON: ${jsonSyntaxError(e, text)}`, HINT);
  }
  return new JsonReader(source, HINT).object(o, '(top level)');
}

/** Parses a partial; the structure is checked here, the sums' consistency between shards at merge. */
export function parsePartial(bytes: Uint8Array, source = 'partial file'): PartialFile {
  const r = new JsonReader(source, HINT);
  const o = readContainer(bytes, source);
  if (o.schema !== PARTIAL_SCHEMA) r.fail('schema', `must be ${JSON.stringify(PARTIAL_SCHEMA)}, got ${JSON.stringify(o.schema)}`);
  const kind = r.oneOf(o.kind, 'kind', ['attribute', 'discover', 'evaluate'] as const);
  const sh = r.object(o.shard, 'shard');
  const count = r.int(sh.count, 'shard.count', 1);
  const index = r.int(sh.index, 'shard.index');
  if (index >= count) r.fail('shard.index', `must be < shard.count (${count}), got ${index}`);
  const batchSizes = r.array(o.batchSizes, 'batchSizes').map((b, i) => r.int(b, `batchSizes[${i}]`, 1));
  if (batchSizes.length === 0) r.fail('batchSizes', 'must list at least one batch');
  const batches = r.array(o.batches, 'batches').map((b, i) => r.int(b, `batches[${i}]`));
  const want = shardBatchIndices(batchSizes.length, { index, count });
  if (want.join() !== batches.join()) r.fail('batches', `must be ${want.join(', ') || '(none)'} for shard ${index}/${count} of ${batchSizes.length} batches`);
  const numExamples = r.int(o.numExamples, 'numExamples');
  const expected = want.reduce((n, b) => n + batchSizes[b]!, 0);
  if (numExamples !== expected) r.fail('numExamples', `must be ${expected} (the sizes of the shard's batches), got ${numExamples}`);
  const sums = o.sums === null ? null : r.object(o.sums, 'sums');
  if ((sums === null) !== (batches.length === 0)) r.fail('sums', batches.length === 0 ? 'must be null for a shard without batches' : 'is missing');
  if (sums) checkSums(r, kind, sums, numExamples);
  return {
    schema: PARTIAL_SCHEMA, kind, shard: { index, count }, identity: r.object(o.identity, 'identity'),
    meta: r.object(o.meta ?? {}, 'meta') as RunMetadata, batchSizes, batches, numExamples,
    sums: sums as PartialFile['sums'],
  };
}

/** The fields merge reads, with their types (values are checked against each other at merge). */
function checkSums(r: JsonReader, kind: PartialKind, s: Json, numExamples: number): void {
  const numbers = (v: unknown, path: string, length?: number) => {
    const a = v instanceof Float64Array || v instanceof Int32Array ? v : r.array(v, path);
    if (length !== undefined && a.length !== length) r.fail(path, `must have ${length} entries, got ${a.length}`);
    for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) r.fail(`${path}[${i}]`, `must be a finite number, got ${String(a[i])}`);
    return a as ArrayLike<number>;
  };
  const typed = <T extends Float64Array | Int32Array>(v: unknown, path: string, type: { new (n: number): T }, length?: number): T => {
    if (!(v instanceof type)) r.fail(path, `must be an ${type === Int32Array as unknown ? 'I32' : 'F64'} tensor`);
    numbers(v, path, length);
    return v as T;
  };
  r.string(s.metric, 'sums.metric');
  const subs = r.array(s.submodules, 'sums.submodules').map((x, i) => r.string(x, `sums.submodules[${i}]`));
  if (kind === 'evaluate') {
    const T = numbers(s.thresholds, 'sums.thresholds').length;
    numbers(s.nodes, 'sums.nodes', T);
    numbers(s.circuit, 'sums.circuit', T);
    numbers(s.complement, 'sums.complement', T);
    r.number(s.full, 'sums.full');
    r.number(s.empty, 'sums.empty');
    return;
  }
  r.oneOf(s.aggregation, 'sums.aggregation', ['sum', 'none'] as const);
  numbers(s.exampleIndex, 'sums.exampleIndex', numExamples);
  numbers(s.metricClean, 'sums.metricClean', numExamples);
  if (s.metricPatch !== null) numbers(s.metricPatch, 'sums.metricPatch', numExamples);
  const effects = r.object(s.effects, 'sums.effects');
  for (const name of subs) {
    const e = r.object(effects[name], `sums.effects.${name}`);
    r.int(e.dSae, `sums.effects.${name}.dSae`, 1);
    const positions = r.intOrNull(e.positions, `sums.effects.${name}.positions`, 1);
    typed(e.error, `sums.effects.${name}.error`, Float64Array, positions ?? 1);
    const f = r.object(e.features, `sums.effects.${name}.features`);
    typed(f.val, `sums.effects.${name}.features.val`, Float64Array, typed(f.idx, `sums.effects.${name}.features.idx`, Int32Array).length);
  }
  if (kind === 'discover') {
    r.number(s.nodeThreshold, 'sums.nodeThreshold');
    r.boolean(s.nodesOnly, 'sums.nodesOnly');
    r.object(s.downstreamNodes, 'sums.downstreamNodes');
    r.array(s.edges, 'sums.edges').forEach((x, k) => {
      const e = r.object(x, `sums.edges[${k}]`);
      const path = `sums.edges[${k}]`;
      r.string(e.upstream, `${path}.upstream`);
      r.string(e.downstream, `${path}.downstream`);
      r.int(e.downNodes, `${path}.downNodes`, 1);
      r.int(e.upNodes, `${path}.upNodes`, 1);
      r.intOrNull(e.positions, `${path}.positions`, 1);
      const down = typed(e.down, `${path}.down`, Int32Array), up = typed(e.up, `${path}.up`, Int32Array, down.length);
      typed(e.weight, `${path}.weight`, Float64Array, down.length);
      typed(e.rows, `${path}.rows`, Int32Array);
      const P = (e.positions as number | null) ?? 1, upNodes = (e.upNodes as number) * P, downNodes = (e.downNodes as number) * P;
      for (let i = 0; i < down.length; i++) {
        if (!(down[i]! >= 0 && down[i]! < downNodes && up[i]! >= 0 && up[i]! < upNodes)) r.fail(path, `entry ${i} (${down[i]}, ${up[i]}) is out of range`);
        if (i > 0 && (down[i]! < down[i - 1]! || (down[i] === down[i - 1] && up[i]! <= up[i - 1]!))) r.fail(path, 'must be sorted by (down, up) without repeats');
      }
    });
  }
}

// ---- merging ----

export interface NamedPartial {
  readonly file: PartialFile;
  /** File name, for messages. */
  readonly source: string;
}

export type MergedRun =
  | { readonly kind: 'attribute'; readonly result: AttributionResult; readonly meta: RunMetadata }
  | { readonly kind: 'discover'; readonly result: DiscoveryResult; readonly meta: RunMetadata }
  | { readonly kind: 'evaluate'; readonly result: EvaluationResult; readonly meta: RunMetadata };

/** The first path where two JSON values differ, or undefined when they are equal. */
export function firstDifference(a: unknown, b: unknown, path = ''): { path: string; a: unknown; b: unknown } | undefined {
  if (a === b) return undefined;
  const isObj = (v: unknown) => typeof v === 'object' && v !== null;
  if (!isObj(a) || !isObj(b) || Array.isArray(a) !== Array.isArray(b)) return { path: path || '(top level)', a, b };
  const keys = [...new Set([...Object.keys(a as object), ...Object.keys(b as object)])].sort();
  for (const k of keys) {
    const d = firstDifference((a as Json)[k], (b as Json)[k], Array.isArray(a) ? `${path}[${k}]` : path ? `${path}.${k}` : k);
    if (d) return d;
  }
  return undefined;
}

const show = (v: unknown) => (v === undefined ? '(absent)' : JSON.stringify(v).slice(0, 200));

/** Fails unless `key` of every partial's JSON equals the first's, naming the first difference. */
function requireSame(parts: readonly NamedPartial[], get: (p: PartialFile) => unknown, what: string, hint: string): void {
  const [first, ...rest] = parts;
  for (const p of rest) {
    const d = firstDifference(get(first!.file), get(p.file));
    if (d) {
      throw new InputError(`${first!.source} and ${p.source} are partials of different runs: ${what}${d.path === '(top level)' ? '' : ` ${d.path}`} is ${show(d.a)} in ${first!.source} but ${show(d.b)} in ${p.source}`, hint);
    }
  }
}

/** Checks the partials are every shard of one run, once each. */
function checkComplete(parts: readonly NamedPartial[]): void {
  const hint = 'merge the partials of one run only: the same command, model, dictionaries, data and options, with --shard 0/n … (n−1)/n';
  if (parts.length === 0) throw new InputError('no partial files to merge', 'give the partial files, e.g. sfc merge part-*.json --out circuit.json');
  requireSame(parts, (p) => p.kind, 'the command', hint);
  requireSame(parts, (p) => p.shard.count, 'the shard count', hint);
  requireSame(parts, (p) => p.batchSizes, 'the batch sizes', hint);
  requireSame(parts, (p) => p.meta, 'meta', hint);
  requireSame(parts, (p) => p.identity, 'identity', hint);
  const n = parts[0]!.file.shard.count;
  const seen = new Map<number, string>();
  for (const p of parts) {
    const prev = seen.get(p.file.shard.index);
    if (prev !== undefined) throw new InputError(`${prev} and ${p.source} are both shard ${p.file.shard.index}/${n}`, 'give each shard once');
    seen.set(p.file.shard.index, p.source);
  }
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !seen.has(i));
  if (missing.length > 0) {
    throw new InputError(`missing shard${missing.length === 1 ? '' : 's'} ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', …' : ''} of ${n}`,
      'run every shard (--shard i/n for i = 0 … n−1) and give all their partial files');
  }
}

/** The partials in shard order, checked to be one complete run. */
function ordered(parts: readonly NamedPartial[]): NamedPartial[] {
  checkComplete(parts);
  return [...parts].sort((a, b) => a.file.shard.index - b.file.shard.index);
}

function checkedSums<T>(p: NamedPartial, check: (s: T) => boolean, what: string): T {
  const s = p.file.sums as T;
  if (!check(s)) throw new FormatError(`${p.source}: sums are not those of ${what}`, HINT);
  return s;
}

function addEffects(into: Map<string, { f: Float64Array; e: Float64Array; dSae: number; positions: number | null }>, p: NamedPartial, s: NodeSums): void {
  for (const name of s.submodules) {
    const e = s.effects[name];
    const acc = into.get(name);
    if (!e || !acc) throw new FormatError(`${p.source}: no effects for ${name}`, HINT);
    if (e.features.idx.length !== e.features.val.length || e.error.length !== acc.e.length) throw new FormatError(`${p.source}: effects of ${name} have the wrong shape`, HINT);
    e.features.idx.forEach((i, k) => {
      if (!(Number.isInteger(i) && i >= 0 && i < acc.f.length)) throw new FormatError(`${p.source}: feature index ${i} of ${name} is out of range`, HINT);
      acc.f[i]! += e.features.val[k]!;
    });
    e.error.forEach((v, k) => { acc.e[k]! += v; });
  }
}

/** Merged node effects and per-example metrics of attribute/discover partials (in the single run's batch order). */
function mergeNodes(parts: readonly NamedPartial[]): { base: NodeSums; result: AttributionResult } {
  const withSums = parts.filter((p) => p.file.sums !== null);
  const hint = 'merge the partials of one run only';
  const headerOf = (p: PartialFile) => {
    const s = p.sums as NodeSums;
    return { method: s.method, steps: s.steps, aggregation: s.aggregation, submodules: s.submodules, metric: s.metric,
      dSae: Object.fromEntries(s.submodules.map((n) => [n, s.effects[n]?.dSae])) };
  };
  requireSame(withSums, headerOf, 'the run', hint);
  const base = checkedSums<NodeSums>(withSums[0]!, (s) => Array.isArray(s.submodules) && typeof s.effects === 'object', 'attribute or discover');
  const acc = new Map(base.submodules.map((n) => {
    const e = base.effects[n]!;
    const len = (e.positions ?? 1);
    return [n, { f: new Float64Array(len * e.dSae), e: new Float64Array(len), dSae: e.dSae, positions: e.positions }];
  }));
  let N = 0;
  const seqLens = new Set<number | null>();
  for (const p of withSums) {
    const s = p.file.sums as NodeSums;
    addEffects(acc, p, s);
    N += p.file.numExamples;
    seqLens.add(s.seqLen);
    if (s.exampleIndex.length !== p.file.numExamples || s.metricClean.length !== p.file.numExamples) throw new FormatError(`${p.source}: ${p.file.numExamples} examples but ${s.metricClean.length} metric values`, HINT);
  }
  // Per-example values in the single run's order: batch by batch, in global batch order.
  const order = interleave(withSums, parts[0]!.file.batchSizes);
  const exampleIndex: number[] = [], clean: number[] = [], patch: number[] = [];
  for (const [pi, start, len] of order) {
    const s = withSums[pi]!.file.sums as NodeSums;
    exampleIndex.push(...s.exampleIndex.slice(start, start + len));
    clean.push(...s.metricClean.slice(start, start + len));
    if (s.metricPatch) patch.push(...s.metricPatch.slice(start, start + len));
  }
  const paired = base.metricPatch !== null;
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const effects = new Map<string, NodeEffects>([...acc].map(([name, a]) => {
    for (let i = 0; i < a.f.length; i++) a.f[i]! /= N;
    for (let i = 0; i < a.e.length; i++) a.e[i]! /= N;
    return [name, { submodule: name, dSae: a.dSae, positions: a.positions, features: a.f, error: a.e }];
  }));
  const result: AttributionResult = {
    method: base.method, steps: base.steps, aggregation: base.aggregation, numExamples: N,
    seqLen: seqLens.size === 1 ? [...seqLens][0]! : null, submodules: [...base.submodules], effects, metric: base.metric,
    metricClean: mean(clean), metricPatch: paired ? mean(patch) : null, totalEffect: paired ? mean(patch) - mean(clean) : null,
    perExample: { exampleIndex, metricClean: Float64Array.from(clean), metricPatch: paired ? Float64Array.from(patch) : null },
  };
  return { base, result };
}

/**
 * [partial, start, length] slices of the partials' per-example arrays in global batch order
 * (batch b is the (b div n)-th batch of shard b mod n).
 */
function interleave(parts: readonly NamedPartial[], sizes: readonly number[]): [number, number, number][] {
  const byShard = new Map(parts.map((p, i) => [p.file.shard.index, i]));
  const n = parts[0]!.file.shard.count;
  const offsets = new Map<number, number>();
  const out: [number, number, number][] = [];
  sizes.forEach((size, b) => {
    const pi = byShard.get(b % n);
    if (pi === undefined) return;
    const start = offsets.get(pi) ?? 0;
    out.push([pi, start, size]);
    offsets.set(pi, start + size);
  });
  return out;
}

/** Two coordinate lists sorted by key merged into one (equal keys added). */
function mergeSorted(a: { key: Float64Array; w: Float64Array }, b: { key: Float64Array; w: Float64Array }): { key: Float64Array; w: Float64Array } {
  const key = new Float64Array(a.key.length + b.key.length), w = new Float64Array(key.length);
  let i = 0, j = 0, n = 0;
  while (i < a.key.length || j < b.key.length) {
    const ka = i < a.key.length ? a.key[i]! : Infinity, kb = j < b.key.length ? b.key[j]! : Infinity;
    if (ka < kb) { key[n] = ka; w[n++] = a.w[i++]!; } else if (kb < ka) { key[n] = kb; w[n++] = b.w[j++]!; } else { key[n] = ka; w[n++] = a.w[i++]! + b.w[j++]!; }
  }
  return { key: key.subarray(0, n), w: w.subarray(0, n) };
}

/** Sums of every partial's edges, pair by pair: sorted lists merged pairwise (log₂ shards rounds), divided by N; exact zeros dropped. */
function mergeEdges(parts: readonly NamedPartial[], N: number): EdgeSet[] {
  const withSums = parts.filter((p) => p.file.sums !== null).map((p) => ({ p, s: p.file.sums as DiscoverySums }));
  const first = withSums[0]!.s;
  return first.edges.map((e0, k) => {
    const width = e0.upNodes * (e0.positions ?? 1);
    type List = { key: Float64Array; w: Float64Array };
    let lists = withSums.map(({ p, s }): List => {
      const e = s.edges[k];
      if (!e || e.upstream !== e0.upstream || e.downstream !== e0.downstream || e.upNodes !== e0.upNodes || e.positions !== e0.positions) {
        throw new FormatError(`${p.source}: edge sets differ from the other partials'`, HINT);
      }
      return { key: Float64Array.from(e.down, (d, i) => d * width + e.up[i]!), w: e.weight };
    });
    while (lists.length > 1) {
      const next: List[] = [];
      for (let i = 0; i < lists.length; i += 2) next.push(i + 1 < lists.length ? mergeSorted(lists[i]!, lists[i + 1]!) : lists[i]!);
      lists = next;
    }
    const { key, w } = lists[0]!;
    let nnz = 0;
    for (let i = 0; i < w.length; i++) if (w[i] !== 0) nnz++;
    const down = new Int32Array(nnz), up = new Int32Array(nnz), weight = new Float64Array(nnz);
    for (let i = 0, n = 0; i < w.length; i++) {
      if (w[i] === 0) continue;
      down[n] = Math.floor(key[i]! / width); up[n] = key[i]! % width; weight[n++] = w[i]! / N;
    }
    const rows = [...new Set(withSums.flatMap(({ s }) => Array.from(s.edges[k]!.rows)))].sort((a, b) => a - b);
    return { upstream: e0.upstream, downstream: e0.downstream, positions: e0.positions, downNodes: e0.downNodes, upNodes: e0.upNodes, down, up, weight, rows: Int32Array.from(rows) };
  });
}

function mergeDiscovery(parts: readonly NamedPartial[]): DiscoveryResult {
  const withSums = parts.filter((p) => p.file.sums !== null);
  requireSame(withSums, (p) => {
    const s = p.sums as DiscoverySums;
    return { nodeThreshold: s.nodeThreshold, nodesOnly: s.nodesOnly, edges: s.edges?.map((e) => `${e.upstream} → ${e.downstream}`) };
  }, 'the discovery', 'merge the partials of one run only');
  const { base, result } = mergeNodes(parts);
  const d = base as DiscoverySums;
  const edges = d.nodesOnly ? [] : mergeEdges(parts, result.numExamples);
  if (!d.nodesOnly) {
    const last = base.submodules[base.submodules.length - 1]!;
    const e = result.effects.get(last)!;
    edges.unshift(metricEdges(last, e.dSae, e.positions, e.features, e.error));
  }
  const downstreamNodes = new Map(base.submodules.map((n) => [n, withSums.reduce((c, p) => c + ((p.file.sums as DiscoverySums).downstreamNodes[n] ?? 0), 0)]));
  return { ...result, nodeThreshold: d.nodeThreshold, nodesOnly: d.nodesOnly, edges, downstreamNodes };
}

function mergeEvaluation(parts: readonly NamedPartial[]): EvaluationResult {
  const withSums = parts.filter((p) => p.file.sums !== null);
  requireSame(withSums, (p) => {
    const s = p.sums as EvaluationSums;
    return { ablation: s.ablation, handleErrors: s.handleErrors, startLayer: s.startLayer, submodules: s.submodules, metric: s.metric, thresholds: s.thresholds, nodes: s.nodes };
  }, 'the evaluation', 'merge the partials of one run only');
  const base = checkedSums<EvaluationSums>(withSums[0]!, (s) => Array.isArray(s.thresholds) && Array.isArray(s.circuit), 'evaluate');
  let N = 0, full = 0, empty = 0;
  const circuit = base.thresholds.map(() => 0), complement = base.thresholds.map(() => 0);
  for (const p of withSums) {
    const s = p.file.sums as EvaluationSums;
    if (s.circuit.length !== circuit.length || s.complement.length !== circuit.length) throw new FormatError(`${p.source}: one value per threshold expected`, HINT);
    N += p.file.numExamples;
    full += s.full;
    empty += s.empty;
    s.circuit.forEach((v, t) => { circuit[t]! += v; });
    s.complement.forEach((v, t) => { complement[t]! += v; });
  }
  const mFull = full / N, mEmpty = empty / N;
  const rows = base.thresholds.map((threshold, t): EvaluationRow => {
    const mCircuit = circuit[t]! / N, mComplement = complement[t]! / N;
    return { threshold, nodes: base.nodes[t]!, faithfulness: ratio(mCircuit, mEmpty, mFull), completeness: ratio(mComplement, mEmpty, mFull), mFull, mEmpty, mCircuit, mComplement };
  });
  return { rows, numExamples: N, ablation: base.ablation, handleErrors: base.handleErrors, startLayer: base.startLayer, submodules: [...base.submodules], metric: base.metric };
}

/** Merges every shard of one run into the single-process result (checks completeness and identity first). */
export function mergePartials(parts: readonly NamedPartial[]): MergedRun {
  const sorted = ordered(parts);
  const first = sorted[0]!.file;
  const meta = first.meta;
  if (sorted.every((p) => p.file.sums === null)) throw new InputError('every partial is empty (no batches)', 'the run has no examples');
  switch (first.kind) {
    case 'attribute': return { kind: 'attribute', result: mergeNodes(sorted).result, meta };
    case 'discover': return { kind: 'discover', result: mergeDiscovery(sorted), meta };
    case 'evaluate': return { kind: 'evaluate', result: mergeEvaluation(sorted), meta };
  }
}
