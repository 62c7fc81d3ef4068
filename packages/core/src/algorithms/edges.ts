// Edges between SAE nodes of adjacent submodules (feature-circuits' jvp), computed through core's
// segment chain. For a pair U → D (U a direct input of D's segment; the other inputs are the
// "midstream" submodules whose gradients are stopped), each selected downstream node (b, s, j)
// contributes one cotangent row on x_D[b, s, :]:
//   feature j:  c = (Ḡ_D[b,s]·W_dec_D[j]) · ∂f_j/∂x_D      (dictionary.featureGradients)
//   error:      c = ḡ − J_x̂ᵀ ḡ,  ḡ = Ḡ_D[b,s]               (dictionary.encodeVjp)
// All rows of a chunk go through one segment VJP (row n belongs to example b_n) to h = ∂/∂x_U,
// and the edge row is [(h·W_dec_Uᵀ) ⊙ Δf_U, Σ_d h ⊙ Δr_U] over every upstream position.
// Edges are stored row-sparse (downstream index → sparse upstream vector) and averaged over examples.

import type { Tensor } from '../tensor.js';
import type { Model } from '../model/model.js';
import type { Aggregation, BatchContext } from './attribution.js';
import type { ResolvedSubmodule } from './setup.js';
import type { SparseAct } from './sparse-act.js';

export interface EdgePair {
  readonly upstream: string;
  readonly downstream: string;
}

/**
 * The pairs of DESIGN §5: every direct input U of each submodule D's segment, i.e. per layer
 * mlp→resid, attn→resid (stop mlp), prev→mlp (stop attn), prev→attn, prev→resid (stop mlp, attn),
 * and attn→mlp for sequential models. Ordered from the last layer down, like the reference.
 */
export function edgePairs(model: Model, submodules: readonly string[]): EdgePair[] {
  const have = new Set(submodules);
  const pairs: EdgePair[] = [];
  for (const d of [...model.submodules].reverse()) {
    if (!have.has(d.name)) continue;
    for (const u of model.inputsOf(d.name)) if (have.has(u)) pairs.push({ upstream: u, downstream: d.name });
  }
  return pairs;
}

/** Per-example downstream nodes with |effect| > threshold; k = F is the error node. */
export interface DownstreamNodes {
  readonly b: Int32Array;
  readonly s: Int32Array;
  readonly k: Int32Array;
}

/** Selects (b, s, k) with |effect| > threshold on unaggregated effects act [B,S,F], res [B,S] (the reference's features_by_submod). */
export async function selectDownstreamNodes(effect: SparseAct, threshold: number): Promise<DownstreamNodes> {
  const [B, S, F] = effect.act.shape as [number, number, number];
  const act = await effect.act.data();
  const res = await effect.res.data();
  const b: number[] = [], s: number[] = [], k: number[] = [];
  for (let bs = 0; bs < B * S; bs++) {
    const base = bs * F;
    for (let i = 0; i < F; i++) {
      if (Math.abs(act[base + i]!) > threshold) { b.push(Math.floor(bs / S)); s.push(bs % S); k.push(i); }
    }
    if (Math.abs(res[bs]!) > threshold) { b.push(Math.floor(bs / S)); s.push(bs % S); k.push(F); }
  }
  return { b: Int32Array.from(b), s: Int32Array.from(s), k: Int32Array.from(k) };
}

interface SparseRow {
  idx: Int32Array;
  val: Float64Array;
}

function mergeRows(a: SparseRow, b: SparseRow): SparseRow {
  const idx = new Int32Array(a.idx.length + b.idx.length);
  const val = new Float64Array(idx.length);
  let i = 0, j = 0, n = 0;
  while (i < a.idx.length || j < b.idx.length) {
    if (j >= b.idx.length || (i < a.idx.length && a.idx[i]! < b.idx[j]!)) { idx[n] = a.idx[i]!; val[n++] = a.val[i++]!; }
    else if (i >= a.idx.length || b.idx[j]! < a.idx[i]!) { idx[n] = b.idx[j]!; val[n++] = b.val[j++]!; }
    else { idx[n] = a.idx[i]!; val[n++] = a.val[i++]! + b.val[j++]!; }
  }
  return { idx: idx.slice(0, n), val: val.slice(0, n) };
}

