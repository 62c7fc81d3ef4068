// core's TensorOps on TensorFlow.js: every op of the interface, NumPy broadcasting, typed
// errors for bad shapes, and async scopes on tfjs's own scope stack (startScope/endScope).

import * as tf from '@tensorflow/tfjs';
import {
  BackendError, InputError, ShapeError, SfcError, shapeToString, sizeOf,
  type Shape, type Tensor, type TensorContainer, type TensorOps,
} from '@sfc/core';
import { TfTensor, tensorsIn, unwrap } from './handle.js';

type Axes = number | readonly number[] | undefined;

function broadcastShape(a: Shape, b: Shape, what: string): void {
  const rank = Math.max(a.length, b.length);
  for (let i = 1; i <= rank; i++) {
    const x = a[a.length - i] ?? 1, y = b[b.length - i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new ShapeError(`${what}: cannot broadcast ${shapeToString(a)} with ${shapeToString(b)}`);
  }
}

function normAxes(axes: Axes, rank: number, what: string): number[] | undefined {
  if (axes === undefined) return undefined;
  const list = typeof axes === 'number' ? [axes] : [...axes];
  return list.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= rank) throw new ShapeError(`${what}: axis ${a} out of range for rank ${rank}`);
    return a < 0 ? a + rank : a;
  });
}

export class TfjsOps implements TensorOps {
  constructor(private readonly copyData: boolean) {}

  /** Wraps a tf result; `fn` runs in a tidy so intermediates of compound ops are freed. */
  private run(what: string, fn: () => tf.Tensor): Tensor {
    try {
      return new TfTensor(tf.tidy(fn), this.copyData);
    } catch (e) {
      if (e instanceof SfcError) throw e;
      throw new BackendError(`${what} failed in TensorFlow.js: ${(e as Error).message}`, 'check the shapes and dtypes passed to this op', { cause: e });
    }
  }

  /** Arithmetic is float32 throughout (as in core's reference ops): int32 operands are cast. */
  private f(t: Tensor, what: string): tf.Tensor {
    const x = unwrap(t, what);
    return x.dtype === 'float32' ? x : tf.cast(x, 'float32');
  }

  private binary(what: string, a: Tensor, b: Tensor, fn: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor): Tensor {
    broadcastShape(a.shape, b.shape, what);
    return this.run(what, () => fn(this.f(a, what), this.f(b, what)));
  }

  private unary(what: string, a: Tensor, fn: (x: tf.Tensor) => tf.Tensor): Tensor {
    return this.run(what, () => fn(this.f(a, what)));
  }

  wrap(t: tf.Tensor): Tensor {
    return new TfTensor(t, this.copyData);
  }

  tensor(values: Float32Array | readonly number[], shape: Shape): Tensor {
    if (values.length !== sizeOf(shape)) throw new ShapeError(`tensor: ${values.length} values for shape ${shapeToString(shape)}`);
    // Copy: tfjs-cpu keeps the caller's array as its storage, so a later write by the caller would change the tensor.
    return this.adopt(values instanceof Float32Array && !this.copyData ? values : Float32Array.from(values), shape);
  }

  adopt(values: Float32Array, shape: Shape): Tensor {
    if (values.length !== sizeOf(shape)) throw new ShapeError(`adopt: ${values.length} values for shape ${shapeToString(shape)}`);
    return this.run('tensor', () => tf.tensor(values, [...shape], 'float32'));
  }

  intTensor(values: Int32Array | readonly number[], shape: Shape): Tensor {
    if (values.length !== sizeOf(shape)) throw new ShapeError(`intTensor: ${values.length} values for shape ${shapeToString(shape)}`);
    for (const x of values) if (!Number.isInteger(x)) throw new InputError(`intTensor: ${x} is not an integer`);
    const v = values instanceof Int32Array && !this.copyData ? values : Int32Array.from(values);
    return this.run('intTensor', () => tf.tensor(v, [...shape], 'int32'));
  }

