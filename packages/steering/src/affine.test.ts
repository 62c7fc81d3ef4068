import { describe, expect, it } from 'vitest';
import { composeSteps, opAffine } from './affine.js';
import { ablate, add, clamp, parsePositions, patch, scale, type SteerOp } from './intervention.js';

/** The op applied to one value directly: what the affine coefficients must reproduce. */
function direct(op: SteerOp, f: number, mu: number, p: number): number {
  switch (op.kind) {
    case 'scale': return op.factor * f;
    case 'clamp': return op.value;
    case 'add': return f + op.alpha;
    case 'ablate': return op.mode === 'zero' ? 0 : mu;
    case 'patch': return f + (op.strength ?? 1) * (p - f);
  }
}

describe('ops as affine maps', () => {
  const ops: SteerOp[] = [scale(-3), clamp(2.5), add(0.75), ablate('zero'), ablate('mean'), patch(), patch(0.6), patch(1.5)];
  const [f, mu, p] = [1.7, -0.4, 3.2];

  it('each op is f′ = a·f + b + m·μ + c·p', () => {
    for (const op of ops) {
      const [a, b, m, c] = opAffine(op);
      expect(a * f + b + m * mu + c * p).toBeCloseTo(direct(op, f, mu, p), 12);
    }
  });

  it('ops on one feature compose in the order given', () => {
    const all = parsePositions('all');
    for (const first of ops) {
      for (const second of ops) {
        const coef = composeSteps([{ column: 0, op: first, positions: all }, { column: 0, op: second, positions: all }], 1, 1, 1);
        const got = coef.a[0]! * f + coef.b[0]! + coef.m[0]! * mu + coef.c[0]! * p;
        expect(got).toBeCloseTo(direct(second, direct(first, f, mu, p), mu, p), 5);
      }
    }
    // Order matters: scale then add ≠ add then scale.
    const sa = composeSteps([{ column: 0, op: scale(2), positions: all }, { column: 0, op: add(1), positions: all }], 1, 1, 1);
    const as = composeSteps([{ column: 0, op: add(1), positions: all }, { column: 0, op: scale(2), positions: all }], 1, 1, 1);
    expect([sa.a[0], sa.b[0]]).toEqual([2, 1]);
    expect([as.a[0], as.b[0]]).toEqual([2, 2]);
  });

  it('only the selected (position, column) cells change; flags say which planes are used', () => {
    const coef = composeSteps([
      { column: 1, op: scale(3), positions: parsePositions('0,2') },
      { column: 0, op: patch(), positions: parsePositions('-1') },
    ], 4, 2, 3);
    expect([...coef.a]).toEqual([1, 3, 1, 1, 0, 3, 1, 1]);
    expect([...coef.c]).toEqual([0, 0, 0, 0, 1, 0, 0, 0]);
    expect([coef.usesA, coef.usesB, coef.usesM, coef.usesC, coef.lastPatchedPosition]).toEqual([true, false, false, true, 2]);
    const addOnly = composeSteps([{ column: 0, op: add(1), positions: parsePositions('all') }], 3, 1, 3);
    expect([addOnly.usesA, addOnly.usesB]).toEqual([false, true]);
  });

  it('a window of positions (a cached step) gets the rows of the full sequence; lastPatchedPosition stays absolute', () => {
    const steps = [
      { column: 1, op: scale(3), positions: parsePositions('0,2') },
      { column: 0, op: patch(), positions: parsePositions('4:') },
    ];
    const full = composeSteps(steps, 7, 2, 3);
    for (let offset = 0; offset < 7; offset++) {
      const w = composeSteps(steps, 1, 2, 3, offset);
      expect([...w.a, ...w.c]).toEqual([...full.a.slice(2 * offset, 2 * offset + 2), ...full.c.slice(2 * offset, 2 * offset + 2)]);
      expect(w.lastPatchedPosition).toBe(offset >= 4 ? offset : -1);
    }
    expect(full.lastPatchedPosition).toBe(6);
  });
});
