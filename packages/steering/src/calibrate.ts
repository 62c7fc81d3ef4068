// Calibration: the steering strength that reaches a target on-target rate with the smallest
// mean KL(before ‖ after). A strength grid is scored first (one unsteered forward and patch
// capture per batch, kept for every later step: ScoreBaseline), then each boundary between a grid strength below the target and a
// neighbour at or above it is bisected. Strengths past the boundary reach the target too but
// move the whole distribution further (KL grows with strength), so the best point sits at the
// boundary. When no strength reaches the target, the result says so and carries the best
// measured figures (highest on-target rate, then smallest KL) — never an extrapolation.

import { InputError, type Model } from '@sfc/core';
import { type OpKind } from './intervention.js';
import { ScoreBaseline, type ScoreBatch, type ScoreOptions } from './scoring.js';
import type { Steering } from './steering.js';
import { sweep, type SweepRow } from './sweep.js';

export const DEFAULT_TARGET_RATE = 0.9;

/** Default strength grids per op (clamp and add values depend on the features' scale: give them). */
export const DEFAULT_CALIBRATION_STRENGTHS: Partial<Record<OpKind, readonly number[]>> = {
  scale: [-8, -4, -2, -1, -0.5, 0, 0.5, 2, 4, 8],
  patch: [0.25, 0.5, 0.75, 1, 1.25, 1.5],
};

export interface CalibrateOptions extends ScoreOptions {
  /** On-target rate to reach, in (0, 1] (default 0.9). */
  readonly targetRate?: number;
  /** The grid searched first (default DEFAULT_CALIBRATION_STRENGTHS of the steering's op). */
  readonly strengths?: readonly number[];
  /** Bisection steps per boundary (default 6). */
  readonly refine?: number;
}

export interface Calibration {
  readonly targetRate: number;
  /** Some strength reached the target rate. */
  readonly reached: boolean;
  /** The chosen row: smallest KL among those reaching the target, else the best measured. */
  readonly best: SweepRow;
  /** Every strength scored, by strength. */
  readonly tried: readonly SweepRow[];
}

/** Rows reaching `targetRate` → the one of smallest KL; none → highest on-target rate, then smallest KL. */
export function chooseStrength(rows: readonly SweepRow[], targetRate: number): { readonly reached: boolean; readonly best: SweepRow } {
  if (rows.length === 0) throw new InputError('no strengths were scored');
  if (rows.some((r) => r.onTargetRate === undefined)) {
    throw new InputError('calibration needs a target per prompt', 'use paired data (its patch answers are the targets), or name the target tokens (--target TOKEN)');
  }
  const passing = rows.filter((r) => r.onTargetRate! >= targetRate);
  const byKl = (a: SweepRow, b: SweepRow) => a.klMean - b.klMean || Math.abs(a.strength) - Math.abs(b.strength);
  if (passing.length) return { reached: true, best: [...passing].sort(byKl)[0]! };
  return { reached: false, best: [...rows].sort((a, b) => b.onTargetRate! - a.onTargetRate! || byKl(a, b))[0]! };
}

function opKind(steering: Steering): OpKind {
  const kinds = [...new Set(steering.interventions.map((iv) => iv.op.kind).filter((k) => k !== 'ablate'))];
  if (kinds.length !== 1) throw new InputError(`calibration varies one op's strength; these interventions have ${kinds.length ? kinds.join(', ') : 'none with a strength'}`, 'calibrate scale, clamp, add or patch, one op at a time');
  return kinds[0]!;
}

/** Searches the strength of `steering`'s op (scale, clamp, add or patch) as described above. */
export async function calibrate(model: Model, steering: Steering, batches: readonly ScoreBatch[], options: CalibrateOptions = {}): Promise<Calibration> {
  const targetRate = options.targetRate ?? DEFAULT_TARGET_RATE;
  if (!(targetRate > 0 && targetRate <= 1)) throw new InputError(`the target on-target rate must be in (0, 1], got ${targetRate}`);
  const kind = opKind(steering);
  const grid = options.strengths ?? DEFAULT_CALIBRATION_STRENGTHS[kind];
  if (!grid || grid.length === 0) {
    throw new InputError(`calibrating ${kind} needs strengths to search: its values depend on the features' activations`, 'give a grid, e.g. --sweep -50:50:11');
  }
  const refine = options.refine ?? 6;
  if (!Number.isInteger(refine) || refine < 0) throw new InputError(`refine must be an integer ≥ 0, got ${refine}`);
  const rows = new Map<number, SweepRow>();
  // Every step scores the same batches: their unsteered side and patch capture are made once.
  const baseline = ScoreBaseline.create();
  const run = async (strengths: readonly number[]) => {
    const fresh = [...new Set(strengths)].filter((s) => !rows.has(s));
    if (fresh.length) for (const r of (await sweep(model, steering, fresh, batches, options, baseline)).rows) rows.set(r.strength, r);
  };
  await run(grid);
  const passes = (s: number) => rows.get(s)!.onTargetRate! >= targetRate;
  chooseStrength([...rows.values()], targetRate); // fails early without targets
  const sorted = [...rows.keys()].sort((a, b) => a - b);
  // [failing, passing] strength pairs that are neighbours on the grid.
  let bounds: [number, number][] = [];
  for (let i = 0; i + 1 < sorted.length; i++) {
    const [a, b] = [sorted[i]!, sorted[i + 1]!];
    if (passes(a) !== passes(b)) bounds.push(passes(a) ? [b, a] : [a, b]);
  }
  for (let step = 0; step < refine && bounds.length; step++) {
    const mids = bounds.map(([f, p]) => tidy((f + p) / 2));
    await run(mids);
    bounds = bounds.map(([f, p], i) => (passes(mids[i]!) ? [f, mids[i]!] : [mids[i]!, p]));
  }
  const tried = [...rows.values()].sort((a, b) => a.strength - b.strength);
  return { targetRate, ...chooseStrength(tried, targetRate), tried };
}

function tidy(x: number): number {
  return Number(x.toPrecision(10));
}
