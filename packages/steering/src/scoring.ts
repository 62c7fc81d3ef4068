// Steered scoring: the next-token distribution at the last prompt position before and after
// steering — the metric, the answer logits and their difference, the top-k log-probabilities,
// and KL(before ‖ after) — per prompt and summed up over a dataset. The unsteered forward runs
// once per batch however many steered variants are compared (sweeps reuse it). Right-padded
// batches (prompts of mixed lengths) are read at each row's last real token; edits at pad
// positions reach no real token (docs/concepts.md, "Prompts of different lengths").

import { InputError, logitDiff, negAnswerLogit, type Metric, type Model, type PromptBatch, type Tensor, type TensorOps } from '@sfc/core';
import { f32, i32 } from './host-data.js';
import type { PatchState, Steering, TokenBatch } from './steering.js';

/**
 * Prompts, right-padded when their lengths differ. Structurally a subset of core's PromptBatch, so
 * batches from the data loader pass straight in; answers are optional (prompt-only scoring has no metric).
 */
export interface ScoreBatch {
  readonly size: number;
  readonly seq: number;
  /** Prompt ids [size, seq]. */
  readonly clean: Int32Array;
  /** Patch prompt ids [size, seq] (paired data): the values `patch` ops copy. */
  readonly patch?: Int32Array;
  readonly cleanAnswer?: Int32Array;
  readonly patchAnswer?: Int32Array;
  /** Index of each row in the example list it came from. */
  readonly exampleIndex?: readonly number[];
  /** Real tokens per row of a right-padded batch (absent: every row has `seq`). */
  readonly lengths?: Int32Array;
  /**
   * Per row, the next tokens that count as the steer's intended outcome (on target when the
   * steered top-1 is one of them). Default: the row's patch answer; none without one.
   */
  readonly targets?: readonly (readonly number[])[];
}

/** The unembed selection of a batch's next-token logits: each row's last real token. */
function nextTokenLogits(batch: ScoreBatch): { lastOnly: true; lastPositions?: Int32Array } {
  return batch.lengths ? { lastOnly: true, lastPositions: Int32Array.from(batch.lengths, (l) => l - 1) } : { lastOnly: true };
}

/** The distinct prompt lengths of a batch. */
function batchLengths(batch: ScoreBatch): number[] {
  return batch.lengths ? [...new Set(batch.lengths)] : [batch.seq];
}

/** A metric on the last-position logits [batch, vocab] → [batch]. */
export interface ScoreMetric {
  readonly name: string;
  value(ops: TensorOps, lastLogits: Tensor, batch: ScoreBatch): Tensor;
}

export interface ScoreOptions {
  /** How many next tokens to list (default 10). */
  readonly topK?: number;
  /** The metric (wrap core metrics with fromCoreMetric); default: defaultScoreMetric. */
  readonly metric?: ScoreMetric;
  /** Patch prompt for `patch` ops (1 or `size` rows); default: the batch's own patch prompts. */
  readonly patchPrompt?: TokenBatch;
  readonly onProgress?: (progress: { readonly phase: 'score'; readonly done: number; readonly total: number }) => void;
}

export interface TopToken {
  readonly id: number;
  readonly token: string;
  readonly logprob: number;
}

/** The next-token picture on one side (before or after steering). */
export interface NextTokenView {
  readonly metric?: number;
  /** logit[last, clean_answer] (or the only answer). */
  readonly cleanLogit?: number;
  readonly patchLogit?: number;
  /** cleanLogit − patchLogit: > 0 when the model prefers the clean answer. */
  readonly logitDiff?: number;
  readonly top: readonly TopToken[];
}

export interface PromptScore {
  /** Row in the batch list, counted over all batches in order. */
  readonly index: number;
  /** The row's example index (ScoreBatch.exampleIndex), when the batch has one. */
  readonly example?: number;
  readonly before: NextTokenView;
  readonly after: NextTokenView;
  /** KL(before ‖ after) of the next-token distributions, in nats. */
  readonly kl: number;
  /** Paired data: the preferred answer (sign of logitDiff) changed. */
  readonly flipped?: boolean;
  /** The steered top-1 is one of the row's targets (ScoreBatch.targets, default the patch answer). */
  readonly onTarget?: boolean;
  /** The unsteered top-1 is the answer (how often that holds bounds what on-target can mean). */
  readonly answerTop1Before?: boolean;
  /** The most likely next token changed. */
  readonly top1Changed: boolean;
}