  zeros(shape: Shape): Tensor { return this.run('zeros', () => tf.zeros([...shape], 'float32')); }
  fill(shape: Shape, value: number): Tensor { return this.run('fill', () => tf.fill([...shape], value, 'float32')); }

  add(a: Tensor, b: Tensor): Tensor { return this.binary('add', a, b, tf.add); }
  sub(a: Tensor, b: Tensor): Tensor { return this.binary('sub', a, b, tf.sub); }
  mul(a: Tensor, b: Tensor): Tensor { return this.binary('mul', a, b, tf.mul); }
  div(a: Tensor, b: Tensor): Tensor { return this.binary('div', a, b, tf.div); }
  maximum(a: Tensor, b: Tensor): Tensor { return this.binary('maximum', a, b, tf.maximum); }
  greater(a: Tensor, b: Tensor): Tensor { return this.binary('greater', a, b, (x, y) => tf.cast(tf.greater(x, y), 'float32')); }

  where(mask: Tensor, a: Tensor, b: Tensor): Tensor {
    broadcastShape(mask.shape, a.shape, 'where');
    broadcastShape(mask.shape, b.shape, 'where');
    broadcastShape(a.shape, b.shape, 'where');
    return this.run('where', () => tf.where(tf.notEqual(this.f(mask, 'where'), 0), this.f(a, 'where'), this.f(b, 'where')));
  }

  scale(a: Tensor, k: number): Tensor { return this.unary('scale', a, (x) => tf.mul(x, tf.scalar(k))); }
  addScalar(a: Tensor, k: number): Tensor { return this.unary('addScalar', a, (x) => tf.add(x, tf.scalar(k))); }
  neg(a: Tensor): Tensor { return this.unary('neg', a, tf.neg); }
  abs(a: Tensor): Tensor { return this.unary('abs', a, tf.abs); }
  square(a: Tensor): Tensor { return this.unary('square', a, tf.square); }
  sqrt(a: Tensor): Tensor { return this.unary('sqrt', a, tf.sqrt); }
  exp(a: Tensor): Tensor { return this.unary('exp', a, tf.exp); }
  log(a: Tensor): Tensor { return this.unary('log', a, tf.log); }
  relu(a: Tensor): Tensor { return this.unary('relu', a, tf.relu); }

  matMul(a: Tensor, b: Tensor): Tensor {
    const ra = a.shape.length, rb = b.shape.length;
    if (ra < 2 || rb < 2) throw new ShapeError(`matMul needs rank ≥ 2, got ${shapeToString(a.shape)} @ ${shapeToString(b.shape)}`);
    const n = a.shape[ra - 2]!, k = a.shape[ra - 1]!, m = b.shape[rb - 1]!;
    if (k !== b.shape[rb - 2]) throw new ShapeError(`matMul inner dimensions differ: ${shapeToString(a.shape)} @ ${shapeToString(b.shape)}`);
    broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matMul batch');
    return this.run('matMul', () => {
      const x = this.f(a, 'matMul'), y = this.f(b, 'matMul');
      // [..., n, k] @ [k, m] as one 2-D product: the fastest kernel path on every flavor.
      if (rb === 2 && ra > 2) return tf.reshape(tf.matMul(tf.reshape(x, [-1, k]), y), [...a.shape.slice(0, -1), m]);
      if (ra === rb) return tf.matMul(x, y);
      // Different ranks: give both the same rank (leading 1s) so tfjs broadcasts the batch axes.
      const rank = Math.max(ra, rb);
      const pad = (t: tf.Tensor, r: number) => (r === rank ? t : tf.reshape(t, [...new Array<number>(rank - r).fill(1), ...t.shape]));
      const out = tf.matMul(pad(x, ra), pad(y, rb));
      return rank === 2 ? out : tf.reshape(out, [...out.shape.slice(0, -2), n, m]);
    });
  }

