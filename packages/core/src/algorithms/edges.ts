// Edges between SAE nodes of adjacent submodules (feature-circuits' jvp), computed through core's
// segment chain. For a pair U → D (U a direct input of D's segment; the other inputs are the
// "midstream" submodules whose gradients are stopped), each selected downstream node (b, s, j)
// contributes one cotangent row on x_D[b, s, :]:
//   feature j:  c = (Ḡ_D[b,s]·W_dec_D[j]) · ∂f_j/∂x_D      (dictionary.featureGradients)
//   error:      c = ḡ − J_x̂ᵀ ḡ,  ḡ = Ḡ_D[b,s]               (dictionary.encodeVjp)
// All rows of a chunk go through one segment VJP (row n belongs to example b_n) to h = ∂/∂x_U,
// and the edge row is [(h·W_dec_Uᵀ) ⊙ Δf_U, Σ_d h ⊙ Δr_U] over every upstream position. Δf_U is
// sparse (SAE features are ~0.5% active), so h is projected only on the decoder rows of the
// features that change somewhere in the row's example, not on all F_U of them.
// Edges are stored row-sparse (downstream index → sparse upstream vector) and averaged over examples.

import type { Tensor, TensorOps } from '../tensor.js';
import { tidySync } from '../tidy.js';
import type { Model } from '../model/model.js';
import type { Aggregation, BatchContext } from './attribution.js';
import type { CancelCheck } from './cancel.js';
import type { ResolvedSubmodule } from './setup.js';
import type { SparseAct } from './sparse-act.js';

export interface EdgePair {
  readonly upstream: string;
  readonly downstream: string;
}

/**
 * The pairs of docs/concepts.md (“Edges”): every direct input U of each submodule D's segment, i.e. per layer
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
    const all = Int32Array.from({ length: rowLength }, (_, i) => i);
    keys.forEach((key, r) => this.addRow(key, all, data.subarray(r * rowLength, (r + 1) * rowLength)));
  }

  /** Adds one row for downstream flat index `key`: values `val` at sorted upstream indices `idx`; zeros are dropped. */
  addRow(key: number, idx: Int32Array, val: ArrayLike<number>): void {
    let nnz = 0;
    for (let i = 0; i < idx.length; i++) if (val[i] !== 0) nnz++;
    const row: SparseRow = { idx: new Int32Array(nnz), val: new Float64Array(nnz) };
    let n = 0;
    for (let i = 0; i < idx.length; i++) {
      if (val[i] !== 0) { row.idx[n] = idx[i]!; row.val[n++] = val[i]!; }
    }
    const prev = this.rows.get(key);
    this.rows.set(key, prev ? mergeRows(prev, row) : row);
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
  /** The upstream submodule's patch difference, compacted (upstreamDelta). */
  readonly upstream: UpstreamDelta;
  readonly aggregation: Aggregation;
  readonly maxRows: number;
  /** Awaited before every chunk (one segment VJP). */
  readonly cancel?: CancelCheck;
}

/** Per example b, the sorted features j with Δf[b, s, j] ≠ 0 at some position s (Δf [B, S, F]). */
export async function deltaSupport(ops: TensorOps, delta: SparseAct): Promise<Int32Array[]> {
  const [B, , F] = delta.act.shape as [number, number, number];
  const m = await ops.scope(() => ops.max(ops.abs(delta.act), 1));
  const any = await m.data();
  m.dispose();
  return Array.from({ length: B }, (_, b) => {
    const idx: number[] = [];
    for (let j = 0; j < F; j++) if (any[b * F + j] !== 0) idx.push(j);
    return Int32Array.from(idx);
  });
}

/** What edges need of an upstream submodule's patch difference, without the dense Δf [B, S, F]. */
export interface UpstreamDelta {
  /** Per example b, the sorted features j with Δf[b, s, j] ≠ 0 at some position s. */
  readonly support: readonly Int32Array[];
  /** Per example b, Δf[b, :, support_b] as [S, m_b] (undefined when the support is empty). */
  readonly values: readonly (Tensor | undefined)[];
  /** Δr [B, S, d]. */
  readonly res: Tensor;
}

/**
 * Compacts an upstream delta for edges: each example's Δf on its support (Δf is ~0.5% nonzero for
 * real SAEs) and Δr, both computed now, so the caller can dispose the dense Δf right away.
 */
export async function upstreamDelta(ops: TensorOps, delta: SparseAct): Promise<UpstreamDelta> {
  const [, S, F] = delta.act.shape as [number, number, number];
  const support = await deltaSupport(ops, delta);
  const values = support.map((J, b) => (J.length === 0 ? undefined : tidySync((t) =>
    ops.gather(t(ops.reshape(t(ops.slice(delta.act, [b, 0, 0], [1, S, F])), [S, F])), t(ops.intTensor(J, [J.length])), 1))));
  // One read in one tick: a lazy backend computes them (and Δr) in one run and keeps the values.
  await Promise.all([delta.res.data(), ...values.map((v) => v?.data())]);
  return { support, values, res: delta.res };
}

