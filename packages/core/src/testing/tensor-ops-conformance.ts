// The conformance suite every backend's TensorOps runs (sfc's tfjs and onnx backends, core's
// reference ops, third-party backends). Test-runner agnostic: pass your runner's `describe`, `it`
// and `expect` (vitest, jest). It checks what core's algorithms rely on: values of every op
// against hand computations, NumPy broadcasting, shape errors raised when the op is called,
// copies out of data(), many reads in flight at once, long op chains, and scope/dispose hygiene.
// Backend-specific behaviour (errors for malformed ints, interleaved scopes) stays in each backend's tests.

import { InputError, ShapeError } from '../errors.js';
import type { Tensor, TensorOps } from '../tensor.js';

/** The subset of a test runner's `expect` the suite uses (vitest's and jest's fit). */
export interface ConformanceExpect {
  (actual: unknown, message?: string): {
    toBe(expected: unknown): void;
    toEqual(expected: unknown): void;
    toBeLessThanOrEqual(n: number): void;
    toThrow(expected?: unknown): void;
    toBeInstanceOf(expected: unknown): void;
    readonly rejects: { toThrow(expected?: unknown): Promise<void> };
  };
}

export interface ConformanceRunner {
  readonly describe: (name: string, fn: () => void) => void;
  readonly it: (name: string, fn: () => Promise<void>) => void;
  readonly expect: ConformanceExpect;
}

/**
 * Registers the suite. `ops` may be a function so that backends created in a `beforeAll` are
 * read when the tests run, not when they are registered.
 */
