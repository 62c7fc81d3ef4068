// Learning-rate and sparsity-coefficient schedules of the April-update recipe, as
// dictionary_learning's get_lr_schedule / get_sparsity_warmup_fn define them: linear lr warmup,
// constant, then linear decay to 0 from `decayStart`; λ ramped linearly from 0 over its warmup.

import { InputError } from '@sfc/core';

export interface Schedule {
  readonly steps: number;
  readonly warmupSteps: number;
  readonly sparsityWarmupSteps: number;
  /** Step at which the lr starts decaying linearly to 0 at `steps`; undefined = no decay. */
  readonly decayStart: number | undefined;
}

/** Multiplier of the base lr at `step` (0-based). */
export function lrFactor(s: Schedule, step: number): number {
  if (step < s.warmupSteps) return (step + 1) / s.warmupSteps; // step+1: the first update is not lr 0
  if (s.decayStart !== undefined && step >= s.decayStart) return (s.steps - step) / (s.steps - s.decayStart);
  return 1;
}

/** Multiplier of λ at `step`. */
export function sparsityFactor(s: Schedule, step: number): number {
  return s.sparsityWarmupSteps > 0 ? Math.min(1, step / s.sparsityWarmupSteps) : 1;
}

/** Defaults: 5 % of the steps of lr and λ warmup (lr warmup at most 1000), decay over the last 20 %. */
export function makeSchedule(steps: number, options: { warmupSteps?: number; sparsityWarmupSteps?: number; decayStart?: number | null } = {}): Schedule {
  if (!Number.isInteger(steps) || steps < 1) throw new InputError(`steps must be a positive integer, got ${steps}`);
  const warmupSteps = options.warmupSteps ?? Math.min(1000, Math.max(1, Math.floor(steps / 20)));
  const sparsityWarmupSteps = options.sparsityWarmupSteps ?? Math.floor(steps / 20);
  const decayStart = options.decayStart === null ? undefined : options.decayStart ?? Math.floor(0.8 * steps);
  if (warmupSteps < 1 || warmupSteps > steps) throw new InputError(`warmup steps must be in [1, ${steps}], got ${warmupSteps}`);
  if (sparsityWarmupSteps < 0 || sparsityWarmupSteps > steps) throw new InputError(`sparsity warmup steps must be in [0, ${steps}], got ${sparsityWarmupSteps}`);
  const decay = decayStart !== undefined && decayStart < steps && decayStart >= warmupSteps ? decayStart : undefined;
  return { steps, warmupSteps, sparsityWarmupSteps, decayStart: decay };
}
