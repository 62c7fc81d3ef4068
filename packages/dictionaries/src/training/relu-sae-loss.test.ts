// The analytic ReLU SAE gradient against central finite differences of an independent float64
// implementation of the same loss, on two TensorOps (pure-JS reference and tfjs-cpu).
import { describe, expect, it } from 'vitest';
import { PythonRandom, type TensorOps } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { tfjsBackend } from '@sfc/backend-tfjs';
import { PARAM_NAMES, reluSaeLossAndGrad, type ParamName } from './relu-sae-loss.js';

const N = 6, d = 5, F = 7;
type Host = Record<ParamName, Float64Array>;
const SHAPES: Record<ParamName, number[]> = { W_enc: [d, F], b_enc: [F], W_dec: [F, d], b_dec: [d] };

/** L = (1/N) Σ_n [ Σ_i (x̂ − x)² + λ Σ_j f_j ‖W_dec[j]‖ ] in float64, written out loop by loop. */
function loss64(p: Host, x: Float64Array, lambda: number): number {
  const norms = new Float64Array(F);
  for (let j = 0; j < F; j++) { let s = 0; for (let i = 0; i < d; i++) s += p.W_dec[j * d + i]! ** 2; norms[j] = Math.sqrt(s); }
  let total = 0;
  for (let n = 0; n < N; n++) {
    const f = new Float64Array(F);
    for (let j = 0; j < F; j++) {
      let pre = p.b_enc[j]!;
      for (let i = 0; i < d; i++) pre += (x[n * d + i]! - p.b_dec[i]!) * p.W_enc[i * F + j]!;
      f[j] = Math.max(0, pre);
    }
    for (let i = 0; i < d; i++) {
      let xh = p.b_dec[i]!;
      for (let j = 0; j < F; j++) xh += f[j]! * p.W_dec[j * d + i]!;
      total += (xh - x[n * d + i]!) ** 2;
    }
    for (let j = 0; j < F; j++) total += lambda * f[j]! * norms[j]!;
  }
  return total / N;
}

/** Random parameters and data with every pre-activation at least `margin` from the ReLU kink. */
function sample(seed: number, margin: number): { p: Host; x: Float64Array } {
  const rng = new PythonRandom(seed);
  const r = () => rng.random() * 2 - 1;
  for (;;) {
    const p = Object.fromEntries(PARAM_NAMES.map((k) => [k, Float64Array.from({ length: SHAPES[k].reduce((a, b) => a * b, 1) }, r)])) as Host;
    const x = Float64Array.from({ length: N * d }, () => 2 * r());
    let ok = true, active = 0;
    for (let n = 0; n < N && ok; n++) for (let j = 0; j < F; j++) {
      let pre = p.b_enc[j]!;
      for (let i = 0; i < d; i++) pre += (x[n * d + i]! - p.b_dec[i]!) * p.W_enc[i * F + j]!;
      if (Math.abs(pre) < margin) ok = false;
      if (pre > 0) active++;
    }
    // Both branches of the ReLU must be exercised.
    if (ok && active > 0 && active < N * F) return { p, x };
  }
}

const tfjs = await tfjsBackend({ flavor: 'cpu' });
const BACKENDS: [string, () => TensorOps][] = [['reference ops', referenceOps], ['tfjs-cpu', () => tfjs.ops]];

describe.each(BACKENDS)('reluSaeLossAndGrad on %s', (_name, makeOps) => {
  it.each([0, 0.3, 2])('matches central finite differences (λ = %s)', async (lambda) => {
    const ops = makeOps();
    const { p, x } = sample(7 + lambda * 10, 0.05);
    const { loss, grads } = await ops.scope(async () => {
      const params = Object.fromEntries(PARAM_NAMES.map((k) => [k, ops.tensor(Float32Array.from(p[k]), SHAPES[k])])) as never;
      const r = reluSaeLossAndGrad(ops, params, ops.tensor(Float32Array.from(x), [N, d]), lambda);
      return { loss: r.terms.loss, grads: r.grads as unknown as Record<string, import('@sfc/core').Tensor> };
    });
    expect((await loss.data())[0]).toBeCloseTo(loss64(p, x, lambda), 4);
    const h = 1e-5;
    let checked = 0;
    for (const k of PARAM_NAMES) {
      const g = await grads[k]!.data();
      expect(grads[k]!.shape).toEqual(SHAPES[k]);
      for (let i = 0; i < p[k].length; i++) {
        const orig = p[k][i]!;
        p[k][i] = orig + h; const up = loss64(p, x, lambda);
        p[k][i] = orig - h; const down = loss64(p, x, lambda);
        p[k][i] = orig;
        const fd = (up - down) / (2 * h);
        expect(Math.abs(g[i]! - fd), `${k}[${i}]: analytic ${g[i]} vs finite difference ${fd}`).toBeLessThan(2e-4 + 2e-4 * Math.abs(fd));
        checked++;
      }
    }
    expect(checked).toBe(d * F + F + F * d + d);
    for (const t of [loss, ...Object.values(grads)]) t.dispose();
  });
});

describe('the finite-difference check itself', () => {
  it('detects a wrong gradient (the penalty term dropped from ∂L/∂W_dec)', async () => {
    const ops = referenceOps();
    const { p, x } = sample(3, 0.05);
    const lambda = 2;
    const g = await ops.scope(async () => {
      const params = Object.fromEntries(PARAM_NAMES.map((k) => [k, ops.tensor(Float32Array.from(p[k]), SHAPES[k])])) as never;
      // λ = 0 in the analytic call, λ = 2 in the float64 loss: W_dec's gradient must disagree.
      return reluSaeLossAndGrad(ops, params, ops.tensor(Float32Array.from(x), [N, d]), 0).grads.W_dec;
    });
    const gd = await g.data();
    let maxErr = 0;
    const h = 1e-5;
    for (let i = 0; i < p.W_dec.length; i++) {
      const orig = p.W_dec[i]!;
      p.W_dec[i] = orig + h; const up = loss64(p, x, lambda);
      p.W_dec[i] = orig - h; const down = loss64(p, x, lambda);
      p.W_dec[i] = orig;
      maxErr = Math.max(maxErr, Math.abs(gd[i]! - (up - down) / (2 * h)));
    }
    expect(maxErr).toBeGreaterThan(1e-2);
  });
});