export function runTensorOpsConformance(ops: TensorOps | (() => TensorOps), runner: ConformanceRunner, name = 'TensorOps conformance'): void {
  const { describe, it, expect } = runner;
  const get = typeof ops === 'function' ? ops : () => ops;

  async function values(t: Tensor): Promise<number[]> {
    return Array.from(await t.data());
  }
  function close(actual: number[], expected: number[], tol = 1e-6): void {
    expect(actual.length).toBe(expected.length);
    actual.forEach((a, i) => expect(Math.abs(a - expected[i]!), `element ${i}: ${a} vs ${expected[i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(expected[i]!))));
  }

  describe(name, () => {
    const t = (v: number[], shape: number[]) => get().tensor(v, shape);

    it('creates tensors and reads them back as copies', async () => {
      const o = get();
      await o.scope(async () => {
        const src = new Float32Array([1, 2, 3, 4, 5, 6]);
        const a = o.tensor(src, [2, 3]);
        src[0] = 99;
        expect(a.shape).toEqual([2, 3]);
        expect(a.dtype).toBe('float32');
        const read = await a.data();
        expect(read).toBeInstanceOf(Float32Array);
        expect(Array.from(read)).toEqual([1, 2, 3, 4, 5, 6]);
        read[1] = 42;
        expect(await values(a)).toEqual([1, 2, 3, 4, 5, 6]);
        const i = o.intTensor([3, -1, 7], [3]);
        expect(i.dtype).toBe('int32');
        expect(await i.data()).toBeInstanceOf(Int32Array);
        expect(await values(i)).toEqual([3, -1, 7]);
        expect(await values(o.zeros([2, 2]))).toEqual([0, 0, 0, 0]);
        expect(await values(o.fill([3], 2.5))).toEqual([2.5, 2.5, 2.5]);
        expect(o.zeros([2, 0, 3]).shape).toEqual([2, 0, 3]);
        expect(() => o.tensor([1, 2, 3], [2, 2])).toThrow(ShapeError);
      });
    });

    it('element-wise ops broadcast like NumPy', async () => {
      const o = get();
      await o.scope(async () => {
        const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
        const row = t([10, 20, 30], [3]);
        const col = t([2, 4], [2, 1]);
        expect(await values(o.add(a, row))).toEqual([11, 22, 33, 14, 25, 36]);
        expect(await values(o.sub(a, col))).toEqual([-1, 0, 1, 0, 1, 2]);
        expect(await values(o.mul(a, col))).toEqual([2, 4, 6, 16, 20, 24]);
        close(await values(o.div(a, col)), [0.5, 1, 1.5, 1, 1.25, 1.5]);
        expect(await values(o.maximum(a, t([3], [1])))).toEqual([3, 3, 3, 4, 5, 6]);
        const outer = o.add(col, t([1, 2, 3], [1, 3]));
        expect(outer.shape).toEqual([2, 3]);
        expect(await values(outer)).toEqual([3, 4, 5, 5, 6, 7]);
        expect(() => o.add(a, t([1, 2], [2]))).toThrow(ShapeError);
        // int32 operands give float32 arithmetic, not integer division.
        const q = o.div(o.intTensor([7, 1], [2]), o.intTensor([2, 4], [2]));
        expect(q.dtype).toBe('float32');
        close(await values(q), [3.5, 0.25]);
      });
    });

    it('unary ops, scalar ops, greater and where', async () => {
      const o = get();
      await o.scope(async () => {
        const a = t([-2, -0.5, 0, 1, 4], [5]);
        expect(await values(o.scale(a, 3))).toEqual([-6, -1.5, 0, 3, 12]);
        expect(await values(o.addScalar(a, 1))).toEqual([-1, 0.5, 1, 2, 5]);
        close(await values(o.neg(a)), [2, 0.5, 0, -1, -4]);
        expect(await values(o.abs(a))).toEqual([2, 0.5, 0, 1, 4]);
        expect(await values(o.square(a))).toEqual([4, 0.25, 0, 1, 16]);
        expect(await values(o.relu(a))).toEqual([0, 0, 0, 1, 4]);
        close(await values(o.sqrt(t([0, 1, 4, 2], [4]))), [0, 1, 2, Math.SQRT2]);
        close(await values(o.exp(t([0, 1, -1], [3]))), [1, Math.E, 1 / Math.E]);
        close(await values(o.log(t([1, Math.E, 10], [3]))), [0, 1, Math.log(10)]);
        const g = o.greater(a, t([0], [1]));
        expect(g.dtype).toBe('float32');
        expect(await values(g)).toEqual([0, 0, 0, 1, 1]);
        // Any nonzero mask entry selects a; mask, a and b broadcast together.
        const w = o.where(t([1, 0, -3], [3]), t([1, 2, 3, 4, 5, 6], [2, 3]), t([0], [1]));
        expect(w.shape).toEqual([2, 3]);
        expect(await values(w)).toEqual([1, 0, 3, 4, 0, 6]);
      });
    });

    it('matMul: 2-D, [..., n, k] @ [k, m], batched and broadcast batches', async () => {
      const o = get();
      await o.scope(async () => {
        const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
        const b = t([1, 0, 0, 1, 1, 1], [3, 2]);
        expect(await values(o.matMul(a, b))).toEqual([4, 5, 10, 11]);
        const a3 = t([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 2, 3]);
        const y = o.matMul(a3, b);
        expect(y.shape).toEqual([2, 2, 2]);
        expect(await values(y)).toEqual([4, 5, 10, 11, 16, 17, 22, 23]);
        const b3 = t([1, 0, 0, 1, 1, 1, 2, 0, 0, 2, 0, 0], [2, 3, 2]);
        expect(await values(o.matMul(a3, b3))).toEqual([4, 5, 10, 11, 14, 16, 20, 22]);
        const yb = o.matMul(a, b3);
        expect(yb.shape).toEqual([2, 2, 2]);
        expect(await values(yb)).toEqual([4, 5, 10, 11, 2, 4, 8, 10]);
        expect(() => o.matMul(a, a)).toThrow(ShapeError);
        expect(() => o.matMul(t([1], [1]), a)).toThrow(ShapeError);
        // A larger product against float64 JS.
        const n = 17, k = 33, m = 9;
        const av = Array.from({ length: n * k }, (_, i) => Math.sin(i * 0.37));
        const bv = Array.from({ length: k * m }, (_, i) => Math.cos(i * 0.11));
        const want: number[] = [];
        for (let r = 0; r < n; r++) for (let c = 0; c < m; c++) {
          let s = 0;
          for (let p = 0; p < k; p++) s += av[r * k + p]! * bv[p * m + c]!;
          want.push(s);
        }
        close(await values(o.matMul(t(av, [n, k]), t(bv, [k, m]))), want, 1e-5);
      });
    });

    it('matMulTransposed: a · bᵀ for [n, k], [..., n, k] and a vector-like [1, k]; shape errors', async () => {
      const o = get();
      await o.scope(async () => {
        const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
        const b = t([1, 0, 1, 0, 1, 1], [2, 3]); // bᵀ = [[1, 0], [0, 1], [1, 1]]
        const y = o.matMulTransposed(a, b);
        expect(y.shape).toEqual([2, 2]);
        expect(await values(y)).toEqual([4, 5, 10, 11]);
        const a3 = t([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 2, 3]);
        const y3 = o.matMulTransposed(a3, b);
        expect(y3.shape).toEqual([2, 2, 2]);
        expect(await values(y3)).toEqual([4, 5, 10, 11, 16, 17, 22, 23]);
        // Same ranks, other sizes (a backend that caches compiled graphs must not bake sizes in).
        const y3b = o.matMulTransposed(t([1, 1, 1, 2, 0, 0, 0, 0, 3], [1, 3, 3]), b);
        expect(y3b.shape).toEqual([1, 3, 2]);
        expect(await values(y3b)).toEqual([2, 2, 2, 0, 3, 3]);
        expect(() => o.matMulTransposed(a, t([1, 2], [1, 2]))).toThrow(ShapeError);
        expect(() => o.matMulTransposed(a, t([...Array(12).keys()], [2, 2, 3]))).toThrow(ShapeError);
        // Agrees with matMul(a, transpose(b)) on a larger, wide product (the SAE shape: m ≫ k).
        const n = 5, k = 24, m = 130;
        const av = Array.from({ length: n * k }, (_, i) => Math.sin(i * 0.37));
        const bv = Array.from({ length: m * k }, (_, i) => Math.cos(i * 0.11));
        const want: number[] = [];
        for (let r = 0; r < n; r++) for (let c = 0; c < m; c++) {
          let s = 0;
          for (let p = 0; p < k; p++) s += av[r * k + p]! * bv[c * k + p]!;
          want.push(s);
        }
        close(await values(o.matMulTransposed(t(av, [n, k]), t(bv, [m, k]))), want, 1e-5);
        // Few columns, many rows (the other orientation a backend may pick).
        close(await values(o.matMulTransposed(t(bv, [m, k]), t(av, [n, k]))),
          Array.from({ length: m * n }, (_, i) => want[(i % n) * m + Math.floor(i / n)]!), 1e-5);
      });
    });

    it('transpose, reshape, slice, concat, tile', async () => {
      const o = get();
      await o.scope(async () => {
        const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
        const at = o.transpose(a);
        expect(at.shape).toEqual([3, 2]);
        expect(await values(at)).toEqual([1, 4, 2, 5, 3, 6]);
        const x = t([...Array(24).keys()], [2, 3, 4]);
        const p = o.transpose(x, [1, 0, 2]);
        expect(p.shape).toEqual([3, 2, 4]);
        expect((await values(p)).slice(0, 8)).toEqual([0, 1, 2, 3, 12, 13, 14, 15]);
        const r = o.reshape(a, [3, -1]);
        expect(r.shape).toEqual([3, 2]);
        expect(await values(r)).toEqual([1, 2, 3, 4, 5, 6]);
        expect(await values(o.reshape(o.add(a, a), [6]))).toEqual([2, 4, 6, 8, 10, 12]);
        expect(() => o.reshape(a, [4, 2])).toThrow(ShapeError);
        expect(() => o.reshape(a, [-1, -1])).toThrow(ShapeError);
        const s = o.slice(x, [1, 1, 0], [1, -1, 2]);
        expect(s.shape).toEqual([1, 2, 2]);
        expect(await values(s)).toEqual([16, 17, 20, 21]);
        expect(() => o.slice(a, [1, 0], [2, 3])).toThrow(ShapeError);
        const c = o.concat([a, t([7, 8], [2, 1])], 1);
        expect(c.shape).toEqual([2, 4]);
        expect(await values(c)).toEqual([1, 2, 3, 7, 4, 5, 6, 8]);
        expect(await values(o.concat([a, a], -2))).toEqual([1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
        const tl = o.tile(t([1, 2], [1, 2]), [3]);
        expect(tl.shape).toEqual([3, 2]);
        expect(await values(tl)).toEqual([1, 2, 1, 2, 1, 2]);
        expect(await values(o.tile(t([1, 2], [1, 2]), [2, 2]))).toEqual([1, 2, 1, 2, 1, 2, 1, 2]);
        // Shape-preserving ops keep int32.
        const ids = o.intTensor([1, 2, 3, 4], [2, 2]);
        expect(o.transpose(ids).dtype).toBe('int32');
        expect(o.reshape(ids, [4]).dtype).toBe('int32');
        expect(await values(o.slice(ids, [1, 0], [1, 2]))).toEqual([3, 4]);
      });
    });

    it('reductions: sum, mean, max over axes, with keepDims', async () => {
      const o = get();
      await o.scope(async () => {
        const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
        const all = o.sum(a);
        expect(all.shape).toEqual([]);
        expect(await values(all)).toEqual([21]);
        expect(await values(o.sum(a, 0))).toEqual([5, 7, 9]);
        const s = o.sum(a, -1, true);
        expect(s.shape).toEqual([2, 1]);
        expect(await values(s)).toEqual([6, 15]);
        expect(await values(o.mean(a, [0, 1]))).toEqual([3.5]);
        expect(await values(o.mean(a, 1))).toEqual([2, 5]);
        expect(await values(o.max(t([1, 9, 3, -4, -5, -6], [2, 3]), 1))).toEqual([9, -4]);
        expect(o.max(a, [1], true).shape).toEqual([2, 1]);
        const x = t([...Array(24).keys()], [2, 3, 4]);
        expect(await values(o.sum(x, [0, 2]))).toEqual([60, 92, 124]);
      });
    });

    it('gather, topk, oneHot, logSoftmax', async () => {
      const o = get();
      await o.scope(async () => {
        const a = t([1, 2, 3, 4, 5, 6], [3, 2]);
        const g = o.gather(a, o.intTensor([2, 0, 2], [3]));
        expect(g.shape).toEqual([3, 2]);
        expect(await values(g)).toEqual([5, 6, 1, 2, 5, 6]);
        expect(await values(o.gather(a, o.intTensor([1, 0], [2]), 1))).toEqual([2, 1, 4, 3, 6, 5]);
        const g2 = o.gather(a, o.intTensor([0, 1, 2, 2], [2, 2]));
        expect(g2.shape).toEqual([2, 2, 2]);
        expect(await values(g2)).toEqual([1, 2, 3, 4, 5, 6, 5, 6]);
        expect(() => o.gather(a, o.intTensor([3], [1]))).toThrow(ShapeError);
        const { values: tv, indices } = o.topk(t([3, 1, 4, 1, 5, 9, 2, 6], [2, 4]), 2);
        expect(tv.shape).toEqual([2, 2]);
        expect(await values(tv)).toEqual([4, 3, 9, 6]);
        expect(indices.dtype).toBe('int32');
        expect(await values(indices)).toEqual([2, 0, 1, 3]);
        // Ties: the lower index first.
        expect(await values(o.topk(t([1, 2, 2, 0], [4]), 2).indices)).toEqual([1, 2]);
        expect(() => o.topk(t([1, 2], [2]), 3)).toThrow(ShapeError);
        const oh = o.oneHot(o.intTensor([2, 0, 5], [3]), 3);
        expect(oh.dtype).toBe('float32');
        expect(oh.shape).toEqual([3, 3]);
        expect(await values(oh)).toEqual([0, 0, 1, 1, 0, 0, 0, 0, 0]);
        const x = [1000, 1001, 1003];
        const lse = 1000 + Math.log(1 + Math.E + Math.E ** 3);
        close(await values(o.logSoftmax(t(x, [1, 3]))), x.map((v) => v - lse), 1e-5);
      });
    });

    it('many reads in flight and long op chains give the right values', async () => {
      const o = get();
      await o.scope(async () => {
        const base = t([1, 2, 3], [3]);
        const outs = Array.from({ length: 20 }, (_, i) => o.addScalar(o.scale(base, i), 1));
        const read = await Promise.all(outs.map(values));
        read.forEach((r, i) => expect(r).toEqual([i + 1, 2 * i + 1, 3 * i + 1]));
        let acc = t([0, 0], [2]);
        for (let i = 0; i < 300; i++) acc = o.add(acc, t([1, -1], [2]));
        expect(await values(acc)).toEqual([300, -300]);
        // Reading an intermediate after a later result still gives its own values.
        const u = o.mul(base, base);
        const v = o.sum(u);
        expect(await values(v)).toEqual([14]);
        expect(await values(u)).toEqual([1, 4, 9]);
      });
    });

    it('refuses disposed tensors and tensors of other backends', async () => {
      const o = get();
      const a = o.tensor([1], [1]);
      a.dispose();
      expect(a.isDisposed).toBe(true);
      expect(() => o.neg(a)).toThrow(InputError);
      await expect(a.data()).rejects.toThrow(InputError);
      const foreign: Tensor = { shape: [1], dtype: 'float32', isDisposed: false, data: async () => new Float32Array(1), dispose: () => {} };
      expect(() => o.neg(foreign)).toThrow(InputError);
    });

    it('a tensor computed from a disposed one still reads correctly', async () => {
      const o = get();
      const a = o.tensor([1, 2], [2]);
      const b = o.scale(a, 2);
      a.dispose();
      expect(await values(b)).toEqual([2, 4]);
      b.dispose();
    });

    it('scope keeps what the result reaches (tensor, array, object, Map) and frees the rest', async () => {
      const o = get();
      const before = o.numTensors();
      const r = await o.scope(async () => {
        const a = o.tensor([1, 2], [2]);
        const b = o.add(a, a);
        o.mul(b, b);
        await Promise.resolve();
        const inner = await o.scope(() => {
          const x = o.scale(a, 10);
          o.neg(x);
          return { kept: x };
        });
        const m = new Map<string, Tensor>([['b', b]]);
        return { list: [a], m, inner, label: 'x', n: 3 };
      });
      expect(o.numTensors()).toBe(before + 3);
      expect(await values(r.list[0]!)).toEqual([1, 2]);
      expect(await values(r.m.get('b')!)).toEqual([2, 4]);
      expect(await values(r.inner.kept)).toEqual([10, 20]);
      r.list[0]!.dispose(); r.m.get('b')!.dispose(); r.inner.kept.dispose();
      expect(o.numTensors()).toBe(before);
    });

    it('scope disposes everything on throw and rethrows', async () => {
      const o = get();
      const before = o.numTensors();
      let made: Tensor | undefined;
      await expect(o.scope(async () => {
        made = o.tensor([1, 2, 3], [3]);
        o.exp(made);
        await Promise.resolve();
        throw new Error('boom');
      })).rejects.toThrow('boom');
      expect(made!.isDisposed).toBe(true);
      expect(o.numTensors()).toBe(before);
    });

    it('an outer scope frees what an inner scope returned, unless it returns it too', async () => {
      const o = get();
      const before = o.numTensors();
      let innerResult: Tensor | undefined;
      await o.scope(async () => {
        innerResult = await o.scope(() => o.tensor([1], [1]));
        expect(innerResult.isDisposed).toBe(false);
      });
      expect(innerResult!.isDisposed).toBe(true);
      expect(o.numTensors()).toBe(before);
    });

    it('keep() exempts a tensor from the scopes open now; the caller disposes it', async () => {
      const o = get();
      const before = o.numTensors();
      let cached: Tensor | undefined;
      await o.scope(async () => {
        await o.scope(async () => {
          cached = o.keep(o.scale(o.tensor([1, 2], [2]), 3));
          o.tensor([0], [1]);
        });
      });
      expect(cached!.isDisposed).toBe(false);
      expect(await values(cached!)).toEqual([3, 6]);
      expect(o.numTensors()).toBe(before + 1);
      cached!.dispose();
      expect(o.numTensors()).toBe(before);
    });

    it('returning a tensor created outside the scope leaves it alive', async () => {
      const o = get();
      const outside = o.tensor([5], [1]);
      const before = o.numTensors();
      await o.scope(async () => o.scope(() => outside));
      expect(outside.isDisposed).toBe(false);
      expect(o.numTensors()).toBe(before);
      outside.dispose();
    });
  });
}
