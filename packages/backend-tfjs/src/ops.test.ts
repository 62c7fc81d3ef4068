// TensorOps on tfjs, on the cpu and wasm flavors: every op against a hand computation,
// broadcasting, typed errors, and scopes (disposal, on throw, Map results, interleaving).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendError, InputError, ShapeError, type Backend, type Tensor, type TensorOps } from '@sfc/core';
import { tfjsBackend } from './index.js';

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

function close(actual: number[], expected: number[], tol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]!), `element ${i}: ${a} vs ${expected[i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(expected[i]!))));
}

describe.each(['cpu', 'wasm'] as const)('TfjsOps on %s', (flavor) => {
  let backend: Backend;
  let ops: TensorOps;
  beforeAll(async () => {
    backend = await tfjsBackend({ flavor });
    ops = backend.ops;
  });
  afterAll(async () => { await backend.dispose(); });

  const t = (v: number[], shape: number[]) => ops.tensor(v, shape);

  it('creates tensors and reads them back (copies, so the caller cannot corrupt them)', async () => {
    await ops.scope(async () => {
      const src = new Float32Array([1, 2, 3, 4, 5, 6]);
      const a = ops.tensor(src, [2, 3]);
      src[0] = 99;
      expect(a.shape).toEqual([2, 3]);
      expect(a.dtype).toBe('float32');
      const read = await a.data();
      expect(Array.from(read)).toEqual([1, 2, 3, 4, 5, 6]);
      read[1] = 42;
      expect(await values(a)).toEqual([1, 2, 3, 4, 5, 6]);
      const i = ops.intTensor([3, -1, 7], [3]);
      expect(i.dtype).toBe('int32');
      expect(await i.data()).toBeInstanceOf(Int32Array);
      expect(await values(ops.zeros([2, 2]))).toEqual([0, 0, 0, 0]);
      expect(await values(ops.fill([3], 2.5))).toEqual([2.5, 2.5, 2.5]);
      expect(() => ops.tensor([1, 2, 3], [2, 2])).toThrow(ShapeError);
      expect(() => ops.intTensor([1.5], [1])).toThrow(InputError);
    });
  });

  it('element-wise ops with NumPy broadcasting', async () => {
    await ops.scope(async () => {
      const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
      const row = t([10, 20, 30], [3]);
      const col = t([2, 4], [2, 1]);
      expect(await values(ops.add(a, row))).toEqual([11, 22, 33, 14, 25, 36]);
      expect(await values(ops.sub(a, col))).toEqual([-1, 0, 1, 0, 1, 2]);
      expect(await values(ops.mul(a, col))).toEqual([2, 4, 6, 16, 20, 24]);
      close(await values(ops.div(a, col)), [0.5, 1, 1.5, 1, 1.25, 1.5]);
      expect(await values(ops.maximum(a, t([3], [1])))).toEqual([3, 3, 3, 4, 5, 6]);
      // [2,1] with [1,3] → [2,3]
      expect(await values(ops.add(col, t([1, 2, 3], [1, 3])))).toEqual([3, 4, 5, 5, 6, 7]);
      expect(() => ops.add(a, t([1, 2], [2]))).toThrow(ShapeError);
      // int32 operands are float arithmetic (as in core's reference ops), not integer division
      close(await values(ops.div(ops.intTensor([7, 1], [2]), ops.intTensor([2, 4], [2]))), [3.5, 0.25]);
    });
  });

  it('unary ops, scalars, greater and where', async () => {
    await ops.scope(async () => {
      const a = t([-2, -0.5, 0, 1, 4], [5]);
      expect(await values(ops.scale(a, 3))).toEqual([-6, -1.5, 0, 3, 12]);
      expect(await values(ops.addScalar(a, 1))).toEqual([-1, 0.5, 1, 2, 5]);
      expect(await values(ops.neg(a))).toEqual([2, 0.5, -0, -1, -4]);
      expect(await values(ops.abs(a))).toEqual([2, 0.5, 0, 1, 4]);
      expect(await values(ops.square(a))).toEqual([4, 0.25, 0, 1, 16]);
      expect(await values(ops.relu(a))).toEqual([0, 0, 0, 1, 4]);
      close(await values(ops.sqrt(t([0, 1, 4, 2], [4]))), [0, 1, 2, Math.SQRT2]);
      close(await values(ops.exp(t([0, 1, -1], [3]))), [1, Math.E, 1 / Math.E]);
      close(await values(ops.log(t([1, Math.E, 10], [3]))), [0, 1, Math.log(10)]);
      const g = ops.greater(a, t([0], [1]));
      expect(g.dtype).toBe('float32');
      expect(await values(g)).toEqual([0, 0, 0, 1, 1]);
      // mask: any nonzero selects a; broadcasting of mask, a and b
      const w = ops.where(t([1, 0, -3], [3]), t([1, 2, 3, 4, 5, 6], [2, 3]), t([0], [1]));
      expect(w.shape).toEqual([2, 3]);
      expect(await values(w)).toEqual([1, 0, 3, 4, 0, 6]);
    });
  });

  it('matMul: 2-D, [..., n, k] @ [k, m], batched and broadcast batches', async () => {
    await ops.scope(async () => {
      const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
      const b = t([1, 0, 0, 1, 1, 1], [3, 2]);
      expect(await values(ops.matMul(a, b))).toEqual([4, 5, 10, 11]);
      const a3 = t([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 2, 3]);
      const y = ops.matMul(a3, b);
      expect(y.shape).toEqual([2, 2, 2]);
      expect(await values(y)).toEqual([4, 5, 10, 11, 16, 17, 22, 23]);
      const b3 = t([1, 0, 0, 1, 1, 1, 2, 0, 0, 2, 0, 0], [2, 3, 2]);
      expect(await values(ops.matMul(a3, b3))).toEqual([4, 5, 10, 11, 14, 16, 20, 22]);
      // [2, 3] @ [2, 3, 2]: the 2-D operand broadcasts over the batch
      const yb = ops.matMul(a, b3);
      expect(yb.shape).toEqual([2, 2, 2]);
      expect(await values(yb)).toEqual([4, 5, 10, 11, 2, 4, 8, 10]);
      expect(() => ops.matMul(a, a)).toThrow(ShapeError);
      expect(() => ops.matMul(t([1], [1]), a)).toThrow(ShapeError);
    });
  });

  it('transpose, reshape, slice, concat, tile', async () => {
    await ops.scope(async () => {
      const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
      const at = ops.transpose(a);
      expect(at.shape).toEqual([3, 2]);
      expect(await values(at)).toEqual([1, 4, 2, 5, 3, 6]);
      const x = t([...Array(24).keys()], [2, 3, 4]);
      const p = ops.transpose(x, [1, 0, 2]);
      expect(p.shape).toEqual([3, 2, 4]);
      expect((await values(p)).slice(0, 8)).toEqual([0, 1, 2, 3, 12, 13, 14, 15]);
      expect(() => ops.transpose(x, [0, 0, 1])).toThrow(ShapeError);
      expect(ops.reshape(a, [3, -1]).shape).toEqual([3, 2]);
      expect(() => ops.reshape(a, [4, 2])).toThrow(ShapeError);
      expect(() => ops.reshape(a, [-1, -1])).toThrow(ShapeError);
      const s = ops.slice(x, [1, 1, 0], [1, -1, 2]);
      expect(s.shape).toEqual([1, 2, 2]);
      expect(await values(s)).toEqual([16, 17, 20, 21]);
      expect(() => ops.slice(a, [1, 0], [2, 3])).toThrow(ShapeError);
      const c = ops.concat([a, t([7, 8], [2, 1])], 1);
      expect(c.shape).toEqual([2, 4]);
      expect(await values(c)).toEqual([1, 2, 3, 7, 4, 5, 6, 8]);
      expect(await values(ops.concat([a, a], -2))).toEqual([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
      expect(() => ops.concat([a, t([1, 2], [1, 2])], 0)).toThrow(ShapeError);
      const tl = ops.tile(t([1, 2], [1, 2]), [3]);
      expect(tl.shape).toEqual([3, 2]);
      expect(await values(tl)).toEqual([1, 2, 1, 2, 1, 2]);
      expect(await values(ops.tile(t([1, 2], [1, 2]), [2, 2]))).toEqual([1, 2, 1, 2, 1, 2, 1, 2]);
    });
  });

  it('reductions: sum, mean, max with axes and keepDims', async () => {
    await ops.scope(async () => {
      const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
      expect(await values(ops.sum(a))).toEqual([21]);
      expect(await values(ops.sum(a, 0))).toEqual([5, 7, 9]);
      const s = ops.sum(a, -1, true);
      expect(s.shape).toEqual([2, 1]);
      expect(await values(s)).toEqual([6, 15]);
      expect(await values(ops.mean(a, [0, 1]))).toEqual([3.5]);
      expect(await values(ops.mean(a, 1))).toEqual([2, 5]);
      expect(await values(ops.max(t([1, 9, 3, -4, -5, -6], [2, 3]), 1))).toEqual([9, -4]);
      expect(ops.max(a, [1], true).shape).toEqual([2, 1]);
      expect(() => ops.sum(a, 2)).toThrow(ShapeError);
    });
  });

  it('gather, topk, oneHot, logSoftmax', async () => {
    await ops.scope(async () => {
      const a = t([1, 2, 3, 4, 5, 6], [3, 2]);
      const g = ops.gather(a, ops.intTensor([2, 0, 2], [3]));
      expect(g.shape).toEqual([3, 2]);
      expect(await values(g)).toEqual([5, 6, 1, 2, 5, 6]);
      const g1 = ops.gather(a, ops.intTensor([1, 0], [2]), 1);
      expect(await values(g1)).toEqual([2, 1, 4, 3, 6, 5]);
      const g2 = ops.gather(a, ops.intTensor([0, 1, 2, 2], [2, 2]));
      expect(g2.shape).toEqual([2, 2, 2]);
      expect(() => ops.gather(a, ops.intTensor([3], [1]))).toThrow(ShapeError);
      expect(() => ops.gather(a, t([0], [1]))).toThrow(InputError);
      const { values: tv, indices } = ops.topk(t([3, 1, 4, 1, 5, 9, 2, 6], [2, 4]), 2);
      expect(await values(tv)).toEqual([4, 3, 9, 6]);
      expect(indices.dtype).toBe('int32');
      expect(await values(indices)).toEqual([2, 0, 1, 3]);
      // ties: lower index first
      expect(await values(ops.topk(t([1, 2, 2, 0], [4]), 2).indices)).toEqual([1, 2]);
      expect(() => ops.topk(t([1, 2], [2]), 3)).toThrow(ShapeError);
      const oh = ops.oneHot(ops.intTensor([2, 0, 5], [3]), 3);
      expect(oh.dtype).toBe('float32');
      expect(oh.shape).toEqual([3, 3]);
      expect(await values(oh)).toEqual([0, 0, 1, 1, 0, 0, 0, 0, 0]);
      const x = [1000, 1001, 1003];
      const lse = 1000 + Math.log(1 + Math.E + Math.E ** 3);
      close(await values(ops.logSoftmax(t(x, [1, 3]))), x.map((v) => v - lse), 1e-5);
    });
  });

  it('refuses disposed tensors and tensors of other backends', async () => {
    const a = ops.tensor([1], [1]);
    a.dispose();
    expect(a.isDisposed).toBe(true);
    expect(() => ops.neg(a)).toThrow(InputError);
    await expect(a.data()).rejects.toThrow(InputError);
    const foreign: Tensor = { shape: [1], dtype: 'float32', isDisposed: false, data: async () => new Float32Array(1), dispose: () => {} };
    expect(() => ops.neg(foreign)).toThrow(/does not belong/);
  });

  it('scope keeps what the result reaches (tensor, array, object, Map) and frees the rest', async () => {
    const before = ops.numTensors();
    const r = await ops.scope(async () => {
      const a = ops.tensor([1, 2], [2]);
      const b = ops.add(a, a);
      ops.mul(b, b); // garbage
      await Promise.resolve(); // async inside the scope
      const inner = await ops.scope(() => {
        const x = ops.scale(a, 10);
        ops.neg(x); // inner garbage
        return { kept: x };
      });
      const m = new Map<string, Tensor>([['b', b]]);
      return { list: [a], m, inner, label: 'x', n: 3 };
    });
    expect(ops.numTensors()).toBe(before + 3); // a, b, x
    expect(await values(r.list[0]!)).toEqual([1, 2]);
    expect(await values(r.m.get('b')!)).toEqual([2, 4]);
    expect(await values(r.inner.kept)).toEqual([10, 20]);
    r.list[0]!.dispose(); r.m.get('b')!.dispose(); r.inner.kept.dispose();
    expect(ops.numTensors()).toBe(before);
  });

  it('scope disposes everything on throw and rethrows', async () => {
    const before = ops.numTensors();
    let made: Tensor | undefined;
    await expect(ops.scope(async () => {
      made = ops.tensor([1, 2, 3], [3]);
      ops.exp(made);
      await Promise.resolve();
      throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(made!.isDisposed).toBe(true);
    expect(ops.numTensors()).toBe(before);
  });

  it('an outer scope frees what an inner scope returned, unless it returns it too', async () => {
    const before = ops.numTensors();
    let innerResult: Tensor | undefined;
    await ops.scope(async () => {
      innerResult = await ops.scope(() => ops.tensor([1], [1]));
      expect(innerResult.isDisposed).toBe(false);
    });
    expect(innerResult!.isDisposed).toBe(true);
    expect(ops.numTensors()).toBe(before);
  });

  it('returning a tensor created outside the scope leaves it alive and owned by nobody', async () => {
    const outside = ops.tensor([5], [1]);
    const before = ops.numTensors();
    await ops.scope(async () => ops.scope(() => outside));
    expect(outside.isDisposed).toBe(false);
    expect(ops.numTensors()).toBe(before);
    outside.dispose();
  });

  // Last in the suite: after this, the engine keeps the abandoned scope open (documented in ops.ts).
  it('interleaved scopes are reported, not silently mixed', async () => {
    let open1!: () => void, open2!: () => void;
    const gate1 = new Promise<void>((r) => { open1 = r; });
    const gate2 = new Promise<void>((r) => { open2 = r; });
    const first = ops.scope(async () => { ops.tensor([1], [1]); await gate1; return 1; });
    const second = ops.scope(async () => { await gate2; return 2; });
    open1();
    await expect(first).rejects.toThrow(BackendError);
    open2();
    await expect(second).resolves.toBe(2);
  });
});
