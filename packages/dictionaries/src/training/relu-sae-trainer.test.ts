// The trainer end to end on synthetic sparse data with a known dictionary: it must recover a
// good reconstruction in raw units (through the ReluDictionary the loaders build), keep decoder
// rows unit-norm, be seeded, and resample dead features when asked.
import { describe, expect, it } from 'vitest';
import { PythonRandom } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { ReluDictionary } from '../architectures/index.js';
import { rowNorms } from '../host-weights.js';
import { measureSae } from './sae-quality.js';
import { trainReluSae, type ActivationSet } from './relu-sae-trainer.js';

const d = 8, TRUE_F = 12;

/** x = offset + Σ_k a_k u_k with 1–2 of 12 random unit directions active (a ∈ [1, 3]), times 5. */
function synthetic(rows: number, seed: number): ActivationSet {
  const rng = new PythonRandom(1234);
  const dirs = Array.from({ length: TRUE_F }, () => {
    const v = Array.from({ length: d }, () => rng.random() * 2 - 1);
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  });
  const offset = Array.from({ length: d }, (_, i) => (i % 2 ? 2 : -1));
  const r = new PythonRandom(seed);
  const data = new Float32Array(rows * d);
  for (let n = 0; n < rows; n++) {
    const k = 1 + r.randbelow(2);
    const row = [...offset];
    for (let a = 0; a < k; a++) {
      const u = dirs[r.randbelow(TRUE_F)]!;
      const amp = 1 + 2 * r.random();
      for (let i = 0; i < d; i++) row[i]! += amp * u[i]!;
    }
    for (let i = 0; i < d; i++) data[n * d + i] = 5 * row[i]!;
  }
  return { data, rows, dIn: d };
}

describe('trainReluSae', () => {
  const train = synthetic(2048, 1);
  const test = synthetic(512, 2);
  const opts = { dictSize: 32, l1: 0.5, steps: 600, batchSize: 64, lr: 1e-2, seed: 3, logEvery: 100 };

  it('reconstructs held-out data in raw units with a sparse code and unit-norm decoder rows', async () => {
    const ops = referenceOps();
    const before = ops.numTensors();
    const progress: number[] = [];
    const r = await trainReluSae(ops, train, { ...opts, onProgress: (p) => progress.push(p.step) });
    expect(ops.numTensors()).toBe(before); // no leaked tensors
    expect(progress).toEqual([100, 200, 300, 400, 500, 600]);
    expect(r.history.at(-1)!.fve).toBeGreaterThan(0.9);
    expect(r.inputScale).toBeGreaterThan(0);
    for (const n of rowNorms(r.weights.W_dec)) expect(n).toBeCloseTo(1, 5);
    const dict = new ReluDictionary(ops, { ...r.weights, applyBDecToInput: true });
    const q = await measureSae(ops, dict, test);
    dict.dispose();
    expect(q.fve).toBeGreaterThan(0.9);
    expect(q.l0).toBeLessThan(8);
    expect(q.l0).toBeGreaterThan(0.5);
  });

  it('is deterministic for a seed and differs across seeds', async () => {
    const ops = referenceOps();
    const short = { ...opts, steps: 40 };
    const a = await trainReluSae(ops, train, short);
    const b = await trainReluSae(ops, train, short);
    const c = await trainReluSae(ops, train, { ...short, seed: 4 });
    expect(b.weights.W_enc.data).toEqual(a.weights.W_enc.data);
    expect(b.weights.W_dec.data).toEqual(a.weights.W_dec.data);
    expect(c.weights.W_enc.data).not.toEqual(a.weights.W_enc.data);
  });

  it('resamples features that stop firing', async () => {
    const ops = referenceOps();
    // A large λ kills most features early; resampling brings some back.
    const harsh = { ...opts, l1: 8, steps: 300, sparsityWarmupSteps: 0 };
    const off = await trainReluSae(ops, train, harsh);
    const on = await trainReluSae(ops, train, { ...harsh, resample: { every: 50 } });
    expect(off.resampled).toBe(0);
    expect(on.resampled).toBeGreaterThan(0);
  });

  it('rejects bad options with typed errors', async () => {
    const ops = referenceOps();
    await expect(trainReluSae(ops, train, { ...opts, dictSize: 0 })).rejects.toMatchObject({ code: 'INPUT' });
    await expect(trainReluSae(ops, train, { ...opts, l1: -1 })).rejects.toMatchObject({ code: 'INPUT' });
    await expect(trainReluSae(ops, { data: new Float32Array(8), rows: 1, dIn: 8 }, opts)).rejects.toMatchObject({ code: 'INPUT' });
  });
});
