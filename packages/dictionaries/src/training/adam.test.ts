// adamStep against a float64 transcription of torch.optim.Adam + clip_grad_norm_.
import { describe, expect, it } from 'vitest';
import type { Tensor } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { adamInit, adamStep } from './adam.js';

/** torch semantics: clip by global norm (coef = c / (‖g‖ + 1e-6), at most 1), then Adam. */
function hostAdam(p: number[][], grads: number[][][], lrs: number[], clip: number | undefined): number[][] {
  const b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const m = p.map((a) => a.map(() => 0)), v = p.map((a) => a.map(() => 0));
  grads.forEach((g, step) => {
    let coef = 1;
    if (clip !== undefined) {
      const norm = Math.sqrt(g.flat().reduce((s, x) => s + x * x, 0));
      coef = Math.min(1, clip / (norm + 1e-6));
    }
    const t = step + 1;
    p.forEach((a, k) => a.forEach((_, i) => {
      const gi = g[k]![i]! * coef;
      m[k]![i] = b1 * m[k]![i]! + (1 - b1) * gi;
      v[k]![i] = b2 * v[k]![i]! + (1 - b2) * gi * gi;
      const denom = Math.sqrt(v[k]![i]!) / Math.sqrt(1 - b2 ** t) + eps;
      a[i] = a[i]! - (lrs[step]! / (1 - b1 ** t)) * m[k]![i]! / denom;
    }));
  });
  return p;
}

describe('adamStep', () => {
  it.each([[undefined], [0.5], [100]])('matches torch Adam over 4 steps (clip %s)', async (clip) => {
    const ops = referenceOps();
    const p0 = [[0.5, -1, 2], [0.25, 3]];
    const grads = [0, 1, 2, 3].map((s) => [[Math.sin(s + 1), -2 * s, 0.3], [1.5 - s, Math.cos(s) * 4]]);
    const lrs = [0.1, 0.05, 0.2, 0.01];
    let params: Record<'a' | 'b', Tensor> = { a: ops.tensor(p0[0]!, [3]), b: ops.tensor(p0[1]!, [2]) };
    let state = adamInit(ops, params);
    for (let s = 0; s < 4; s++) {
      const g = { a: ops.tensor(grads[s]![0]!, [3]), b: ops.tensor(grads[s]![1]!, [2]) };
      const r = adamStep(ops, params, g, state, lrs[s]!, clip !== undefined ? { clipNorm: clip } : {});
      params = r.params;
      state = r.state;
    }
    const expected = hostAdam(p0.map((a) => [...a]), grads, lrs, clip);
    expect(state.t).toBe(4);
    const a = await params.a.data(), b = await params.b.data();
    [...a, ...b].forEach((x, i) => expect(x).toBeCloseTo(expected.flat()[i]!, 5));
    // Clipping at 0.5 must change the result (the gradients' norms are far above it).
    if (clip === 0.5) {
      const unclipped = hostAdam(p0.map((x) => [...x]), grads, lrs, undefined).flat();
      expect(Math.max(...[...a, ...b].map((x, i) => Math.abs(x - unclipped[i]!)))).toBeGreaterThan(1e-3);
    }
  });
});
