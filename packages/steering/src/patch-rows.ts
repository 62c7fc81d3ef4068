// Assembling the patch values of a batch from rows of captured patch states: batched generation
// captures each prompt's patch prompt (those of one length in one forward) and stacks the rows a
// generation batch needs. Patch prompts may differ in length; shorter rows are zero past their
// end, which is never read: every row was validated against its own patch prompt's length.

import type { PatchState } from './steering.js';

export interface PatchRow {
  readonly state: PatchState;
  /** Row of `state` to take. */
  readonly row: number;
}

/** A patch state whose row i is `rows[i]`, padded with zeros to the longest patch prompt. */
export function stackPatchRows(rows: readonly PatchRow[]): PatchState {
  if (rows.length === 0) throw new Error('internal: no patch rows to stack');
  const seq = Math.max(...rows.map((r) => r.state.seq));
  const stack = (kind: 'features' | 'errors'): Map<string, Float32Array> => {
    const out = new Map<string, Float32Array>();
    for (const name of rows[0]!.state[kind].keys()) {
      let width = 0;
      let buf: Float32Array | undefined;
      rows.forEach(({ state, row }, i) => {
        const src = state[kind].get(name);
        if (!src) throw new Error(`internal: patch row without ${kind} of ${name}`);
        width ||= src.length / (state.batch * state.seq);
        buf ??= new Float32Array(rows.length * seq * width);
        buf.set(src.subarray(row * state.seq * width, (row + 1) * state.seq * width), i * seq * width);
      });
      out.set(name, buf!);
    }
    return out;
  };
  return { batch: rows.length, seq, features: stack('features'), errors: stack('errors') };
}
