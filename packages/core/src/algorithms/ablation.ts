// Ablation (feature-circuits' run_with_ablations): one clean forward in which every ablated
// submodule, in forward order and on its current (already ablated upstream) input, is decomposed
// by its SAE and has the features and errors that are not kept replaced by ablation values
// computed from unmodified runs of the patch prompts: `mean` (per position, over all patch
// prompts), `zero`, or `resample` (each row takes the patch state of a prompt drawn with
// replacement, seeded). Prompts of mixed lengths: means per position over the prompts that reach
// it, resampled states from prompts of the same length; pads are never read (docs/concepts.md).

import { InputError } from '../errors.js';
import type { Model } from '../model/model.js';
import type { LogitSelection } from '../model/spec.js';
import type { Tensor, TensorOps } from '../tensor.js';
import { tidySync } from '../tidy.js';
import { padRows, rowLength, type PromptBatch } from '../data/batches.js';
import { realMask } from './changed-rows.js';
import { PythonRandom } from '../data/python-random.js';
import type { CancelCheck } from './cancel.js';
import type { ResolvedSubmodule } from './setup.js';
import { saeState, type SparseAct } from './sparse-act.js';

export type Ablation =
  | { readonly kind: 'mean' }
  | { readonly kind: 'zero' }
  | { readonly kind: 'resample'; readonly seed?: number };

/** How SAE errors are treated: like features (`default`), always live (`keep`), always ablated (`remove`). */
export type ErrorHandling = 'default' | 'keep' | 'remove';

/** Which nodes of one submodule stay live: 1 keep, 0 ablate. features [F] or [S, F]; error [1] or [S, 1]. */
export interface KeepMask {
  readonly act: Tensor;
  readonly res: Tensor;
  /**
   * What the masks hold, when the caller knows: `none` (all 0: the splice is the ablation value
   * dec(ab.act) + ab.res, whatever the input — no encode) or `all` (all 1: the splice is the
   * identity — no edit). Undefined: a mix.
   */
  readonly keeps?: 'none' | 'all';
}

/** The prompts whose unmodified states give ablation values: the patch prompts, or the clean ones without patches (as the reference). */
function ablationIds(batch: PromptBatch): Int32Array {
  return batch.patch ?? batch.clean;
}

/**
 * Per-position means of every submodule's SAE state over the prompts of all batches: act [S, F],
 * res [S, d], S the longest prompt. In right-padded batches only real rows count: the mean at
 * position p is over the prompts longer than p (pad positions contribute nothing). The tensors
 * outlive the call; the caller disposes them (meanStatesFor cuts them to a batch's length).
 * The decoder is affine, so mean(x − dec(f)) = mean(x) − dec(mean(f)): one decode of [S, F] per
 * submodule instead of one per prompt.
 */
export async function meanAblationStates(model: Model, subs: readonly ResolvedSubmodule[], batches: readonly PromptBatch[],
  cancel?: CancelCheck): Promise<Map<string, SparseAct>> {
  const ops = model.ops;
  const S = Math.max(...batches.map((b) => b.seq));
  // Prompts counted at each position (all of them for pad-free batches of one length).
  const counts = new Float64Array(S);
  for (const b of batches) for (let r = 0; r < b.size; r++) for (let p = 0; p < rowLength(b, r); p++) counts[p]!++;
  let sums: Map<string, SparseAct> | undefined;
  for (const batch of batches) {
    await cancel?.(); // the running sums are the caller's scope's to dispose
    const part = await ops.scope(async () => {
      const run = await model.forward(model.tokens(ablationIds(batch), batch.size, batch.seq), { logits: false });
      const real = realMask(ops, batch);
      // Σ over the batch's real rows, zero-extended to S positions.
      const rowSum = (t: Tensor) => {
        const sum = ops.sum(real ? ops.mul(t, real) : t, 0);
        return batch.seq === S ? sum : ops.concat([sum, ops.zeros([S - batch.seq, t.shape[2]!])], 0);
      };
      const out: Record<string, Tensor> = {};
      for (const s of subs) {
        const x = run.values.get(s.name)!;
        out[`${s.name}:act`] = rowSum(s.dict.encode(x));
        out[`${s.name}:x`] = rowSum(x);
      }
      return out;
    });
    // Running sums: act Σf [S, F] and, in `res` until the end, Σx [S, d].
    const next = new Map<string, SparseAct>();
    for (const s of subs) {
      const act = part[`${s.name}:act`]!, res = part[`${s.name}:x`]!;
      const prev = sums?.get(s.name);
      next.set(s.name, prev ? { act: ops.add(prev.act, act), res: ops.add(prev.res, res) } : { act, res });
      if (prev) { prev.act.dispose(); prev.res.dispose(); act.dispose(); res.dispose(); }
    }
    sums = next;
  }
  const uniform = counts.every((c) => c === counts[0]);
  const inv = uniform ? undefined : ops.tensor(Float32Array.from(counts, (c) => 1 / c), [S, 1]);
  const mean = (t: Tensor) => (inv ? ops.mul(t, inv) : ops.scale(t, 1 / counts[0]!));
  const means = new Map<string, SparseAct>();
  for (const s of subs) {
    const v = sums!.get(s.name)!;
    const act = mean(v.act);
    const res = tidySync((t) => ops.sub(t(mean(v.res)), t(s.dict.decode(act))));
    means.set(s.name, { act, res });
    v.act.dispose(); v.res.dispose();
  }
  inv?.dispose();
  return means;
}

