// Node effects of SAE features and SAE error terms on a metric (feature-circuits' patching_effect):
// `attrib` (one gradient), `ig` (integrated gradients, a left Riemann sum over interpolations of
// the submodule output, one submodule at a time, all steps in one batched pass) and `exact`
// (activation patching of each feature that changes, batched). Gradients are taken w.r.t.
// submodule outputs and projected on decoder rows (docs/concepts.md, “Nodes, error nodes and effects”). Results are aggregated over
// positions (`sum`) or not (`none`) and averaged over examples, batches weighted by their size.
//
// Gradient semantics: sfc implements what feature-circuits intends. attrib's gradient at each
// submodule is the true gradient of the model (every SAE splice x = x̂ + r is the identity in value
// and in gradient); under nnsight 0.3 the reference's `_pe_attrib` may instead leak gradients
// through the SAE encoder upstream of embed/mlp. Likewise edges (edges.ts) use the true gradient
// at upstream error nodes where the reference's `jvp` may zero it. The PyTorch fixtures follow the
// intended math, and so does sfc.

import type { Tensor, TensorOps } from '../tensor.js';
import type { Dictionary } from '../dictionary.js';
import { InputError } from '../errors.js';
import type { ForwardResult, Model } from '../model/model.js';
import type { LogitSelection } from '../model/spec.js';
import { countPrompts, type PromptBatch } from '../data/batches.js';
import { defaultMetric, type BoundMetric, type Metric } from './metrics.js';
import { cancelCheck, type CancelCheck } from './cancel.js';
import type { ProgressCallback } from './progress.js';
import { checkBatches, checkGrad, promptLengths, requirePositiveInt, resolveDictionaries, type DictionarySet, type ResolvedSubmodule } from './setup.js';
import { effectOfOutputDelta, saeState, type SparseAct } from './sparse-act.js';
import { changedRows, compactRows, expandRows, realMask, realRows, type ChangedRows } from './changed-rows.js';
import { tidySync } from '../tidy.js';

export type AttributionMethod =
  | { readonly kind: 'attrib' }
  | { readonly kind: 'ig'; readonly steps?: number }
  | { readonly kind: 'exact' };

export type Aggregation = 'sum' | 'none';

export const DEFAULT_IG_STEPS = 10;
export const DEFAULT_MAX_ROWS = 256;

/**
 * Bytes of forward values one IG batch may hold for its backward (every value from the submodule
 * to the logits, [rows, seq, d_model] each). It bounds the rows of a batch where the chain is
 * long and wide: at Gemma-2-2B shape (130 values of 2304 floats a position) 20 rows of 8 tokens
 * instead of 36, for ~4% more IG CPU time (docs/performance.md, "Gemma-2-2B scale"); small models
 * stay at maxRows.
 */
export const IG_VALUE_BUDGET = 192 * 2 ** 20;

/** IG steps per batch: within maxRows and IG_VALUE_BUDGET, spread evenly over the batches the steps need. */
export function igStepsPerBatch(model: Model, sub: ResolvedSubmodule, batch: { size: number; seq: number }, steps: number, maxRows: number): number {
  const segs = model.spec.segments;
  const held = Math.max(1, segs.length - 1 - segs.findIndex((s) => s.name === sub.name));
  const rowBytes = held * batch.seq * model.spec.dims.dModel * 4;
  const rows = Math.min(maxRows, Math.floor(IG_VALUE_BUDGET / rowBytes));
  const most = Math.max(1, Math.floor(rows / batch.size));
  const batches = Math.max(1, Math.ceil(steps / most));
  return Math.max(1, Math.ceil(steps / batches));
}

