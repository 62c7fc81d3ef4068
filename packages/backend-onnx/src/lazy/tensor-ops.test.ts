// TensorOps on onnxruntime: core's shared conformance suite, plus what is particular to the lazy
// engine — batching of pending work into one run, session reuse across sizes and scalars,
// errors from ORT surfacing as BackendError naming the op.

import { afterAll, describe, expect, it } from 'vitest';
import { BackendError } from '@sfc/core';
import { runTensorOpsConformance } from '@sfc/core/testing';
import { OnnxTensorOps } from './tensor-ops.js';

const ops = new OnnxTensorOps({ intraOpNumThreads: 1, executionProviders: ['cpu'], graphOptimizationLevel: 'basic' });
afterAll(() => ops.dispose());

runTensorOpsConformance(ops, { describe, it, expect }, 'onnx TensorOps conformance');

describe('lazy evaluation', () => {
  it('computes everything requested in one tick with one session.run', async () => {
    await ops.scope(async () => {
      const x = ops.tensor([1, 2, 3, 4], [2, 2]);
      const a = ops.matMul(x, x);
      const b = ops.sum(ops.relu(ops.sub(a, ops.fill([1], 10))), 1);
      const c = ops.exp(ops.neg(x));
      const runs = ops.stats.runs;
      const [va, vb, vc] = await Promise.all([a.data(), b.data(), c.data()]);
      expect(ops.stats.runs - runs).toBe(1);
      expect(Array.from(va)).toEqual([7, 10, 15, 22]);
      expect(Array.from(vb)).toEqual([0, 17]);
      expect(vc[0]).toBeCloseTo(Math.exp(-1), 6);
      // Everything live was materialized by that run: reading again costs nothing.
      await a.data();
      expect(ops.stats.runs - runs).toBe(1);
    });
  });

  it('reuses one session for the same math on other sizes and scalars', async () => {
    const compute = async (n: number, k: number) => ops.scope(async () => {
      const x = ops.tensor(Array.from({ length: n * 3 }, (_, i) => i), [n, 3]);
      const y = ops.sum(ops.scale(ops.reshape(ops.add(x, x), [3, n]), k), 0);
      return Array.from(await y.data());
    });
    // reshape of 2·[0 … 3n−1] to [3, n], scaled by k, summed over rows.
    const expected = (n: number, k: number) => Array.from({ length: n }, (_, j) => k * 2 * (3 * j + 3 * n));
    expect(await compute(2, 1)).toEqual(expected(2, 1));
    const compiled = ops.stats.compiled;
    expect(await compute(5, 2)).toEqual(expected(5, 2));
    expect(await compute(4, -1)).toEqual(expected(4, -1));
    expect(ops.stats.compiled).toBe(compiled);
  });

  it('reshape of a computed tensor shares its values (no run)', async () => {
    await ops.scope(async () => {
      const x = ops.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
      const runs = ops.stats.runs;
      const r = ops.reshape(x, [3, 2]);
      expect(Array.from(await r.data())).toEqual([1, 2, 3, 4, 5, 6]);
      expect(ops.stats.runs).toBe(runs);
    });
  });

  it('an ORT failure becomes a BackendError naming the op, and later work still runs', async () => {
    await ops.scope(async () => {
      const table = ops.tensor([1, 2, 3, 4], [2, 2]);
      // Indices computed lazily cannot be range-checked when gather is called; ORT rejects them.
      const bad = ops.gather(table, ops.reshape(ops.concat([ops.intTensor([9], [1])], 0), [1]));
      const err = await bad.data().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendError);
      expect((err as Error).message).toMatch(/'gather'/);
      const ok = ops.add(table, table);
      expect(Array.from(await ok.data())).toEqual([2, 4, 6, 8]);
      // Requested in the same tick as a failing tensor, a good one still gets its values.
      const bad2 = ops.gather(table, ops.reshape(ops.concat([ops.intTensor([-9], [1])], 0), [1]));
      const good = ops.mul(table, table);
      const [r1, r2] = await Promise.allSettled([bad2.data(), good.data()]);
      expect(r1.status).toBe('rejected');
      expect((r1 as PromiseRejectedResult).reason).toBeInstanceOf(BackendError);
      expect(r2.status === 'fulfilled' && Array.from(r2.value)).toEqual([1, 4, 9, 16]);
    });
  });

  it('disposing handles inside scopes leaves no live tensors', async () => {
    const before = ops.numTensors();
    await ops.scope(async () => {
      let acc = ops.zeros([4]);
      for (let i = 0; i < 50; i++) acc = ops.add(acc, ops.fill([4], 1));
      expect(Array.from(await acc.data())).toEqual([50, 50, 50, 50]);
    });
    expect(ops.numTensors()).toBe(before);
  });
});