export interface ScoreSummary {
  readonly prompts: number;
  readonly metricName?: string;
  readonly metricBefore?: number;
  readonly metricAfter?: number;
  readonly logitDiffBefore?: number;
  readonly logitDiffAfter?: number;
  readonly klMean: number;
  /** Fraction of prompts whose preferred answer flipped (paired data). */
  readonly flipRate?: number;
  /** Fraction of prompts whose steered top-1 is a target (prompts with targets). */
  readonly onTargetRate?: number;
  /** Fraction of prompts whose unsteered top-1 is the answer (prompts with answers). */
  readonly answerTop1RateBefore?: number;
  readonly top1ChangeRate: number;
}

export interface ScoreResult {
  readonly prompts: readonly PromptScore[];
  readonly summary: ScoreSummary;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * A core Metric (linear in a few logit columns per prompt, e.g. logitDiff()) on the full
 * last-position logits: its columns are picked with a one-hot product, so no host round trip.
 */
export function fromCoreMetric(metric: Metric): ScoreMetric {
  return {
    name: metric.name,
    value(ops, logits, batch) {
      const [rows, vocab] = logits.shape as [number, number];
      const bound = metric.bind(ops, promptBatch(batch, metric));
      const columns = bound.selection().columns;
      if (!columns) return bound.value(logits);
      const k = columns.shape[columns.shape.length - 1]!;
      const picked = ops.sum(ops.mul(ops.oneHot(ops.reshape(columns, [rows * k]), vocab), ops.reshape(ops.tile(logits, [1, k]), [rows * k, vocab])), -1);
      return bound.value(ops.reshape(picked, [rows, k]));
    },
  };
}

function promptBatch(batch: ScoreBatch, metric: Metric): PromptBatch {
  if (!batch.cleanAnswer || (metric.paired && !batch.patchAnswer)) {
    throw new InputError(`the ${metric.name} metric needs ${metric.paired ? 'answers and patch answers' : 'answers'}`,
      metric.paired ? 'give --answer and --patch-answer, or --data with clean_answer and patch_answer' : 'give --answer, or --data with answers');
  }
  return { ...batch, cleanAnswer: batch.cleanAnswer, exampleIndex: Array.from({ length: batch.size }, (_, i) => i) };
}

/** logits[r, ids[r]] for every row r of [rows, vocab] logits. */
export function answerLogits(ops: TensorOps, logits: Tensor, ids: Int32Array): Tensor {
  const [rows, vocab] = logits.shape as [number, number];
  if (ids.length !== rows) throw new InputError(`${ids.length} answers for ${rows} prompts`);
  const flat = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    if (ids[r]! < 0 || ids[r]! >= vocab) throw new InputError(`answer id ${ids[r]} outside the vocabulary (${vocab} tokens)`);
    flat[r] = r * vocab + ids[r]!;
  }
  return ops.gather(ops.reshape(logits, [rows * vocab]), ops.intTensor(flat, [rows]), 0);
}

/** Discovery's metric (core's defaultMetric): paired logit[patch] − logit[clean], single −logit[answer]; none without answers. */
export function defaultScoreMetric(batch: ScoreBatch): ScoreMetric | undefined {
  if (!batch.cleanAnswer) return undefined;
  return fromCoreMetric(batch.patchAnswer ? logitDiff() : negAnswerLogit());
}

interface SideData { metric?: Float32Array; clean?: Float32Array; patch?: Float32Array; topIds: Int32Array; topLp: Float32Array }

/** A batch's unsteered side as host data: the next-token log-probabilities and their reads. */
interface BeforeData { readonly lp: Float32Array; readonly shape: readonly number[]; readonly side: SideData; readonly k: number; readonly metric: string | undefined }

/**
 * What scoring a batch computes before any steering — the unsteered next-token log-probabilities
 * with their reads, and the patch prompt's captured values — kept as host data, so that scoring
 * the same batches again (calibration's bisection steps, each a sweep) runs neither forward
 * again. The scores are the same as without it (the very same float32 values are used). One
 * baseline serves the strength variants of one steering (Steering.withStrength), whose patch
 * captures are the same; do not share it between different steerings.
 */