export interface AttributeOptions {
  readonly method: AttributionMethod;
  /** `sum` over positions (default) or `none` (keep positions). */
  readonly aggregation?: Aggregation;
  /** Submodules to attribute (default: all, in forward order). */
  readonly submodules?: readonly string[];
  /** Default: logit[patch] − logit[clean] for paired batches, −logit[answer] for single prompts. */
  readonly metric?: Metric;
  /** Most prompt rows in one batched forward (IG steps × examples, exact patches). Default 256. */
  readonly maxRows?: number;
  readonly onProgress?: ProgressCallback;
  /** Aborting stops the run at the next unit of work (CancelledError; its tensors are disposed). */
  readonly signal?: AbortSignal;
}

/** Aggregated node effects of one submodule (means over examples). */
export interface NodeEffects {
  readonly submodule: string;
  readonly dSae: number;
  /** null for aggregation `sum`; the number of positions for `none`. */
  readonly positions: number | null;
  /** sum: [F]; none: [positions × F], position-major. */
  readonly features: Float64Array;
  /** sum: [1]; none: [positions]. */
  readonly error: Float64Array;
}

export interface AttributionResult {
  readonly method: AttributionMethod['kind'];
  readonly steps: number | null;
  readonly aggregation: Aggregation;
  readonly numExamples: number;
  /** Token length of the examples when all share one (always for `none`). */
  readonly seqLen: number | null;
  readonly submodules: readonly string[];
  readonly effects: ReadonlyMap<string, NodeEffects>;
  readonly metric: string;
  /** Means over examples; metricPatch and totalEffect are null in single-prompt mode. */
  readonly metricClean: number;
  readonly metricPatch: number | null;
  readonly totalEffect: number | null;
  /** Per example, in batch order (see exampleIndex). */
  readonly perExample: {
    readonly exampleIndex: readonly number[];
    readonly metricClean: Float64Array;
    readonly metricPatch: Float64Array | null;
  };
}

/** Everything one batch's node effects (and edges) need from the clean and patch runs. */
export interface BatchContext {
  readonly batch: PromptBatch;
  readonly metric: BoundMetric;
  /** The clean forward's logit selection (row n = prompt n) and logits. */
  readonly selection: LogitSelection;
  readonly logits: Tensor;
  /** Clean submodule outputs [B, S, d]. */
  readonly values: Map<string, Tensor>;
  readonly mClean: Tensor;
  readonly mPatch: Tensor | undefined;
  /** Per submodule, patch state − clean state: Δf [B, S, F], Δr [B, S, d] (the patch state is 0 without patch prompts). */
  readonly delta: Map<string, SparseAct>;
  /**
   * Per submodule, where IG's path ends: dec(f_patch) + r_patch, i.e. the patch run's output, or
   * dec(0) = b_dec [d] in single-prompt mode.
   */
  readonly target: Map<string, Tensor>;
  /**
   * Rows whose clean and patch prefixes differ (undefined: all rows). `delta` and `target − values`
   * are 0 on every other row, so attrib and ig node effects are computed on these rows only. A
   * context whose `delta` or `target` is replaced by values that differ elsewhere (a hand-made
   * patch) must set `changed: undefined`: otherwise attrib and ig report 0 on those rows, while
   * exact, which reads `delta` directly, does not.
   */
  readonly changed: ChangedRows | undefined;
  /**
   * What the clean forward kept for its backward (ForwardOptions.keepForBackward), for the first
   * backward of the clean run (attribGradients), which empties it: later backwards recompute.
   */
  readonly kept?: Map<string, Tensor[]>;
}

/**
 * The clean forward keeps its segments' linear products for the clean backward when the stacked
 * clean + patch forward has at most this many rows (the products cost a few times a row's
 * activations per layer: at Gemma-2-2B shape ~110 KB per row and layer).
 */
const KEEP_MAX_ROWS = 128;

/**
 * Clean and patch prompts run as one stacked forward up to this many stacked rows; past it, as two
 * forwards (the weights' reading is then a small part of a forward, and the segments' temporaries
 * would be twice as large).
 */
const STACK_MAX_ROWS = 2048;

