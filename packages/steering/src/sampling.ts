// Choosing the next token from one row of logits: greedy (argmax, lowest id on ties) or sampled
// with temperature and nucleus (top-p) truncation from a seeded PRNG, so a seed reproduces a
// generation exactly and the steered and unsteered runs draw the same random numbers. In a batch
// every prompt has its own stream (rowSeed).

import { InputError } from '@sfc/core';

export type Sampling =
  | { readonly kind: 'greedy' }
  | { readonly kind: 'sample'; readonly temperature: number; readonly topP?: number; readonly seed: number };

export const GREEDY: Sampling = { kind: 'greedy' };

/** Mulberry32: a small, fast 32-bit PRNG; uniform doubles in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = (Math.trunc(seed) >>> 0) ^ 0x6d2b79f5;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The sampling seed of prompt `index` in a list generated with `seed`: prompt 0 keeps `seed` (one
 * prompt samples exactly as before), the others get their own 32-bit seeds (index × the golden
 * ratio, xored in), so prompts draw independent streams. A prompt's stream depends only on
 * (seed, index), never on which other prompts share its forward.
 */
export function rowSeed(seed: number, index: number): number {
  if (!Number.isInteger(index) || index < 0) throw new InputError(`prompt index must be a non-negative integer, got ${index}`);
  if (index === 0) return seed;
  return ((Math.trunc(seed) >>> 0) ^ Math.imul(index, 0x9e3779b9)) >>> 0;
}

export function checkSampling(s: Sampling): void {
  if (s.kind === 'greedy') return;
  if (!(s.temperature > 0) || !Number.isFinite(s.temperature)) {
    throw new InputError(`temperature must be a positive number, got ${s.temperature}`, 'use --temperature 0.7 (or greedy decoding without --temperature)');
  }
  if (s.topP !== undefined && !(s.topP > 0 && s.topP <= 1)) throw new InputError(`top-p must be in (0, 1], got ${s.topP}`, 'use e.g. --top-p 0.9');
  if (!Number.isSafeInteger(s.seed)) throw new InputError(`the seed must be an integer, got ${s.seed}`);
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/** The next token id from `logits` [vocab]; `random` is consumed once per sampled token. */
export function chooseToken(logits: ArrayLike<number>, sampling: Sampling, random: () => number): number {
  if (sampling.kind === 'greedy') return argmax(logits);
  const n = logits.length;
  const t = sampling.temperature;
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[i]! / t);
  const p = new Float64Array(n);
  let z = 0;
  for (let i = 0; i < n; i++) { p[i] = Math.exp(logits[i]! / t - max); z += p[i]!; }
  // Most likely first (lowest id first among equals) so the nucleus and the draw are well defined.
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => p[y]! - p[x]! || x - y);
  const topP = sampling.topP ?? 1;
  let kept = 0, mass = 0;
  while (kept < n && (kept === 0 || mass / z < topP)) mass += p[order[kept++]!]!;
  let u = random() * mass;
  for (let j = 0; j < kept; j++) {
    u -= p[order[j]!]!;
    if (u < 0) return order[j]!;
  }
  return order[kept - 1]!;
}
