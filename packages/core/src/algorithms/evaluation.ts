// Circuit evaluation (feature-circuits' ablation.py): for each node threshold, the circuit C is
// every node of the ablated submodules with |aggregated effect| > threshold; with metric m =
// logit[clean] − logit[patch] averaged over examples,
//   faithfulness = (m̄(C) − m̄(∅)) / (m̄(M) − m̄(∅)),  completeness = (m̄(M∖C) − m̄(∅)) / (m̄(M) − m̄(∅)),
// where M is the unmodified model, ∅ the empty circuit (every node ablated; errors per the error
// handling) and M∖C the complement (the circuit's nodes ablated, everything else kept).

import { InputError } from '../errors.js';
import type { Model } from '../model/model.js';
import { parseSubmoduleName } from '../submodule.js';
import type { Tensor, TensorOps } from '../tensor.js';
import { countPrompts, type PromptBatch } from '../data/batches.js';
import {
  ablatedMetric, meanAblationStates, meanStatesFor, resampleAblationStates, resampleDraws, zeroAblationStates,
  type Ablation, type ErrorHandling, type KeepMask,
} from './ablation.js';
import type { NodeEffects } from './attribution.js';
import { cancelCheck } from './cancel.js';
import { cleanMinusPatch, linearLogitMetric, type Metric } from './metrics.js';
import type { ProgressCallback } from './progress.js';
import { checkBatches, promptLengths, resolveDictionaries, type DictionarySet, type ResolvedSubmodule } from './setup.js';
import type { SparseAct } from './sparse-act.js';

export interface EvaluateOptions {
  /** Aggregated node effects per submodule (an effects file, or a circuit's nodes with 0 elsewhere). */
  readonly effects: ReadonlyMap<string, NodeEffects>;
  /** Node thresholds to evaluate. */
  readonly thresholds: readonly number[];
  /** Default mean. */
  readonly ablation?: Ablation;
  /** Default `default`. */
  readonly handleErrors?: ErrorHandling;
  /** Layers below this are not ablated; default −1 (every layer). */
  readonly startLayer?: number;
  /**
   * Ablate `embed` too (when startLayer is −1). Default false, as feature-circuits' ablation.py,
   * which loads its submodules with `include_embed=False` (docs/concepts.md, “Circuits,
   * faithfulness, completeness”).
   */
  readonly includeEmbed?: boolean;
  /** Default logit[clean] − logit[patch] (paired) or logit[answer] (single prompts). */
  readonly metric?: Metric;
  readonly onProgress?: ProgressCallback;
  /**
   * Run the ablated forwards only on these batch indices (default: all) — one shard of a run
   * (circuit/partial.ts). Ablation values (mean, resample draws) still come from every batch, so
   * each selected batch computes what it computes in the full run; numExamples and the means are
   * over the selected batches.
   */
  readonly onlyBatches?: readonly number[];
  /**
   * Aborting stops the run at the next unit of work (a batch of the mean-ablation pass, a batch, one
   * ablated forward per threshold) with CancelledError; every tensor the run made is disposed.
   */
  readonly signal?: AbortSignal;
}

export interface EvaluationRow {
  readonly threshold: number;
  /** Features and error nodes in the circuit (over the ablated submodules). */
  readonly nodes: number;
  /** null when m̄(M) = m̄(∅) (undefined ratio). */
  readonly faithfulness: number | null;
  readonly completeness: number | null;
  readonly mFull: number;
  readonly mEmpty: number;
  readonly mCircuit: number;
  readonly mComplement: number;
}

export interface EvaluationResult {
  readonly rows: EvaluationRow[];
  readonly numExamples: number;
  readonly ablation: Ablation['kind'];
  readonly handleErrors: ErrorHandling;
  readonly startLayer: number;
  /** The submodules that were ablated. */
  readonly submodules: readonly string[];
  readonly metric: string;
}

/** logit[last, answer]: the evaluation metric for single prompts. */
export function answerLogit(): Metric {
  return linearLogitMetric('answer-logit', [1], false, (b) => b.cleanAnswer);
}