/**
 * Runs the clean and patch prompts and decomposes every submodule output with its SAE. Only the
 * deltas are kept (one [B, S, F] tensor per submodule); the states themselves are freed.
 */
export async function prepareBatch(model: Model, subs: readonly ResolvedSubmodule[], batch: PromptBatch, metric: BoundMetric): Promise<BatchContext> {
  const ops = model.ops;
  const selection = metric.selection();
  const { clean, patch } = await cleanAndPatchRuns(model, batch, metric, selection);
  const mClean = metric.value(clean.logits!);
  const mPatch = patch ? metric.value(patch.logits!) : undefined;
  const delta = new Map<string, SparseAct>();
  const target = new Map<string, Tensor>();
  const changed = changedRows(ops, batch);
  // Right-padded batch: Δ is forced to exact zeros at pad positions (nothing there has an effect).
  const real = realMask(ops, batch);
  const atReal = (t: Tensor) => (real ? ops.mul(t, real) : t);
  for (const s of subs) {
    const d = await ops.scope(() => {
      const xc = clean.values.get(s.name)!;
      if (!patch) {
        const c = saeState(ops, s.dict, xc);
        return { act: atReal(ops.neg(c.act)), res: atReal(ops.neg(c.res)) }; // the patch state is 0
      }
      const xp = patch.values.get(s.name)!;
      // Δf on the changed rows only (zeros elsewhere). The decoder is linear, so
      // Δr = Δx − (dec(f_p) − dec(f_c)) = Δx − (dec(Δf) − b_dec): one decode instead of two, built on
      // the returned Δf handle, so a lazy backend neither encodes again for Δr nor computes it
      // unless exact or edges read it.
      const act = changed
        ? expandRows(ops, changed, tidySync((t) => encodedDifference(ops, s.dict, t(compactRows(ops, changed, xp)), t(compactRows(ops, changed, xc)))),
          [...xc.shape.slice(0, 2), s.dict.dSae])
        : encodedDifference(ops, s.dict, xp, xc);
      return { act: changed ? act : atReal(act), res: atReal(ops.sub(ops.sub(xp, xc), ops.sub(s.dict.decode(act), s.dict.decoderBias()))) };
    });
    delta.set(s.name, d);
    target.set(s.name, patch ? patch.values.get(s.name)! : s.dict.decoderBias());
  }
  return { batch, metric, selection, logits: clean.logits!, values: clean.values, mClean, mPatch, delta, target, changed, ...(clean.kept ? { kept: clean.kept } : {}) };
}

/**
 * The clean and patch forwards of a batch as ONE forward of the two stacked (clean rows, then
 * patch rows; up to STACK_MAX_ROWS): every weight is read once for both, which at a few dozen rows
 * is most of a forward's cost. Rows are independent, so each half is what its own forward gives. The halves
 * come back as separate values and logits (selected with `selection` for the clean half).
 */
async function cleanAndPatchRuns(model: Model, batch: PromptBatch, metric: BoundMetric, selection: LogitSelection):
  Promise<{ clean: ForwardResult; patch: ForwardResult | undefined }> {
  const { size: B, seq: S } = batch;
  const keepForBackward = (batch.patch ? 2 : 1) * B * S <= KEEP_MAX_ROWS;
  const run = (ids: Int32Array, keep: boolean) => model.forward(model.tokens(ids, B, S), { logits: selection, keepForBackward: keep });
  if (!batch.patch) return { clean: await run(batch.clean, keepForBackward), patch: undefined };
  if (2 * B * S > STACK_MAX_ROWS) return { clean: await run(batch.clean, keepForBackward), patch: await run(batch.patch, false) };
  const ops = model.ops;
  const ids = new Int32Array(2 * B * S);
  ids.set(batch.clean, 0);
  ids.set(batch.patch, B * S);
  const rows = Int32Array.from({ length: 2 * B }, (_, r) => r % B);
  const both = await model.forward(model.tokens(ids, 2 * B, S), { logits: metric.selection(rows), keepForBackward });
  const half = (t: Tensor, k: 0 | 1) => leadingRows(ops, t, k * B, B);
  const split = (k: 0 | 1): ForwardResult => {
    const values = new Map<string, Tensor>();
    for (const [name, v] of both.values) values.set(name, half(v, k));
    return { values, logits: half(both.logits!, k) };
  };
  const clean = split(0);
  const patch = split(1);
  const kept = both.kept ? new Map([...both.kept].map(([name, ts]) => [name, ts.map((t) => half(t, 0))])) : undefined;
  for (const v of both.values.values()) v.dispose();
  for (const ts of both.kept?.values() ?? []) for (const t of ts) t.dispose();
  both.logits!.dispose();
  return { clean: kept ? { ...clean, kept } : clean, patch };
}