export class ScoreBaseline {
  private readonly before = new Map<ScoreBatch | undefined, BeforeData>();
  private readonly patches = new Map<ScoreBatch | undefined, Promise<PatchState>>();
  private readonly lengths = new Map<ScoreBatch, Map<number, ScoreBaseline>>();

  /** `single`: the baseline of one sub-batch, which compareByLength rebuilds as a new object each time. */
  private constructor(private readonly single: boolean) {}

  static create(): ScoreBaseline {
    return new ScoreBaseline(false);
  }

  private key(batch: ScoreBatch): ScoreBatch | undefined {
    return this.single ? undefined : batch;
  }

  /** The baseline of the pad-free sub-batch of `batch`'s rows of length `seq` (compareByLength). */
  forLength(batch: ScoreBatch, seq: number): ScoreBaseline {
    let m = this.lengths.get(batch);
    if (!m) this.lengths.set(batch, (m = new Map()));
    let b = m.get(seq);
    if (!b) m.set(seq, (b = new ScoreBaseline(true)));
    return b;
  }

  /** The cached unsteered side of `batch` when it was read with the same k and metric (by name). */
  beforeOf(batch: ScoreBatch, k: number, metric: ScoreMetric | undefined): BeforeData | undefined {
    const d = this.before.get(this.key(batch));
    return d && d.k === k && d.metric === metric?.name ? d : undefined;
  }

  setBefore(batch: ScoreBatch, data: BeforeData): void {
    this.before.set(this.key(batch), data);
  }

  /** `batch`'s patch capture, made once by `capture`. */
  patch(batch: ScoreBatch, capture: () => Promise<PatchState>): Promise<PatchState> {
    const key = this.key(batch);
    let p = this.patches.get(key);
    if (!p) {
      p = capture();
      this.patches.set(key, p);
      p.catch(() => this.patches.delete(key));
    }
    return p;
  }
}

/** Host copies of one side's numbers; tensors are created in the caller's scope. */
async function readSide(model: Model, logits: Tensor, logprobs: Tensor, batch: ScoreBatch, metric: ScoreMetric | undefined, k: number): Promise<SideData> {
  const ops = model.ops;
  const top = ops.topk(logprobs, k);
  const out: SideData = { topIds: await i32(top.indices), topLp: await f32(top.values) };
  if (metric) out.metric = await f32(metric.value(ops, logits, batch));
  if (batch.cleanAnswer) out.clean = await f32(answerLogits(ops, logits, batch.cleanAnswer));
  if (batch.patchAnswer) out.patch = await f32(answerLogits(ops, logits, batch.patchAnswer));
  return out;
}

function view(model: Model, d: SideData, r: number, k: number): NextTokenView {
  const top: TopToken[] = [];
  for (let j = 0; j < k; j++) {
    const id = d.topIds[r * k + j]!;
    top.push({ id, token: model.tokenizer.idToToken(id) ?? `<${id}>`, logprob: d.topLp[r * k + j]! });
  }
  const v: Mutable<NextTokenView> = { top };
  if (d.metric) v.metric = d.metric[r]!;
  if (d.clean) v.cleanLogit = d.clean[r]!;
  if (d.patch) v.patchLogit = d.patch[r]!;
  if (d.clean && d.patch) v.logitDiff = d.clean[r]! - d.patch[r]!;
  return v;
}

/** [batch, vocab] logits of the last position, whatever rank the backend returns. */
function lastLogits(model: Model, logits: Tensor, batch: number): Tensor {
  const vocab = logits.shape[logits.shape.length - 1]!;
  return logits.shape.length === 2 ? logits : model.ops.reshape(logits, [batch, vocab]);
}

/**
 * The batch's prompts as token ids without pads (e.g. as reference prompts for ablate mean, which
 * averages over every token): one TokenBatch per prompt length, rows in order within each.
 */
export function cleanTokens(batch: ScoreBatch): TokenBatch[] {
  if (!batch.lengths) return [{ ids: batch.clean, batch: batch.size, seq: batch.seq }];
  const lengths = batch.lengths;
  return batchLengths(batch).map((seq) => {
    const rows = [...lengths.keys()].filter((r) => lengths[r] === seq);
    const ids = new Int32Array(rows.length * seq);
    rows.forEach((r, i) => ids.set(batch.clean.subarray(r * batch.seq, r * batch.seq + seq), i * seq));
    return { ids, batch: rows.length, seq };
  });
}

