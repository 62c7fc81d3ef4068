// Every op is an affine map of a feature's activation: f' = a·f + b + m·μ + c·p, with μ the
// reference mean and p the patch prompt's value at the same position. Ops on one feature
// compose in the order given (an affine map of an affine map is affine), so any number of
// interventions on a submodule costs one gather, a few element-wise ops and one matmul.
// This module builds the per-(position, column) coefficients; it never sees activations.

import type { Positions, SteerOp } from './intervention.js';
import { positionMask } from './positions.js';

/** (a, b, m, c) of one op. */
export function opAffine(op: SteerOp): readonly [number, number, number, number] {
  switch (op.kind) {
    case 'scale': return [op.factor, 0, 0, 0];
    case 'clamp': return [0, op.value, 0, 0];
    case 'add': return [1, op.alpha, 0, 0];
    case 'ablate': return op.mode === 'zero' ? [0, 0, 0, 0] : [0, 0, 1, 0];
    case 'patch': { const s = op.strength ?? 1; return [1 - s, 0, 0, s]; }
  }
}

export interface AffineStep {
  /** Column in the submodule's list of targeted features. */
  readonly column: number;
  readonly op: SteerOp;
  readonly positions: Positions;
}

/** Row-major [seq, width] coefficient planes (row i: position offset + i) and which of them are not the identity. */
export interface AffineCoefficients {
  readonly seq: number;
  readonly offset: number;
  readonly width: number;
  readonly a: Float32Array;
  readonly b: Float32Array;
  readonly m: Float32Array;
  readonly c: Float32Array;
  /** Some a ≠ 1: the edit needs the current activations. */
  readonly usesA: boolean;
  readonly usesB: boolean;
  readonly usesM: boolean;
  readonly usesC: boolean;
  /** The last absolute position where some c ≠ 0 (patch values needed there); −1 if none. */
  readonly lastPatchedPosition: number;
}

/** Coefficients at absolute positions offset…offset+seq−1 of a sequence with a `promptLength`-token prompt. */
export function composeSteps(steps: readonly AffineStep[], seq: number, width: number, promptLength: number, offset = 0): AffineCoefficients {
  const n = seq * width;
  const a = new Float64Array(n).fill(1), b = new Float64Array(n), m = new Float64Array(n), c = new Float64Array(n);
  for (const step of steps) {
    const [sa, sb, sm, sc] = opAffine(step.op);
    const mask = positionMask(step.positions, seq, promptLength, offset);
    for (let p = 0; p < seq; p++) {
      if (!mask[p]) continue;
      const i = p * width + step.column;
      // (sa, sb, sm, sc) ∘ (a, b, m, c): f'' = sa·f' + sb + sm·μ + sc·p
      a[i] = sa * a[i]!;
      b[i] = sa * b[i]! + sb;
      m[i] = sa * m[i]! + sm;
      c[i] = sa * c[i]! + sc;
    }
  }
  let lastPatched = -1;
  for (let i = 0; i < n; i++) if (c[i] !== 0) lastPatched = offset + Math.floor(i / width);
  return {
    seq, offset, width,
    a: Float32Array.from(a), b: Float32Array.from(b), m: Float32Array.from(m), c: Float32Array.from(c),
    usesA: a.some((v) => v !== 1), usesB: b.some((v) => v !== 0), usesM: m.some((v) => v !== 0), usesC: c.some((v) => v !== 0),
    lastPatchedPosition: lastPatched,
  };
}