/** enc(a) − enc(b), with both encoded as one stacked batch (each encoder weight read once). */
function encodedDifference(ops: TensorOps, dict: Dictionary, a: Tensor, b: Tensor): Tensor {
  const n = a.shape[0]!;
  return tidySync((t) => {
    const f = t(dict.encode(t(ops.concat([a, b], 0))));
    return ops.sub(t(leadingRows(ops, f, 0, n)), t(leadingRows(ops, f, n, n)));
  });
}

/** Rows start … start + n − 1 of t's first axis, every other axis whole. */
function leadingRows(ops: TensorOps, t: Tensor, start: number, n: number): Tensor {
  const rest = t.shape.slice(1);
  return ops.slice(t, [start, ...rest.map(() => 0)], [n, ...rest]);
}

/** attrib: ∂m/∂x_M for every submodule from one backward pass of the clean run (true gradients through every splice). */
export async function attribGradients(model: Model, ctx: BatchContext, subs: readonly ResolvedSubmodule[]): Promise<Map<string, Tensor>> {
  const kept = ctx.kept?.size ? new Map(ctx.kept) : undefined;
  ctx.kept?.clear();
  try {
    return await model.backward(ctx.values, { logits: ctx.metric.cotangent(ctx.logits) },
      { targets: subs.map((s) => s.name), logits: ctx.selection, ...(kept ? { kept } : {}) });
  } finally {
    for (const ts of kept?.values() ?? []) for (const t of ts) t.dispose();
  }
}

/**
 * ig: Ḡ_M = mean_k ∂m/∂x_M at x_M = (1−α_k)·x_clean + α_k·target (dec(f_patch) + r_patch, or b_dec), α_k = k/steps,
 * k = 0..steps−1 (left Riemann sum; α = 1 is never evaluated). All steps of a chunk run as one
 * batch of steps × examples rows through forwardFrom (cached values tiled block-major).
 * `cleanGradient` (∂m/∂x_M of the clean run, from attribGradients) stands in for step 0.
 */
export async function igGradient(model: Model, ctx: BatchContext, sub: ResolvedSubmodule, steps: number, maxRows: number, cancel?: CancelCheck,
  cleanGradient?: Tensor): Promise<Tensor> {
  const ops = model.ops;
  const { size: B, seq: S } = ctx.batch;
  const xc = ctx.values.get(sub.name)!;
  const d = xc.shape[2]!;
  const diff = ops.reshape(ops.sub(ctx.target.get(sub.name)!, xc), [1, B, S, d]);
  const base = ops.reshape(xc, [1, B, S, d]);
  // Step 0 (α = 0) is the clean gradient: when the caller has it from attribGradients' single
  // backward for all submodules, it is reused instead of run again.
  const first = cleanGradient ? 1 : 0;
  const perChunk = igStepsPerBatch(model, sub, ctx.batch, steps - first, maxRows);
  let acc: Tensor | undefined = cleanGradient;
  for (let k0 = first; k0 < steps; k0 += perChunk) {
    await cancel?.();
    const K = Math.min(perChunk, steps - k0);
    const part = await ops.scope(async () => {
      const alphas = ops.tensor(Array.from({ length: K }, (_, i) => (k0 + i) / steps), [K, 1, 1, 1]);
      const x = ops.reshape(ops.add(ops.mul(alphas, diff), base), [K * B, S, d]);
      const rows = Int32Array.from({ length: K * B }, (_, r) => r % B);
      const selection = ctx.metric.selection(rows);
      const run = await model.forwardFrom(sub.name, x, ctx.values, { logits: selection });
      const grads = await model.backward(run.values, { logits: ctx.metric.cotangent(run.logits!) }, { targets: [sub.name], logits: selection });
      return ops.sum(ops.reshape(grads.get(sub.name)!, [K, B, S, d]), 0);
    });
    acc = acc ? ops.add(acc, part) : part;
  }
  return ops.scale(acc!, 1 / steps);
}

