import { describe, expect, it } from 'vitest';
import { stackPatchRows } from './patch-rows.js';
import type { PatchState } from './steering.js';

/** A patch state whose value at (row, pos, col) is 100·row + 10·pos + col + base. */
function state(batch: number, seq: number, width: number, base: number): PatchState {
  const f = Float32Array.from({ length: batch * seq * width }, (_, i) => {
    const col = i % width, pos = Math.floor(i / width) % seq, row = Math.floor(i / (width * seq));
    return base + 100 * row + 10 * pos + col;
  });
  return { batch, seq, features: new Map([['resid_1', f]]), errors: new Map([['resid_0', f.map((v) => -v)]]) };
}

describe('stackPatchRows', () => {
  it('takes the given rows in order and zero-pads shorter patch prompts to the longest', () => {
    const a = state(2, 3, 2, 0), b = state(1, 4, 2, 1000);
    const s = stackPatchRows([{ state: a, row: 1 }, { state: b, row: 0 }, { state: a, row: 0 }]);
    expect([s.batch, s.seq]).toEqual([3, 4]);
    const f = s.features.get('resid_1')!;
    const at = (r: number, p: number, c: number) => f[(r * 4 + p) * 2 + c];
    expect([at(0, 0, 0), at(0, 2, 1), at(0, 3, 0), at(0, 3, 1)]).toEqual([100, 121, 0, 0]);
    expect([at(1, 0, 0), at(1, 3, 1)]).toEqual([1000, 1031]);
    expect([at(2, 1, 1), at(2, 3, 0)]).toEqual([11, 0]);
    expect(s.errors.get('resid_0')![(1 * 4 + 3) * 2 + 1]).toBe(-1031);
  });
});