  matMulTransposed(a: Tensor, b: Tensor): Tensor {
    const ra = a.shape.length;
    if (ra < 2 || b.shape.length !== 2) throw new ShapeError(`matMulTransposed needs a of rank ≥ 2 and a 2-D b, got ${shapeToString(a.shape)} @ ${shapeToString(b.shape)}ᵀ`);
    const k = a.shape[ra - 1]!, m = b.shape[0]!;
    if (b.shape[1] !== k) throw new ShapeError(`matMulTransposed inner dimensions differ: ${shapeToString(a.shape)} @ ${shapeToString(b.shape)}ᵀ`);
    const rows = sizeOf(a.shape) / k;
    return this.run('matMulTransposed', () => {
      const x = tf.reshape(this.f(a, 'matMulTransposed'), [rows, k]), y = this.f(b, 'matMulTransposed');
      // tfjs-wasm is ~15x slower with a transpose flag than with an explicit transpose, so transpose
      // whichever side moves fewer values: bᵀ (m·k), or a and the result ((a·bᵀ)ᵀ = b·aᵀ: rows·(k + m)).
      const out = rows * (k + m) < m * k
        ? tf.transpose(tf.matMul(y, tf.transpose(x)))
        : tf.matMul(x, tf.transpose(y));
      return tf.reshape(out, [...a.shape.slice(0, -1), m]);
    });
  }

  transpose(a: Tensor, perm?: readonly number[]): Tensor {
    if (perm && (perm.length !== a.shape.length || [...perm].sort((x, y) => x - y).some((p, i) => p !== i))) {
      throw new ShapeError(`transpose: [${perm.join(', ')}] is not a permutation of the axes of ${shapeToString(a.shape)}`);
    }
    return this.run('transpose', () => tf.transpose(unwrap(a, 'transpose'), perm ? [...perm] : undefined));
  }

  reshape(a: Tensor, shape: Shape): Tensor {
    const n = sizeOf(a.shape);
    const free = shape.filter((d) => d === -1).length;
    const known = sizeOf(shape.filter((d) => d !== -1));
    if (free > 1 || (free === 0 ? known !== n : known === 0 || n % known !== 0) || shape.some((d) => d < -1 || !Number.isInteger(d))) {
      throw new ShapeError(`cannot reshape ${shapeToString(a.shape)} to ${shapeToString(shape)}`);
    }
    return this.run('reshape', () => tf.reshape(unwrap(a, 'reshape'), [...shape]));
  }

  sum(a: Tensor, axes?: Axes, keepDims = false): Tensor {
    const ax = normAxes(axes, a.shape.length, 'sum');
    return this.unary('sum', a, (x) => tf.sum(x, ax, keepDims));
  }
  mean(a: Tensor, axes?: Axes, keepDims = false): Tensor {
    const ax = normAxes(axes, a.shape.length, 'mean');
    return this.unary('mean', a, (x) => tf.mean(x, ax, keepDims));
  }
  max(a: Tensor, axes?: Axes, keepDims = false): Tensor {
    const ax = normAxes(axes, a.shape.length, 'max');
    return this.unary('max', a, (x) => tf.max(x, ax, keepDims));
  }

  gather(a: Tensor, indices: Tensor, axis = 0): Tensor {
    const ax = normAxes(axis, a.shape.length, 'gather')![0]!;
    const idx = unwrap(indices, 'gather');
    if (idx.dtype !== 'int32') throw new InputError('gather: indices must be int32', 'create them with ops.intTensor');
    // Some kernels (wasm) read out-of-range indices silently; check on the host (indices are small).
    const dim = a.shape[ax]!;
    for (const r of idx.dataSync()) if (r < 0 || r >= dim) throw new ShapeError(`gather index ${r} out of range [0, ${dim})`);
    return this.run('gather', () => tf.gather(unwrap(a, 'gather'), idx, ax));
  }