/** Rows `rows` of every cached value (for forwards where row n belongs to example rows[n]). */
export function gatherValues(ops: TensorOps, values: ReadonlyMap<string, Tensor>, rows: Tensor): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, v] of values) out.set(k, ops.gather(v, rows, 0));
  return out;
}

/**
 * exact: for every (b, s, i) with Δf ≠ 0, the metric change when only that feature takes its patch
 * value (x_M := x_clean + Δf_i·W_dec[i] = dec(f) + r_clean); for every (b, s), the change when the
 * whole error vector takes its patch value. Each chunk of patches is one batched forward from M on.
 */
export async function exactEffect(model: Model, ctx: BatchContext, sub: ResolvedSubmodule, maxRows: number,
  onRow?: (done: number, total: number) => void, cancel?: CancelCheck): Promise<SparseAct> {
  const ops = model.ops;
  const { size: B, seq: S } = ctx.batch;
  const F = sub.dict.dSae;
  const xc = ctx.values.get(sub.name)!;
  const d = xc.shape[2]!;
  const delta = ctx.delta.get(sub.name)!;
  const df = (await delta.act.data()) as Float32Array;
  const nz: number[] = [];
  for (let i = 0; i < df.length; i++) if (df[i] !== 0) nz.push(i);
  const mClean = ctx.mClean;
  const decoder = sub.dict.decoderRows();
  const effAct = new Float32Array(B * S * F);
  const effRes = new Float32Array(B * S);
  // Error nodes: one patch per position whose Δr can be nonzero (rows with an unchanged prefix have
  // Δ = 0, so their effect is exactly 0 without a forward).
  const errorRows = ctx.changed ? ctx.changed.rows : realRows(ctx.batch);
  const total = nz.length + errorRows.length;
  let done = 0;

  // One batched forward per chunk; `build` makes the patched submodule outputs for the chunk's rows.
  const runChunk = async (rowsB: Int32Array, build: (rowIdx: Tensor) => Tensor): Promise<Float32Array> => {
    return ops.scope(async () => {
      const rowIdx = ops.intTensor(rowsB, [rowsB.length]);
      const x = build(rowIdx);
      const run = await model.forwardFrom(sub.name, x, gatherValues(ops, ctx.values, rowIdx), { logits: ctx.metric.selection(rowsB) });
      const change = ops.sub(ctx.metric.value(run.logits!), ops.gather(mClean, rowIdx, 0));
      return change;
    }).then(async (t) => { const v = (await t.data()) as Float32Array; t.dispose(); return v; });
  };

  for (let c0 = 0; c0 < nz.length; c0 += maxRows) {
    await cancel?.();
    const chunk = nz.slice(c0, c0 + maxRows);
    const n = chunk.length;
    const rowsB = new Int32Array(n), pos = new Int32Array(n), feat = new Int32Array(n), val = new Float32Array(n);
    chunk.forEach((flat, r) => {
      feat[r] = flat % F;
      pos[r] = Math.floor(flat / F) % S;
      rowsB[r] = Math.floor(flat / (F * S));
      val[r] = df[flat]!;
    });
    const change = await runChunk(rowsB, (rowIdx) => {
      const dir = ops.mul(ops.reshape(ops.tensor(val, [n]), [n, 1]), ops.gather(decoder, ops.intTensor(feat, [n]), 0));
      const at = ops.reshape(ops.oneHot(ops.intTensor(pos, [n]), S), [n, S, 1]);
      return ops.add(ops.gather(xc, rowIdx, 0), ops.mul(at, ops.reshape(dir, [n, 1, d])));
    });
    chunk.forEach((flat, r) => { effAct[flat] = change[r]!; });
    done += n;
    onRow?.(done, total);
  }

  const dr = ops.reshape(delta.res, [B * S, d]);
  for (let c0 = 0; c0 < errorRows.length; c0 += maxRows) {
    await cancel?.();
    const flatIdx = errorRows.slice(c0, c0 + maxRows);
    const n = flatIdx.length;
    const rowsB = flatIdx.map((f) => Math.floor(f / S));
    const pos = flatIdx.map((f) => f % S);
    const change = await runChunk(rowsB, (rowIdx) => {
      const at = ops.reshape(ops.oneHot(ops.intTensor(pos, [n]), S), [n, S, 1]);
      const dir = ops.reshape(ops.gather(dr, ops.intTensor(flatIdx, [n]), 0), [n, 1, d]);
      return ops.add(ops.gather(xc, rowIdx, 0), ops.mul(at, dir));
    });
    flatIdx.forEach((f, r) => { effRes[f] = change[r]!; });
    done += n;
    onRow?.(done, total);
  }
  return { act: ops.tensor(effAct, [B, S, F]), res: ops.tensor(effRes, [B, S]) };
}

