// Agreement accuracy of a model on a feature-circuits dataset, independent of how the model
// is run: the caller supplies last-position logits for a batch of equal-length prompts.

import type { Example } from './grammar.js';

export interface AgreementScore {
  readonly examples: number;
  /** Prompts (clean and patch of every example) whose correct verb outscores the wrong one. */
  readonly accuracy: number;
  /** Accuracy on the clean prompts alone. */
  readonly cleanAccuracy: number;
  /** Mean of logit[correct] − logit[wrong] over all prompts. */
  readonly meanMargin: number;
  readonly minMargin: number;
}

/** `lastLogits(prompts)` returns one logit row per prompt; `id` maps an answer (" is") to its token id. */
export async function scoreAgreement(examples: readonly Example[],
  lastLogits: (prompts: string[]) => Promise<Float32Array[]>, id: (answer: string) => number, batch = 256): Promise<AgreementScore> {
  let right = 0, cleanRight = 0, sum = 0, min = Infinity;
  for (let s = 0; s < examples.length; s += batch) {
    const part = examples.slice(s, s + batch);
    const rows = await lastLogits([...part.map((e) => e.clean_prefix), ...part.map((e) => e.patch_prefix)]);
    part.forEach((e, i) => {
      const c = id(e.clean_answer), p = id(e.patch_answer);
      const mClean = rows[i]![c]! - rows[i]![p]!;
      const mPatch = rows[part.length + i]![p]! - rows[part.length + i]![c]!;
      for (const m of [mClean, mPatch]) { if (m > 0) right++; sum += m; min = Math.min(min, m); }
      if (mClean > 0) cleanRight++;
    });
  }
  const n = examples.length;
  return { examples: n, accuracy: right / (2 * n), cleanAccuracy: cleanRight / n, meanMargin: sum / (2 * n), minMargin: min };
}
