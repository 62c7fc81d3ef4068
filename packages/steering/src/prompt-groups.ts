// How batched generation splits its prompts into forwards. Scoring runs prompts of mixed lengths
// right-padded (a prompt token never attends to the pads after it), but a generated token would
// attend to the pads of shorter prompts (the backends' attention is causal only, with no mask, and
// one positionOffset places every row), so only prompts of one token length share a generation
// forward. Each group is such a set, at most `batchSize` rows, run to the end as one batch with one
// KV cache; groups run one after another. Exact by construction: every row sees what it would see alone.

import { InputError } from '@sfc/core';

export interface PromptGroup {
  /** The prompt length (tokens) every row of the group shares. */
  readonly length: number;
  /** Indices into the prompt list, ascending. */
  readonly rows: readonly number[];
}

/** Groups by length (shortest first), each split into chunks of at most `batchSize` rows. */
export function groupByLength(lengths: readonly number[], batchSize = Infinity): PromptGroup[] {
  if (batchSize !== Infinity && (!Number.isInteger(batchSize) || batchSize < 1)) {
    throw new InputError(`the generation batch size must be a positive integer, got ${batchSize}`, 'use e.g. --batch-size 16');
  }
  const byLength = new Map<number, number[]>();
  lengths.forEach((n, i) => {
    const rows = byLength.get(n);
    if (rows) rows.push(i);
    else byLength.set(n, [i]);
  });
  const groups: PromptGroup[] = [];
  for (const length of [...byLength.keys()].sort((a, b) => a - b)) {
    const rows = byLength.get(length)!;
    for (let at = 0; at < rows.length; at += batchSize) groups.push({ length, rows: rows.slice(at, at + batchSize) });
  }
  return groups;
}
