// Prompts of different lengths in one batch, through a left-padded KV cache
// (capabilities.paddedKvCache, docs/concepts.md "Prompts of different lengths"): row r is padded on
// the left by (longest − its length) slots, so every row's next token sits in the same column.
// The backend masks the pad slots and gives each row its own positions; this module places the
// rows' tokens into slots and runs each row's edits (steering at the row's own prompt positions)
// on the row's real slots only, so a row is steered exactly as when it runs alone.

import { InputError, type Edit, type EditCall, type Model, type Tensor } from '@sfc/core';
import type { PromptGroup } from './prompt-groups.js';

/** What pad slots hold: any valid id (no query attends to them). */
const PAD_ID = 0;

/**
 * Whether a generation runs every length in one padded batch: KV-cache decoding on a backend whose
 * caches take left padding. Otherwise prompts are grouped by length (prompt-groups.ts).
 */
export function usesPaddedBatches(model: Model, decoding: 'kv-cache' | 'recompute'): boolean {
  return decoding === 'kv-cache' && model.supportsPaddedKvCache;
}

/**
 * The prompts in chunks of at most `batchSize` rows, each one padded batch: shortest first (a chunk
 * pads least when lengths are close), `length` the longest prompt of the chunk.
 */
export function paddedGroups(lengths: readonly number[], batchSize = Infinity): PromptGroup[] {
  if (batchSize !== Infinity && (!Number.isInteger(batchSize) || batchSize < 1)) {
    throw new InputError(`the generation batch size must be a positive integer, got ${batchSize}`, 'use e.g. --batch-size 16');
  }
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const groups: PromptGroup[] = [];
  for (let at = 0; at < order.length; at += batchSize) {
    const rows = order.slice(at, at + batchSize).sort((a, b) => a - b);
    groups.push({ length: Math.max(...rows.map((r) => lengths[r]!)), rows });
  }
  return groups;
}

/**
 * Token ids [rows, slots − from] of slots from…slots−1, where row r's sequence `seqs[r]` sits
 * after `padding[r]` pad slots (every row spans `slots` = padding[r] + seqs[r].length slots).
 */
export function slotFeed(seqs: readonly (readonly number[])[], padding: readonly number[], from: number): { ids: Int32Array; seq: number } {
  const slots = padding[0]! + seqs[0]!.length;
  const seq = slots - from;
  const ids = new Int32Array(seqs.length * seq).fill(PAD_ID);
  seqs.forEach((s, r) => {
    const first = Math.max(from, padding[r]!); // first real slot in the window
    ids.set(s.slice(first - padding[r]!), r * seq + (first - from));
  });
  return { ids, seq };
}

/**
 * One edit per submodule for a padded batch from each row's own edits: row r's real slots go
 * through `rowEdits[r]` with the positionOffset they have in the row alone; pad slots pass
 * unchanged. Needs the padded cache's EditCall.padding.
 */
export function paddedRowEdits(model: Model, rowEdits: readonly ReadonlyMap<string, Edit>[]): Map<string, Edit> {
  const ops = model.ops;
  const edits = new Map<string, Edit>();
  for (const name of rowEdits[0]?.keys() ?? []) {
    edits.set(name, (x: Tensor, call: EditCall) => {
      const [b, s, d] = x.shape as [number, number, number];
      const padding = call.padding ?? new Array<number>(b).fill(0);
      const rows = rowEdits.map((row, r) => {
        const start = Math.min(s, Math.max(0, padding[r]! - call.positionOffset)); // first real slot of the window
        const whole = ops.slice(x, [r, 0, 0], [1, s, d]);
        if (start === s) return whole;
        const real = start === 0 ? whole : ops.slice(whole, [0, start, 0], [1, s - start, d]);
        const edited = row.get(name)!(real, { positionOffset: call.positionOffset + start - padding[r]! });
        return start === 0 ? edited : ops.concat([ops.slice(whole, [0, 0, 0], [1, start, d]), edited], 1);
      });
      return rows.length === 1 ? rows[0]! : ops.concat(rows, 0);
    });
  }
  return edits;
}
