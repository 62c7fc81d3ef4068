import { describe, expect, it } from 'vitest';
import { ShapeError } from '../errors.js';
import { referenceOps } from './reference-ops.js';

const v = async (t: { data(): Promise<Float32Array | Int32Array> }) => Array.from(await t.data());

describe('referenceOps', () => {
  it('broadcasts element-wise ops like NumPy', async () => {
    const ops = referenceOps();
    const a = ops.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(await v(ops.add(a, ops.tensor([10, 20, 30], [3])))).toEqual([11, 22, 33, 14, 25, 36]);
    expect(await v(ops.mul(a, ops.tensor([2, 3], [2, 1])))).toEqual([2, 4, 6, 12, 15, 18]);
    expect(await v(ops.where(ops.greater(a, ops.fill([1], 3)), a, ops.zeros([1])))).toEqual([0, 0, 0, 4, 5, 6]);
    expect(() => ops.add(a, ops.zeros([2]))).toThrow(ShapeError);
  });

  it('multiplies matrices with broadcast batch axes', async () => {
    const ops = referenceOps();
    const a = ops.tensor([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]);
    const b = ops.tensor([1, 0, 0, 1, 1, 1], [2, 3]);
    expect(await v(ops.matMul(a, b))).toEqual([3, 2, 2, 7, 4, 4, 11, 6, 6, 15, 8, 8]); // b rows [1,0,0], [1,1,1]
    expect(ops.matMul(a, b).shape).toEqual([2, 2, 3]);
  });

  it('transposes, reshapes, reduces, slices and gathers', async () => {
    const ops = referenceOps();
    const a = ops.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(await v(ops.transpose(a))).toEqual([1, 4, 2, 5, 3, 6]);
    expect(ops.reshape(a, [3, -1]).shape).toEqual([3, 2]);
    expect(await v(ops.sum(a, 1))).toEqual([6, 15]);
    expect(ops.sum(a, 1, true).shape).toEqual([2, 1]);
    expect(await v(ops.mean(a, 0))).toEqual([2.5, 3.5, 4.5]);
    expect(await v(ops.max(a))).toEqual([6]);
    expect(await v(ops.slice(a, [0, 1], [-1, 2]))).toEqual([2, 3, 5, 6]);
    expect(await v(ops.gather(a, ops.intTensor([2, 0], [2]), 1))).toEqual([3, 1, 6, 4]);
    expect(await v(ops.concat([a, a], 0))).toEqual([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
    expect(await v(ops.tile(ops.tensor([1, 2], [1, 2]), [2, 1]))).toEqual([1, 2, 1, 2]);
  });

  it('topk sorts descending and breaks ties by lower index', async () => {
    const ops = referenceOps();
    const { values, indices } = ops.topk(ops.tensor([1, 3, 3, 2], [1, 4]), 3);
    expect(await v(values)).toEqual([3, 3, 2]);
    expect(await v(indices)).toEqual([1, 2, 3]);
  });

  it('oneHot and logSoftmax', async () => {
    const ops = referenceOps();
    expect(await v(ops.oneHot(ops.intTensor([2, 0], [2]), 3))).toEqual([0, 0, 1, 1, 0, 0]);
    const ls = await v(ops.logSoftmax(ops.tensor([0, Math.log(3)], [2])));
    expect(ls[0]).toBeCloseTo(Math.log(0.25), 6);
  });

  it('scope disposes everything not returned, also on throw', async () => {
    const ops = referenceOps();
    const keep = await ops.scope(() => {
      const a = ops.tensor([1], [1]);
      ops.add(a, a);
      return { a };
    });
    expect(ops.numTensors()).toBe(1);
    expect(keep.a.isDisposed).toBe(false);
    await expect(ops.scope(() => { ops.zeros([3]); throw new Error('x'); })).rejects.toThrow('x');
    expect(ops.numTensors()).toBe(1);
    const inner = await ops.scope(async () => ops.scope(() => ops.zeros([2])));
    expect(ops.numTensors()).toBe(2);
    inner.dispose();
    expect(ops.numTensors()).toBe(1);
    await expect(inner.data()).rejects.toThrow(/disposed/);
  });
});