/**
 * Per-example node effects of one submodule for a prepared batch (act [B, S, F], res [B, S]),
 * unaggregated. `grads` are attrib's gradients when already computed for all submodules.
 */
export async function batchNodeEffects(model: Model, ctx: BatchContext, sub: ResolvedSubmodule, method: AttributionMethod,
  options: { maxRows?: number; grads?: ReadonlyMap<string, Tensor>; onRow?: (done: number, total: number) => void; cancel?: CancelCheck } = {}): Promise<SparseAct> {
  const ops = model.ops;
  const { kind, steps } = resolveMethod(method);
  const maxRows = options.maxRows ?? DEFAULT_MAX_ROWS;
  if (kind === 'exact') return exactEffect(model, ctx, sub, maxRows, options.onRow, options.cancel);
  const g = kind === 'attrib'
    ? (options.grads ?? await attribGradients(model, ctx, [sub])).get(sub.name)!
    : await igGradient(model, ctx, sub, steps!, maxRows, options.cancel, options.grads?.get(sub.name));
  return gradientEffect(ops, ctx, sub, g);
}

/**
 * The node effects of a gradient g at submodule `sub` for the batch's patch: (g·W_decᵀ) ⊙ Δf and
 * Σ g ⊙ Δr, the latter as Σ g ⊙ Δx − Σ act with Δx = target − x_clean (no decode of Δf).
 */
export async function gradientEffect(ops: TensorOps, ctx: BatchContext, sub: ResolvedSubmodule, g: Tensor): Promise<SparseAct> {
  const xc = ctx.values.get(sub.name)!;
  const df = ctx.delta.get(sub.name)!.act;
  const dx = ops.sub(ctx.target.get(sub.name)!, xc);
  const changed = ctx.changed;
  if (!changed) {
    const effect = await effectOfOutputDelta(ops, g, sub.dict, df, dx);
    dx.dispose();
    return effect;
  }
  // Only the changed rows can have effects: compute them there, expand with zeros.
  const [B, S] = xc.shape as [number, number];
  const [gA, dfA, dxA] = [g, df, dx].map((t) => compactRows(ops, changed, t)) as [Tensor, Tensor, Tensor];
  const onRows = await effectOfOutputDelta(ops, gA, sub.dict, dfA, dxA);
  for (const t of [dx, gA, dfA, dxA]) t.dispose();
  const act = expandRows(ops, changed, onRows.act, [B, S, sub.dict.dSae]);
  const res = tidySync((t) => ops.reshape(t(expandRows(ops, changed, t(ops.reshape(onRows.res, [-1, 1])), [B, S, 1])), [B, S]));
  onRows.act.dispose(); onRows.res.dispose();
  return { act, res };
}