/** Aggregated edges of one pair, COO sorted by (down, up), weights averaged over examples. */
export interface EdgeSet {
  readonly upstream: string;
  /** A submodule, or `y` for the metric. */
  readonly downstream: string;
  /** null for aggregation `sum`; positions for `none`. */
  readonly positions: number | null;
  /** Number of downstream nodes: F_D + 1 (1 for y). Flat downstream index = pos·downNodes + index (pos = 0 for sum and for y). */
  readonly downNodes: number;
  /** F_U + 1. Flat upstream index = pos·upNodes + index. */
  readonly upNodes: number;
  readonly down: Int32Array;
  readonly up: Int32Array;
  readonly weight: Float64Array;
  /**
   * Downstream flat indices whose rows were computed (sorted), including rows that came out all
   * zero — e.g. a feature active only in the patch run has no gradient on the clean run.
   */
  readonly rows: Int32Array;
}

/** Running sums of one pair's edge rows, row-sparse (only rows of selected downstream nodes exist). */
export class EdgeAccumulator {
  private readonly rows = new Map<number, SparseRow>();
  constructor(readonly upstream: string, readonly downstream: string, readonly positions: number | null,
    readonly downNodes: number, readonly upNodes: number) {}

  /** Adds dense rows [keys.length × rowLength] (row r belongs to downstream flat index keys[r]); zeros are dropped. */
  addDense(keys: readonly number[], data: Float32Array | Int32Array, rowLength: number): void {
    keys.forEach((key, r) => {
      const base = r * rowLength;
      let nnz = 0;
      for (let i = 0; i < rowLength; i++) if (data[base + i] !== 0) nnz++;
      const row: SparseRow = { idx: new Int32Array(nnz), val: new Float64Array(nnz) };
      let n = 0;
      for (let i = 0; i < rowLength; i++) {
        const v = data[base + i]!;
        if (v !== 0) { row.idx[n] = i; row.val[n++] = v; }
      }
      const prev = this.rows.get(key);
      this.rows.set(key, prev ? mergeRows(prev, row) : row);
    });
  }

  result(numExamples: number): EdgeSet {
    const keys = [...this.rows.keys()].sort((a, b) => a - b);
    const nnz = keys.reduce((n, k) => n + this.rows.get(k)!.idx.length, 0);
    const down = new Int32Array(nnz), up = new Int32Array(nnz), weight = new Float64Array(nnz);
    let n = 0;
    for (const k of keys) {
      const row = this.rows.get(k)!;
      for (let i = 0; i < row.idx.length; i++) { down[n] = k; up[n] = row.idx[i]!; weight[n++] = row.val[i]! / numExamples; }
    }
    return { upstream: this.upstream, downstream: this.downstream, positions: this.positions, downNodes: this.downNodes, upNodes: this.upNodes,
      down, up, weight, rows: Int32Array.from(keys) };
  }
}

export interface PairEdgeInputs {
  readonly ctx: BatchContext;
  /** IG mean gradients Ḡ [B, S, d] per submodule. */
  readonly grads: ReadonlyMap<string, Tensor>;
  readonly down: ResolvedSubmodule;
  readonly up: ResolvedSubmodule;
  readonly nodes: DownstreamNodes;
  /** W_dec transposed [d, F] per submodule. */
  readonly decoderT: ReadonlyMap<string, Tensor>;
  readonly aggregation: Aggregation;
  readonly maxRows: number;
}

/**
 * Largest [rows × positions × (F_U + 1)] intermediate of one edge chunk (floats): with a 32k-wide
 * upstream SAE and 20 positions this caps a chunk at ~25 rows (64 MB) whatever maxRows says.
 */
export const EDGE_ELEMENT_BUDGET = 1 << 24;