function patchTokens(batch: ScoreBatch, options: ScoreOptions): TokenBatch | undefined {
  if (options.patchPrompt) return options.patchPrompt;
  return batch.patch ? { ids: batch.patch, batch: batch.size, seq: batch.seq } : undefined;
}

/**
 * Scores one batch against every steering in `variants` (one unsteered forward, one steered
 * forward per variant). Returns per variant the prompt scores, indices starting at `offset`.
 * With a `baseline` (variants of one steering), the unsteered side and the patch capture are
 * taken from it, or made once and kept there.
 */
export async function compareBatch(model: Model, variants: readonly Steering[], batch: ScoreBatch, options: ScoreOptions = {},
  offset = 0, baseline?: ScoreBaseline): Promise<PromptScore[][]> {
  if (batch.lengths && variants.some((v) => v.dependsOnPromptLength)) return compareByLength(model, variants, batch, options, offset, baseline);
  const ops = model.ops;
  const k = Math.min(options.topK ?? 10, model.spec.dims.vocabSize);
  if (!Number.isInteger(k) || k < 1) throw new InputError(`topK must be a positive integer, got ${options.topK}`);
  const metric = options.metric ?? defaultScoreMetric(batch);
  const patchIds = patchTokens(batch, options);
  // Every row is checked at its own length, as it would be alone.
  for (const v of variants) for (const len of batchLengths(batch)) v.validate(len, len, patchIds, batch.size);
  const results: PromptScore[][] = [];
  await ops.scope(async () => {
    const tokens = model.tokens(batch.clean, batch.size, batch.seq);
    const cached = baseline?.beforeOf(batch, k, metric);
    let lpBefore: Tensor;
    let b: SideData;
    if (cached) {
      lpBefore = ops.tensor(cached.lp, cached.shape);
      b = cached.side;
    } else {
      const before = lastLogits(model, (await model.forward(tokens, { logits: nextTokenLogits(batch) })).logits!, batch.size);
      lpBefore = ops.logSoftmax(before);
      b = await readSide(model, before, lpBefore, batch, metric, k);
      baseline?.setBefore(batch, { lp: await f32(lpBefore), shape: lpBefore.shape, side: b, k, metric: metric?.name });
    }
    const pBefore = ops.exp(lpBefore);
    for (const steering of variants) {
      await ops.scope(async () => {
        const capture = () => steering.capturePatch(patchIds!);
        const patch = steering.needsPatch && patchIds ? await (baseline ? baseline.patch(batch, capture) : capture()) : undefined;
        const edits = steering.edits({ promptLength: batch.seq, patch });
        const after = lastLogits(model, (await model.forward(tokens, { edits, logits: nextTokenLogits(batch) })).logits!, batch.size);
        const lpAfter = ops.logSoftmax(after);
        const kl = await f32(ops.sum(ops.mul(pBefore, ops.sub(lpBefore, lpAfter)), -1));
        const a = await readSide(model, after, lpAfter, batch, metric, k);
        const out: PromptScore[] = [];
        for (let r = 0; r < batch.size; r++) {
          const vb = view(model, b, r, k), va = view(model, a, r, k);
          const s: Mutable<PromptScore> = { index: offset + r, before: vb, after: va, kl: kl[r]!, top1Changed: vb.top[0]!.id !== va.top[0]!.id };
          if (vb.logitDiff !== undefined && va.logitDiff !== undefined) s.flipped = (vb.logitDiff > 0) !== (va.logitDiff > 0);
          const targets = rowTargets(batch, r);
          if (targets) s.onTarget = targets.includes(va.top[0]!.id);
          if (batch.cleanAnswer) s.answerTop1Before = vb.top[0]!.id === batch.cleanAnswer[r];
          if (batch.exampleIndex) s.example = batch.exampleIndex[r]!;
          out.push(s);
        }
        results.push(out);
      });
    }
  });
  return results;
}