/** Running example-weighted sums of one submodule's effects. */
export class EffectAccumulator {
  readonly features: Float64Array;
  readonly error: Float64Array;
  constructor(readonly submodule: string, readonly dSae: number, readonly positions: number | null) {
    this.features = new Float64Array((positions ?? 1) * dSae);
    this.error = new Float64Array(positions ?? 1);
  }

  /**
   * Adds the batch's per-example effects act [B, S, F], res [B, S], summed over examples (and
   * positions for `sum`). With `release`, the effect is disposed before the sums are read, so a lazy
   * backend never copies the [B, S, F] tensor out.
   */
  async add(ops: TensorOps, effect: SparseAct, options: { release?: boolean } = {}): Promise<void> {
    const [fa, ea] = await ops.scope(() => (this.positions === null
      ? [ops.sum(effect.act, [0, 1]), ops.sum(effect.res)]
      : [ops.sum(effect.act, 0), ops.sum(effect.res, 0)]));
    if (options.release) { effect.act.dispose(); effect.res.dispose(); }
    // Both reads in one tick: a lazy backend computes them in one run.
    const [f, e] = await Promise.all([fa!.data(), ea!.data()]);
    fa!.dispose(); ea!.dispose();
    if (f.length !== this.features.length || e.length !== this.error.length) {
      throw new InputError(`internal: effect sizes ${f.length}/${e.length} do not match ${this.features.length}/${this.error.length} for ${this.submodule}`);
    }
    for (let i = 0; i < f.length; i++) this.features[i]! += f[i]!;
    for (let i = 0; i < e.length; i++) this.error[i]! += e[i]!;
  }

  result(numExamples: number): NodeEffects {
    for (let i = 0; i < this.features.length; i++) this.features[i]! /= numExamples;
    for (let i = 0; i < this.error.length; i++) this.error[i]! /= numExamples;
    return { submodule: this.submodule, dSae: this.dSae, positions: this.positions, features: this.features, error: this.error };
  }
}

export function resolveMethod(method: AttributionMethod): { kind: AttributionMethod['kind']; steps: number | null } {
  if (method.kind === 'ig') {
    const steps = method.steps ?? DEFAULT_IG_STEPS;
    requirePositiveInt(steps, 'IG steps', 'pass --steps N with N ≥ 1 (the reference uses 10)');
    return { kind: 'ig', steps };
  }
  if (method.kind === 'attrib' || method.kind === 'exact') return { kind: method.kind, steps: null };
  throw new InputError(`unknown attribution method ${JSON.stringify((method as { kind: unknown }).kind)}`, 'use attrib, ig or exact');
}

/** The token length every prompt has, or null when lengths differ (within or across batches). */
export function sameLength(batches: readonly PromptBatch[]): number | null {
  const lens = promptLengths(batches);
  return lens.length === 1 ? lens[0]! : null;
}

/** What attribute() and discover() report about the metric, per example and as means. */
type MetricSummary = Pick<AttributionResult, 'metric' | 'metricClean' | 'metricPatch' | 'totalEffect' | 'perExample'>;

/**
 * The batch loop attribute() and discover() share: for every batch (each in its own scope) the
 * clean and patch runs, the metric values recorded, then `body`; progress per batch.
 */