/** Per-position ablation states [S_max, ·] cut to a batch of `seq` positions (created in the caller's scope). */
export function meanStatesFor(ops: TensorOps, states: ReadonlyMap<string, SparseAct>, seq: number): ReadonlyMap<string, SparseAct> {
  const cut = (t: Tensor) => (t.shape.length === 2 && t.shape[0]! > seq ? ops.slice(t, [0, 0], [seq, t.shape[1]!]) : t);
  return new Map([...states].map(([k, v]) => [k, { act: cut(v.act), res: cut(v.res) }]));
}

/** Zero ablation values (x̂ = dec(0) = b_dec for a fully ablated submodule). */
export function zeroAblationStates(ops: TensorOps, subs: readonly ResolvedSubmodule[]): Map<string, SparseAct> {
  return new Map(subs.map((s) => [s.name, { act: ops.zeros([s.dict.dSae]), res: ops.zeros([s.dict.dIn]) }]));
}

/**
 * Draws, for every prompt of every batch, the global index of the prompt whose state it takes (with
 * replacement) among the prompts of its own token length, so a drawn state has a real token at
 * every real position. With one length this is a draw among all prompts.
 */
export function resampleDraws(batches: readonly PromptBatch[], seed: number): number[][] {
  const pools = new Map<number, number[]>();
  let g = 0;
  for (const b of batches) {
    for (let r = 0; r < b.size; r++, g++) {
      const len = rowLength(b, r);
      const pool = pools.get(len);
      if (pool) pool.push(g); else pools.set(len, [g]);
    }
  }
  const rng = new PythonRandom(seed);
  return batches.map((b) => Array.from({ length: b.size }, (_, r) => {
    const pool = pools.get(rowLength(b, r))!;
    return pool[rng.randbelow(pool.length)]!;
  }));
}

/** Resample ablation values for one batch: the unmodified states of the drawn prompts [B, S, ·], padded like the batch. */
export async function resampleAblationStates(model: Model, subs: readonly ResolvedSubmodule[], batches: readonly PromptBatch[],
  draws: readonly number[]): Promise<Map<string, SparseAct>> {
  const ops = model.ops;
  const all: Int32Array[] = [];
  for (const b of batches) for (let r = 0; r < b.size; r++) all.push(ablationIds(b).subarray(r * b.seq, r * b.seq + rowLength(b, r)));
  const { ids, seq } = padRows(draws.map((g) => [...all[g]!]));
  const run = await model.forward(model.tokens(ids, draws.length, seq), { logits: false });
  return new Map(subs.map((s) => [s.name, saeState(ops, s.dict, run.values.get(s.name)!)]));
}

/**
 * Metric values [B] of the clean prompts with every submodule in `subs` spliced: kept features and
 * errors (mask 1) stay, the rest take their ablation values. Runs in the caller's scope.
 */
export async function ablatedMetric(model: Model, subs: readonly ResolvedSubmodule[], tokens: Tensor, selection: LogitSelection,
  value: (logits: Tensor) => Tensor, states: ReadonlyMap<string, SparseAct>, keep: ReadonlyMap<string, KeepMask>): Promise<Tensor> {
  const ops = model.ops;
  // Intermediates are disposed as soon as the spliced value is built (a lazy backend then never
  // materialises them: only the value the next segment reads).
  const edits = new Map<string, (x: Tensor) => Tensor>();
  for (const s of subs) {
    const k = keep.get(s.name)!;
    if (k.keeps === 'all') continue;
    if (k.keeps === 'none') {
      const ab = states.get(s.name)!;
      // Dictionaries decode rows [..., F]: a per-feature vector (zero ablation) is one row.
      const rows = ab.act.shape.length === 1 ? [1, ab.act.shape[0]!] : ab.act.shape;
      edits.set(s.name, (x) => tidySync((t) => {
        const value = t(ops.add(t(s.dict.decode(t(ops.reshape(ab.act, rows)))), ab.res));
        return ops.add(t(ops.zeros(x.shape)), value);
      }, [x, ab.act, ab.res]));
      continue;
    }
    edits.set(s.name, mixedSplice(ops, s, states.get(s.name)!, k));
  }
  const run = await model.forward(tokens, { edits, logits: selection });
  return value(run.logits!);
}

/** The splice of a submodule whose kept nodes are a mix: encode, mix kept and ablated, decode once. */
function mixedSplice(ops: TensorOps, s: ResolvedSubmodule, ab: SparseAct, k: KeepMask): (x: Tensor) => Tensor {
  return (x) => tidySync((t) => {
    const f = t(s.dict.encode(x));
    const fm = t(ops.add(ab.act, t(ops.mul(k.act, t(ops.sub(f, ab.act))))));
    // dec(fm) + ab.res + k_r·(r − ab.res) with r = x − dec(f). The decoder is linear, so this is
    // dec(fm − k_r·f) − k_r·b_dec + ab.res + k_r·(x − ab.res): one decode per splice instead of two.
    const kept = t(ops.add(ab.res, t(ops.mul(k.res, t(ops.sub(x, ab.res))))));
    const dec = t(s.dict.decode(t(ops.sub(fm, t(ops.mul(k.res, f))))));
    return ops.add(t(ops.sub(dec, t(ops.mul(k.res, s.dict.decoderBias())))), kept);
  }, [x]);
}
