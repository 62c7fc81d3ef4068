// Strength sweeps: one steering re-run at a range of strengths (`-4:4:9` → nine values from −4
// to 4), giving per strength the metric, logit difference, KL and flip rate over the prompts.
// The unsteered forward of each batch is shared by every strength.

import { InputError, type Model } from '@sfc/core';
import { compareBatch, summarize, defaultScoreMetric, type PromptScore, type ScoreBaseline, type ScoreBatch, type ScoreOptions, type ScoreSummary } from './scoring.js';
import type { Steering } from './steering.js';

export interface SweepRow extends ScoreSummary {
  readonly strength: number;
}

export interface SweepResult {
  readonly rows: readonly SweepRow[];
}

/** Rounds away float noise of the linspace (0.30000000000000004 → 0.3). */
function tidyNumber(x: number): number {
  const r = Number(x.toPrecision(12));
  return Object.is(r, -0) ? 0 : r;
}

const RANGE_HINT = 'write START:STOP:COUNT (COUNT evenly spaced values, ends included, e.g. -4:4:9) or a list like 0,2,4,8';

/** `START:STOP:COUNT` (inclusive linspace, as numpy.linspace) or a comma-separated list. */
export function parseStrengthRange(spec: string): number[] {
  const s = spec.trim();
  const num = (t: string): number => {
    const v = Number(t.trim());
    if (t.trim() === '' || !Number.isFinite(v)) throw new InputError(`sweep: '${t}' is not a number`, RANGE_HINT);
    return v;
  };
  if (s.includes(':')) {
    const parts = s.split(':');
    if (parts.length !== 3) throw new InputError(`sweep: '${spec}' is not a range`, RANGE_HINT);
    const [start, stop] = [num(parts[0]!), num(parts[1]!)];
    const count = num(parts[2]!);
    if (!Number.isInteger(count) || count < 1) throw new InputError(`sweep: COUNT must be a positive integer, got ${parts[2]}`, RANGE_HINT);
    if (count === 1) {
      if (start !== stop) throw new InputError(`sweep: one value cannot span ${start}..${stop}`, RANGE_HINT);
      return [start];
    }
    if (count > 1000) throw new InputError(`sweep: ${count} strengths is too many`, 'use at most 1000');
    return Array.from({ length: count }, (_, i) => tidyNumber(start + ((stop - start) * i) / (count - 1)));
  }
  const list = s.split(',').map(num);
  if (list.length === 0) throw new InputError('sweep: no strengths', RANGE_HINT);
  return list;
}

/**
 * Scores `batches` with `steering.withStrength(s)` for every strength s (one unsteered forward and
 * patch capture per batch, shared by the strengths; none when `baseline` already holds them).
 */
export async function sweep(model: Model, steering: Steering, strengths: readonly number[], batches: readonly ScoreBatch[],
  options: ScoreOptions = {}, baseline?: ScoreBaseline): Promise<SweepResult> {
  if (strengths.length === 0) throw new InputError('sweep: no strengths given');
  if (batches.length === 0) throw new InputError('no prompts to score', 'give --prompt TEXT or --data FILE');
  const variants = strengths.map((s) => steering.withStrength(s));
  const perVariant: PromptScore[][] = variants.map(() => []);
  let offset = 0;
  for (const [i, batch] of batches.entries()) {
    const scores = await compareBatch(model, variants, batch, options, offset, baseline);
    scores.forEach((s, v) => perVariant[v]!.push(...s));
    offset += batch.size;
    options.onProgress?.({ phase: 'score', done: i + 1, total: batches.length });
  }
  const metricName = (options.metric ?? defaultScoreMetric(batches[0]!))?.name;
  return { rows: strengths.map((strength, v) => ({ strength, ...summarize(perVariant[v]!, metricName) })) };
}