/** Adds one batch's edge rows for a pair U → D to `acc`, at most `maxRows` downstream nodes per segment VJP. */
export async function accumulatePairEdges(model: Model, input: PairEdgeInputs, acc: EdgeAccumulator): Promise<void> {
  const ops = model.ops;
  const { ctx, down, up, nodes } = input;
  const { size: B, seq: S } = ctx.batch;
  const FD = down.dict.dSae;
  const FU = up.dict.dSae;
  const xD = ctx.values.get(down.name)!;
  const d = xD.shape[2]!;
  const total = nodes.k.length;
  const chunk = Math.max(1, Math.min(input.maxRows, Math.floor(EDGE_ELEMENT_BUDGET / (S * (FU + 1)))));
  for (let c0 = 0; c0 < total; c0 += chunk) {
    // Feature rows first, then error rows; row metadata follows that order.
    const idx = [...Array(Math.min(chunk, total - c0)).keys()].map((i) => c0 + i);
    const feats = idx.filter((i) => nodes.k[i]! < FD);
    const errs = idx.filter((i) => nodes.k[i]! === FD);
    const order = [...feats, ...errs];
    const n = order.length;
    const rowsB = Int32Array.from(order, (i) => nodes.b[i]!);
    const pos = Int32Array.from(order, (i) => nodes.s[i]!);
    const keys = order.map((i) => (input.aggregation === 'sum' ? nodes.k[i]! : nodes.s[i]! * (FD + 1) + nodes.k[i]!));
    const unique = [...new Set(keys)];
    const slot = new Map(unique.map((k, i) => [k, i]));
    const rowLength = input.aggregation === 'sum' ? FU + 1 : S * (FU + 1);

    const summed = await ops.scope(async () => {
      const xFlat = ops.reshape(xD, [B * S, d]);
      const gFlat = ops.reshape(input.grads.get(down.name)!, [B * S, d]);
      const parts: Tensor[] = [];
      if (feats.length) {
        const at = ops.intTensor(Int32Array.from(feats, (i) => nodes.b[i]! * S + nodes.s[i]!), [feats.length]);
        const j = Int32Array.from(feats, (i) => nodes.k[i]!);
        const g = ops.gather(gFlat, at, 0);
        const coef = ops.sum(ops.mul(g, ops.gather(down.dict.decoderRows(), ops.intTensor(j, [j.length]), 0)), 1);
        const fg = down.dict.featureGradients(ops.gather(xFlat, at, 0), j);
        parts.push(ops.mul(fg, ops.reshape(coef, [feats.length, 1])));
      }
      if (errs.length) {
        const at = ops.intTensor(Int32Array.from(errs, (i) => nodes.b[i]! * S + nodes.s[i]!), [errs.length]);
        const g = ops.gather(gFlat, at, 0);
        parts.push(ops.sub(g, down.dict.encodeVjp(ops.gather(xFlat, at, 0), ops.matMul(g, input.decoderT.get(down.name)!))));
      }
      const c = parts.length === 1 ? parts[0]! : ops.concat(parts, 0);
      const cot = ops.mul(ops.reshape(ops.oneHot(ops.intTensor(pos, [n]), S), [n, S, 1]), ops.reshape(c, [n, 1, d]));
      const h = await model.segmentVjp(down.name, up.name, ctx.values, cot, rowsB);
      const rowIdx = ops.intTensor(rowsB, [n]);
      const delta = ctx.delta.get(up.name)!;
      const hf = ops.mul(ops.matMul(h, input.decoderT.get(up.name)!), ops.gather(delta.act, rowIdx, 0));
      const he = ops.sum(ops.mul(h, ops.gather(delta.res, rowIdx, 0)), 2, true);
      let row = ops.concat([hf, he], 2);
      row = input.aggregation === 'sum' ? ops.sum(row, 1) : ops.reshape(row, [n, rowLength]);
      const assign = ops.oneHot(ops.intTensor(Int32Array.from(keys, (k) => slot.get(k)!), [n]), unique.length);
      return ops.matMul(ops.transpose(assign), row);
    });
    const data = await summed.data();
    summed.dispose();
    acc.addDense(unique, data, rowLength);
  }
}

/** `resid_last → y`: the node effects of the last submodule, as an edge set (weights already means). */
export function metricEdges(upstream: string, dSae: number, positions: number | null, features: Float64Array, error: Float64Array): EdgeSet {
  const P = positions ?? 1;
  const down: number[] = [], up: number[] = [], weight: number[] = [];
  for (let p = 0; p < P; p++) {
    for (let i = 0; i <= dSae; i++) {
      const w = i < dSae ? features[p * dSae + i]! : error[p]!;
      if (w !== 0) { down.push(0); up.push(p * (dSae + 1) + i); weight.push(w); }
    }
  }
  return { upstream, downstream: 'y', positions, downNodes: 1, upNodes: dSae + 1,
    down: Int32Array.from(down), up: Int32Array.from(up), weight: Float64Array.from(weight), rows: Int32Array.of(0) };
}