interface Masks {
  readonly act: Float32Array;
  readonly res: Float32Array;
  readonly count: number;
}

/** 1 where |effect| > threshold. */
function thresholdMask(e: NodeEffects, threshold: number): Masks {
  const act = Float32Array.from(e.features, (v) => (Math.abs(v) > threshold ? 1 : 0));
  const res = Float32Array.from(e.error, (v) => (Math.abs(v) > threshold ? 1 : 0));
  return { act, res, count: act.reduce((a, b) => a + b, 0) + res.reduce((a, b) => a + b, 0) };
}

function keepTensors(ops: TensorOps, e: NodeEffects, m: Masks, complement: boolean, handle: ErrorHandling): KeepMask {
  const flip = (a: Float32Array) => (complement ? a.map((v) => 1 - v) : a);
  let res = flip(m.res);
  if (handle === 'keep') res = res.map(() => 1);
  if (handle === 'remove') res = res.map(() => 0);
  const act = flip(m.act);
  const all = (a: Float32Array, v: number) => a.every((x) => x === v);
  const keeps = all(act, 0) && all(res, 0) ? 'none' as const : all(act, 1) && all(res, 1) ? 'all' as const : undefined;
  return {
    ...(e.positions === null
      ? { act: ops.tensor(act, [e.dSae]), res: ops.tensor(res, [1]) }
      : { act: ops.tensor(act, [e.positions, e.dSae]), res: ops.tensor(res, [e.positions, 1]) }),
    ...(keeps ? { keeps } : {}),
  };
}

export function ratio(a: number, empty: number, full: number): number | null {
  const den = full - empty;
  if (den === 0) return null;
  return (a - empty) / den;
}