export async function forEachBatch(model: Model, subs: readonly ResolvedSubmodule[], batches: readonly PromptBatch[],
  options: { readonly metric?: Metric; readonly onProgress?: ProgressCallback; readonly cancel?: CancelCheck },
  body: (ctx: BatchContext) => Promise<void>): Promise<MetricSummary> {
  const ops = model.ops;
  const N = countPrompts(batches);
  const mClean: number[] = [], mPatch: number[] = [], exampleIndex: number[] = [];
  const paired = batches[0]!.patch !== undefined;
  let metricName = options.metric?.name ?? '';
  let examplesDone = 0;
  await ops.scope(async () => {
    for (const batch of batches) {
      await options.cancel?.();
      await ops.scope(async () => {
        const metric = options.metric ?? defaultMetric(batch);
        metricName = metric.name;
        const ctx = await prepareBatch(model, subs, batch, metric.bind(ops, batch));
        mClean.push(...(await ctx.mClean.data()));
        if (ctx.mPatch) mPatch.push(...(await ctx.mPatch.data()));
        exampleIndex.push(...batch.exampleIndex);
        await body(ctx);
      });
      examplesDone += batch.size;
      options.onProgress?.({ stage: 'batches', done: examplesDone, total: N });
    }
  });
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    metric: metricName,
    metricClean: mean(mClean),
    metricPatch: paired ? mean(mPatch) : null,
    totalEffect: paired ? mean(mPatch) - mean(mClean) : null,
    perExample: { exampleIndex, metricClean: Float64Array.from(mClean), metricPatch: paired ? Float64Array.from(mPatch) : null },
  };
}

/** Node effects of every SAE feature and error term, aggregated over positions and examples. */
export async function attribute(model: Model, dictionaries: DictionarySet, batches: readonly PromptBatch[], options: AttributeOptions): Promise<AttributionResult> {
  const ops = model.ops;
  const { kind, steps } = resolveMethod(options.method);
  const aggregation = options.aggregation ?? 'sum';
  if (aggregation !== 'sum' && aggregation !== 'none') throw new InputError(`unknown aggregation ${JSON.stringify(aggregation)}`, 'use sum or none');
  const maxRows = options.maxRows ?? DEFAULT_MAX_ROWS;
  requirePositiveInt(maxRows, 'maxRows');
  if (kind !== 'exact') checkGrad(model, `attribution with method '${kind}'`);
  const subs = resolveDictionaries(model, dictionaries, options.submodules);
  checkBatches(batches, { aggregation, metric: options.metric });
  const N = countPrompts(batches);
  const seqLen = sameLength(batches);
  const positions = aggregation === 'none' ? seqLen : null;
  const acc = new Map(subs.map((s) => [s.name, new EffectAccumulator(s.name, s.dict.dSae, positions)]));
  const progress = options.onProgress;
  const cancel = cancelCheck(options.signal, `attribute (${kind})`);
  const summary = await forEachBatch(model, subs, batches, { ...options, cancel }, async (ctx) => {
    // attrib's gradients, and IG's first step (α = 0) for every submodule: one backward.
    const grads = kind !== 'exact' ? await attribGradients(model, ctx, subs) : undefined;
    for (const [i, s] of subs.entries()) {
      await cancel();
      await ops.scope(async () => {
        const effect = await batchNodeEffects(model, ctx, s, options.method, {
          maxRows, cancel, ...(grads ? { grads } : {}),
          onRow: (done, total) => progress?.({ stage: 'exact', done, total, detail: s.name }),
        });
        await acc.get(s.name)!.add(ops, effect, { release: true });
      });
      progress?.({ stage: 'submodules', done: i + 1, total: subs.length, detail: s.name });
    }
  });
  return {
    method: kind, steps, aggregation, numExamples: N, seqLen, submodules: subs.map((s) => s.name),
    effects: new Map([...acc].map(([k, a]) => [k, a.result(N)])),
    ...summary,
  };
}