/**
 * Largest intermediate of one edge chunk (floats): rows × positions × (upstream features projected
 * + 1). Caps the rows of a chunk when the support is wide (dense Δf), whatever maxRows says.
 */
export const EDGE_ELEMENT_BUDGET = 1 << 24;

/** Adds one batch's edge rows for a pair U → D to `acc`, at most `maxRows` downstream nodes per segment VJP. */
export async function accumulatePairEdges(model: Model, input: PairEdgeInputs, acc: EdgeAccumulator): Promise<void> {
  const ops = model.ops;
  const { ctx, down, up, nodes, upstream } = input;
  const upSupport = upstream.support;
  const { size: B, seq: S } = ctx.batch;
  const FD = down.dict.dSae;
  const FU = up.dict.dSae;
  const xD = ctx.values.get(down.name)!;
  const d = xD.shape[2]!;
  const sum = input.aggregation === 'sum';
  const total = nodes.k.length;
  const widest = Math.max(d, ...upSupport.map((j) => j.length));
  const chunk = Math.max(1, Math.min(input.maxRows, Math.floor(EDGE_ELEMENT_BUDGET / (S * (widest + 1)))));
  for (let c0 = 0; c0 < total; c0 += chunk) {
    await input.cancel?.();
    // Feature rows first, then error rows; row metadata follows that order.
    const idx = [...Array(Math.min(chunk, total - c0)).keys()].map((i) => c0 + i);
    const feats = idx.filter((i) => nodes.k[i]! < FD);
    const errs = idx.filter((i) => nodes.k[i]! === FD);
    const order = [...feats, ...errs];
    const n = order.length;
    const rowsB = Int32Array.from(order, (i) => nodes.b[i]!);
    const pos = Int32Array.from(order, (i) => nodes.s[i]!);
    const keys = order.map((i) => (sum ? nodes.k[i]! : nodes.s[i]! * (FD + 1) + nodes.k[i]!));
    // Chunk rows by example: each example projects h on its own upstream support.
    const groups = new Map<number, number[]>();
    rowsB.forEach((b, r) => { const g = groups.get(b); if (g) g.push(r); else groups.set(b, [r]); });
    const projected = [...groups].filter(([b]) => upSupport[b]!.length > 0);

    const out = await ops.scope(async () => {
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
        parts.push(ops.sub(g, down.dict.encodeVjp(ops.gather(xFlat, at, 0), ops.matMulTransposed(g, down.dict.decoderRows()))));
      }
      const c = parts.length === 1 ? parts[0]! : ops.concat(parts, 0);
      const cot = ops.mul(ops.reshape(ops.oneHot(ops.intTensor(pos, [n]), S), [n, S, 1]), ops.reshape(c, [n, 1, d]));
      const h = await model.segmentVjp(down.name, up.name, ctx.values, cot, rowsB);
      const he = ops.sum(ops.mul(h, ops.gather(upstream.res, ops.intTensor(rowsB, [n]), 0)), 2);
      // Per example b: (h·W_dec[J_b]ᵀ) ⊙ Δf[b, :, J_b] over its support J_b.
      // Intermediates are disposed at once, so a lazy backend materialises only the results.
      const hf = projected.map(([b, rows]) => tidySync((t) => {
        const m = upSupport[b]!.length;
        const J = t(ops.intTensor(upSupport[b]!, [m]));
        const hb = t(ops.reshape(t(ops.gather(h, t(ops.intTensor(rows, [rows.length])), 0)), [rows.length * S, d]));
        const proj = t(ops.matMulTransposed(hb, t(ops.gather(up.dict.decoderRows(), J, 0))));
        const dfb = upstream.values[b]!;
        const v = t(ops.mul(t(ops.reshape(proj, [rows.length, S, m])), dfb));
        return sum ? ops.sum(v, 1) : v;
      }));
      return { he: sum ? ops.sum(he, 1) : he, hf };
    });
    const [heData, ...hfData] = await Promise.all([out.he.data(), ...out.hf.map((t) => t.data())]);
    out.he.dispose();
    for (const t of out.hf) t.dispose();

    // Sparse rows: upstream flat index s·(F_U + 1) + j (s = 0 for sum), the error node at j = F_U.
    const P = sum ? 1 : S;
    const rowOf = new Map<number, { J: Int32Array; data: ArrayLike<number>; local: number }>();
    projected.forEach(([b, rows], g) => rows.forEach((r, local) => rowOf.set(r, { J: upSupport[b]!, data: hfData[g]!, local })));
    for (let r = 0; r < n; r++) {
      const f = rowOf.get(r);
      const m = f ? f.J.length : 0;
      const ix = new Int32Array(P * (m + 1));
      const val = new Float64Array(P * (m + 1));
      for (let p = 0; p < P; p++) {
        const o = p * (m + 1);
        for (let i = 0; i < m; i++) { ix[o + i] = p * (FU + 1) + f!.J[i]!; val[o + i] = f!.data[(f!.local * P + p) * m + i]!; }
        ix[o + m] = p * (FU + 1) + FU;
        val[o + m] = heData[r * P + p]!;
      }
      acc.addRow(keys[r]!, ix, val);
    }
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