/** Faithfulness and completeness of the circuits at each threshold. */
export async function evaluate(model: Model, dictionaries: DictionarySet, batches: readonly PromptBatch[], options: EvaluateOptions): Promise<EvaluationResult> {
  const ops = model.ops;
  const ablation = options.ablation ?? { kind: 'mean' };
  if (!['mean', 'zero', 'resample'].includes(ablation.kind)) throw new InputError(`unknown ablation ${JSON.stringify(ablation.kind)}`, 'use mean, zero or resample');
  const handle = options.handleErrors ?? 'default';
  if (!['default', 'keep', 'remove'].includes(handle)) throw new InputError(`unknown error handling ${JSON.stringify(handle)}`, 'use default, keep or remove');
  const startLayer = options.startLayer ?? -1;
  if (!Number.isInteger(startLayer)) throw new InputError(`start layer must be an integer, got ${startLayer}`);
  if (options.thresholds.length === 0) throw new InputError('no thresholds to evaluate', 'pass --thresholds t1,t2,…');
  for (const t of options.thresholds) if (!(Number.isFinite(t) && t >= 0)) throw new InputError(`threshold must be a number ≥ 0, got ${t}`);

  const names = [...options.effects.keys()].map((k) => model.submodule(k).name)
    .filter((n) => (n === 'embed' ? options.includeEmbed === true : true) && parseSubmoduleName(n)!.layer >= startLayer);
  if (names.length === 0) throw new InputError(`no submodules at or above layer ${startLayer} in the circuit`, options.includeEmbed ? 'lower --start-layer' : 'lower --start-layer, or pass --include-embed to ablate embed');
  const subs = resolveDictionaries(model, dictionaries, names);
  const effects = new Map([...options.effects].map(([k, v]) => [model.submodule(k).name, v]));
  checkBatches(batches, { aggregation: 'sum', metric: options.metric });
  const paired = batches[0]!.patch !== undefined;
  const metric = options.metric ?? (paired ? cleanMinusPatch() : answerLogit());
  for (const s of subs) {
    const e = effects.get(s.name)!;
    if (e.dSae !== s.dict.dSae) {
      throw new InputError(`the circuit has ${e.dSae} features for ${s.name}, its dictionary ${s.dict.dSae}`, 'evaluate with the dictionaries the circuit was discovered with');
    }
    const lens = promptLengths(batches);
    if (e.positions !== null && (lens.length > 1 || lens[0] !== e.positions)) {
      throw new InputError(`the circuit keeps ${e.positions} positions (aggregation none), but the examples have ${lens.join(', ')} tokens`,
        'evaluate on examples of the same length, or use a circuit with aggregation sum');
    }
  }
  const only = options.onlyBatches ? new Set(options.onlyBatches) : undefined;
  const selected = only ? batches.filter((_, bi) => only.has(bi)) : batches;
  if (selected.length === 0) throw new InputError('no batches selected to evaluate', 'select at least one batch index');
  const N = countPrompts(selected);
  const masks = options.thresholds.map((t) => new Map(subs.map((s) => [s.name, thresholdMask(effects.get(s.name)!, t)])));
  const empty = new Map(subs.map((s) => {
    const e = effects.get(s.name)!;
    return [s.name, { act: new Float32Array(e.features.length), res: new Float32Array(e.error.length), count: 0 }];
  }));
  const sums = { full: 0, empty: 0, circuit: options.thresholds.map(() => 0), complement: options.thresholds.map(() => 0) };
  const totalRuns = selected.length * (2 + 2 * options.thresholds.length);
  let runs = 0;
  const tick = () => options.onProgress?.({ stage: 'ablation', done: ++runs, total: totalRuns });
  const draws = ablation.kind === 'resample' ? resampleDraws(batches, ablation.seed ?? 12) : undefined;
  const cancel = cancelCheck(options.signal, 'evaluate');

  await ops.scope(async () => {
    const shared = ablation.kind === 'mean' ? await meanAblationStates(model, subs, batches, cancel)
      : ablation.kind === 'zero' ? zeroAblationStates(ops, subs) : undefined;
    for (const [bi, batch] of batches.entries()) {
      if (only && !only.has(bi)) continue;
      await cancel();
      await ops.scope(async () => {
        const bound = metric.bind(ops, batch);
        const selection = bound.selection();
        const tokens = model.tokens(batch.clean, batch.size, batch.seq);
        const states: ReadonlyMap<string, SparseAct> = shared ? meanStatesFor(ops, shared, batch.seq) : await resampleAblationStates(model, subs, batches, draws![bi]!);
        const total = async (t: Tensor): Promise<number> => {
          const v = await t.data();
          let acc = 0;
          for (let i = 0; i < v.length; i++) acc += v[i]!;
          return acc;
        };
        const full = await model.forward(tokens, { logits: selection });
        sums.full += await total(bound.value(full.logits!));
        tick();
        const run = async (m: ReadonlyMap<string, Masks>, complement: boolean): Promise<number> => ops.scope(async () => {
          await cancel();
          const keep = new Map(subs.map((s) => [s.name, keepTensors(ops, effects.get(s.name)!, m.get(s.name)!, complement, handle)]));
          const v = await ablatedMetric(model, subs, tokens, selection, (l) => bound.value(l), states, keep);
          return total(v);
        });
        sums.empty += await run(empty, false);
        tick();
        for (let t = 0; t < masks.length; t++) {
          sums.circuit[t]! += await run(masks[t]!, false);
          tick();
          sums.complement[t]! += await run(masks[t]!, true);
          tick();
        }
      });
    }
  });

  const mFull = sums.full / N, mEmpty = sums.empty / N;
  const rows = options.thresholds.map((threshold, t): EvaluationRow => {
    const mCircuit = sums.circuit[t]! / N, mComplement = sums.complement[t]! / N;
    const nodes = [...masks[t]!.values()].reduce((n, m) => n + m.count, 0);
    return { threshold, nodes, faithfulness: ratio(mCircuit, mEmpty, mFull), completeness: ratio(mComplement, mEmpty, mFull), mFull, mEmpty, mCircuit, mComplement };
  });
  return { rows, numExamples: N, ablation: ablation.kind, handleErrors: handle, startLayer, submodules: subs.map((s: ResolvedSubmodule) => s.name), metric: metric.name };
}