/** The rows of a right-padded batch whose prompts have `seq` tokens, as a pad-free batch. */
function rowsOfLength(batch: ScoreBatch, seq: number): { rows: number[]; batch: ScoreBatch } {
  const rows = [...batch.lengths!.keys()].filter((r) => batch.lengths![r] === seq);
  const take = (a: Int32Array, width: number) => {
    const out = new Int32Array(rows.length * width);
    rows.forEach((r, i) => out.set(a.subarray(r * batch.seq, r * batch.seq + width), i * width));
    return out;
  };
  const pick = (a: Int32Array) => Int32Array.from(rows, (r) => a[r]!);
  return {
    rows,
    batch: {
      size: rows.length, seq, clean: take(batch.clean, seq),
      ...(batch.patch ? { patch: take(batch.patch, seq) } : {}),
      ...(batch.cleanAnswer ? { cleanAnswer: pick(batch.cleanAnswer) } : {}),
      ...(batch.patchAnswer ? { patchAnswer: pick(batch.patchAnswer) } : {}),
      ...(batch.targets ? { targets: rows.map((r) => batch.targets![r]!) } : {}),
    },
  };
}

/**
 * compareBatch for a right-padded batch whose steering depends on the prompt length: one pad-free
 * forward per prompt length, the scores put back in the batch's row order.
 */
async function compareByLength(model: Model, variants: readonly Steering[], batch: ScoreBatch, options: ScoreOptions, offset: number,
  baseline: ScoreBaseline | undefined): Promise<PromptScore[][]> {
  const out: PromptScore[][] = variants.map(() => new Array<PromptScore>(batch.size));
  for (const seq of batchLengths(batch)) {
    const group = rowsOfLength(batch, seq);
    const scores = await compareBatch(model, variants, group.batch, options, 0, baseline?.forLength(batch, seq));
    scores.forEach((list, v) => list.forEach((sc, i) => {
      const r = group.rows[i]!;
      const { example: _, ...rest } = sc;
      out[v]![r] = { ...rest, index: offset + r, ...(batch.exampleIndex ? { example: batch.exampleIndex[r]! } : {}) };
    }));
  }
  return out;
}

/** The row's targets: ScoreBatch.targets, else its patch answer; undefined when it has neither. */
function rowTargets(batch: ScoreBatch, r: number): readonly number[] | undefined {
  if (batch.targets) {
    if (batch.targets.length !== batch.size) throw new InputError(`${batch.targets.length} target lists for ${batch.size} prompts`);
    return batch.targets[r]!.length ? batch.targets[r] : undefined;
  }
  return batch.patchAnswer ? [batch.patchAnswer[r]!] : undefined;
}

export function summarize(prompts: readonly PromptScore[], metricName?: string): ScoreSummary {
  const n = prompts.length;
  const mean = (f: (p: PromptScore) => number | undefined): number | undefined => {
    const v = prompts.map(f);
    return n > 0 && v.every((x) => x !== undefined) ? v.reduce((s, x) => s + x!, 0) / n : undefined;
  };
  const s: Mutable<ScoreSummary> = {
    prompts: n,
    klMean: mean((p) => p.kl) ?? 0,
    top1ChangeRate: mean((p) => (p.top1Changed ? 1 : 0)) ?? 0,
  };
  const mb = mean((p) => p.before.metric), ma = mean((p) => p.after.metric);
  if (mb !== undefined && ma !== undefined) { s.metricName = metricName; s.metricBefore = mb; s.metricAfter = ma; }
  const db = mean((p) => p.before.logitDiff), da = mean((p) => p.after.logitDiff);
  if (db !== undefined && da !== undefined) { s.logitDiffBefore = db; s.logitDiffAfter = da; }
  const rate = (f: (p: PromptScore) => boolean | undefined) => mean((p) => (f(p) === undefined ? undefined : f(p) ? 1 : 0));
  const fr = rate((p) => p.flipped), on = rate((p) => p.onTarget), top = rate((p) => p.answerTop1Before);
  if (fr !== undefined) s.flipRate = fr;
  if (on !== undefined) s.onTargetRate = on;
  if (top !== undefined) s.answerTop1RateBefore = top;
  return s;
}

/** Scores every batch before and after `steering`. */
export async function score(model: Model, steering: Steering, batches: readonly ScoreBatch[], options: ScoreOptions = {}): Promise<ScoreResult> {
  if (batches.length === 0) throw new InputError('no prompts to score', 'give --prompt TEXT or --data FILE');
  const prompts: PromptScore[] = [];
  for (const [i, batch] of batches.entries()) {
    const [scores] = await compareBatch(model, [steering], batch, options, prompts.length);
    prompts.push(...scores!);
    options.onProgress?.({ phase: 'score', done: i + 1, total: batches.length });
  }
  return { prompts, summary: summarize(prompts, (options.metric ?? defaultScoreMetric(batches[0]!))?.name) };
}