  slice(a: Tensor, begin: readonly number[], size: readonly number[]): Tensor {
    const bg = a.shape.map((_, i) => begin[i] ?? 0);
    const sz = a.shape.map((d, i) => (size[i] === undefined || size[i] === -1 ? d - bg[i]! : size[i]!));
    a.shape.forEach((d, i) => {
      if (bg[i]! < 0 || sz[i]! < 0 || bg[i]! + sz[i]! > d) throw new ShapeError(`slice [${bg.join(', ')}] + [${sz.join(', ')}] out of ${shapeToString(a.shape)}`);
    });
    return this.run('slice', () => tf.slice(unwrap(a, 'slice'), bg, sz));
  }

  concat(tensors: readonly Tensor[], axis: number): Tensor {
    if (tensors.length === 0) throw new InputError('concat of no tensors');
    const first = tensors[0]!;
    const ax = normAxes(axis, first.shape.length, 'concat')![0]!;
    for (const t of tensors) {
      if (t.shape.length !== first.shape.length || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
        throw new ShapeError(`concat along axis ${ax}: ${tensors.map((x) => shapeToString(x.shape)).join(', ')} do not match`);
      }
    }
    const mixed = tensors.some((t) => t.dtype !== first.dtype);
    return this.run('concat', () => tf.concat(tensors.map((t) => (mixed ? this.f(t, 'concat') : unwrap(t, 'concat'))), ax));
  }

  tile(a: Tensor, reps: readonly number[]): Tensor {
    if (reps.length > a.shape.length || reps.some((r) => !Number.isInteger(r) || r < 1)) {
      throw new ShapeError(`tile: reps [${reps.join(', ')}] do not fit ${shapeToString(a.shape)}`);
    }
    const full = a.shape.map((_, i) => reps[i] ?? 1);
    return this.run('tile', () => tf.tile(unwrap(a, 'tile'), full));
  }

  topk(a: Tensor, k: number): { values: Tensor; indices: Tensor } {
    const m = a.shape[a.shape.length - 1]!;
    if (!Number.isInteger(k) || k < 1 || k > m) throw new ShapeError(`topk k=${k} does not fit the last axis (${m})`);
    try {
      const [values, indices] = tf.tidy(() => {
        const r = tf.topk(this.f(a, 'topk'), k, true);
        return [r.values, r.indices];
      });
      return { values: this.wrap(values!), indices: this.wrap(indices!) };
    } catch (e) {
      if (e instanceof SfcError) throw e;
      throw new BackendError(`topk failed in TensorFlow.js: ${(e as Error).message}`, undefined, { cause: e });
    }
  }

  oneHot(indices: Tensor, depth: number): Tensor {
    const idx = unwrap(indices, 'oneHot');
    if (idx.dtype !== 'int32') throw new InputError('oneHot: indices must be int32', 'create them with ops.intTensor');
    return this.run('oneHot', () => tf.cast(tf.oneHot(idx, depth), 'float32'));
  }

  logSoftmax(a: Tensor): Tensor { return this.unary('logSoftmax', a, (x) => tf.logSoftmax(x)); }

  /**
   * tfjs scopes form one global stack, so async scopes must close in LIFO order. A scope that
   * finds another scope still open on top of it when it settles throws a BackendError instead of
   * freeing the other scope's tensors; its own scope then stays open (its tensors are not freed).
   */
  async scope<T extends TensorContainer>(fn: () => Promise<T> | T): Promise<T> {
    const engine = tf.engine();
    engine.startScope('sfc.scope');
    const mine = engine.state.activeScope;
    const closeCheck = () => {
      if (engine.state.activeScope !== mine) {
        throw new BackendError('ops.scope runs interleaved (two scopes were open concurrently)',
          'await each scope before starting the next one; do not run scopes in parallel (Promise.all) on one tfjs engine');
      }
    };
    let result: T;
    try {
      result = await fn();
    } catch (e) {
      closeCheck();
      engine.endScope();
      throw e;
    }
    closeCheck();
    engine.endScope(tensorsIn(result));
    return result;
  }

  keep(t: Tensor): Tensor {
    tf.keep(unwrap(t, 'keep'));
    return t;
  }

  numTensors(): number {
    return tf.memory().numTensors;
  }
}
