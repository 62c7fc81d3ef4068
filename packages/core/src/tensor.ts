// The tensor handle and the math interface that core algorithms and dictionaries use.
// Backends own the storage; core never reaches into a backend's tensor type.

import { ShapeError } from './errors.js';

export type DType = 'float32' | 'int32';
export type Shape = readonly number[];

export interface Tensor {
  readonly shape: Shape;
  readonly dtype: DType;
  /** Copies the values out (row-major). */
  data(): Promise<Float32Array | Int32Array>;
  dispose(): void;
  readonly isDisposed: boolean;
}

/** Anything a scope may return: its tensors survive the scope, all others created inside are disposed. */
export type TensorContainer = void | Tensor | string | number | boolean | null | undefined
  | TensorContainer[] | { [key: string]: TensorContainer } | Map<string, Tensor>;

/**
 * Element-wise ops broadcast like NumPy. `matMul` multiplies the last two axes
 * (`[..., n, k] @ [k, m]` or batched `[..., n, k] @ [..., k, m]`).
 * All ops are synchronous and return new tensors; only `data()` is asynchronous.
 */
export interface TensorOps {
  tensor(values: Float32Array | readonly number[], shape: Shape): Tensor;
  /**
   * A tensor whose storage is `values` itself where the backend can hold it so (no copy): the
   * caller hands the array over and must not read or write it afterwards. For weights loaded
   * once, it saves a copy of each and the garbage it leaves behind at load. Backends without it:
   * use `tensor` (a copy).
   */
  adopt?(values: Float32Array, shape: Shape): Tensor;
  intTensor(values: Int32Array | readonly number[], shape: Shape): Tensor;
  zeros(shape: Shape): Tensor;
  fill(shape: Shape, value: number): Tensor;

  add(a: Tensor, b: Tensor): Tensor;
  sub(a: Tensor, b: Tensor): Tensor;
  mul(a: Tensor, b: Tensor): Tensor;
  div(a: Tensor, b: Tensor): Tensor;
  scale(a: Tensor, k: number): Tensor;
  addScalar(a: Tensor, k: number): Tensor;
  maximum(a: Tensor, b: Tensor): Tensor;
  neg(a: Tensor): Tensor;
  abs(a: Tensor): Tensor;
  square(a: Tensor): Tensor;
  sqrt(a: Tensor): Tensor;
  exp(a: Tensor): Tensor;
  log(a: Tensor): Tensor;
  relu(a: Tensor): Tensor;
  /** 1 where a > b else 0, as float32. */
  greater(a: Tensor, b: Tensor): Tensor;
  /** mask (float 0/1 or any nonzero) ? a : b */
  where(mask: Tensor, a: Tensor, b: Tensor): Tensor;

  matMul(a: Tensor, b: Tensor): Tensor;
  /**
   * a · bᵀ for a [..., n, k] and a 2-D b [m, k]: [..., n, m]. Multiplies with a stored matrix's
   * transpose (an SAE's W_dec or W_enc) without the caller materializing it; how is the backend's
   * choice (onnx: Gemm with transB, no copy; tfjs: transposes the smaller operand).
   */
  matMulTransposed(a: Tensor, b: Tensor): Tensor;
  transpose(a: Tensor, perm?: readonly number[]): Tensor;
  reshape(a: Tensor, shape: Shape): Tensor;
  sum(a: Tensor, axes?: number | readonly number[], keepDims?: boolean): Tensor;
  mean(a: Tensor, axes?: number | readonly number[], keepDims?: boolean): Tensor;
  max(a: Tensor, axes?: number | readonly number[], keepDims?: boolean): Tensor;
  /** Rows of `a` along `axis` at `indices` (int32). */
  gather(a: Tensor, indices: Tensor, axis?: number): Tensor;
  slice(a: Tensor, begin: readonly number[], size: readonly number[]): Tensor;
  concat(tensors: readonly Tensor[], axis: number): Tensor;
  /** Repeats along each axis. */
  tile(a: Tensor, reps: readonly number[]): Tensor;
  /** Largest k along the last axis. */
  topk(a: Tensor, k: number): { values: Tensor; indices: Tensor };
  /** One-hot rows: [n] int32 → [n, depth] float32. */
  oneHot(indices: Tensor, depth: number): Tensor;
  logSoftmax(a: Tensor): Tensor;

  /**
   * Runs `fn`; every tensor created inside and not reachable from its result is disposed
   * when it settles (also on throw). Scopes nest; runs must not interleave.
   */
  scope<T extends TensorContainer>(fn: () => Promise<T> | T): Promise<T>;
  /**
   * Exempts `t` from disposal by the scopes open now (the caller owns it and disposes it):
   * for caches built lazily inside someone else's scope. Returns `t`.
   */
  keep(t: Tensor): Tensor;
  /** Live tensor count, for leak tests. */
  numTensors(): number;
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeToString(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** Reduction axes → sorted, unique, non-negative; undefined means every axis. */
export function normalizeAxes(axes: number | readonly number[] | undefined, rank: number): number[] {
  const list = axes === undefined ? [...Array(rank).keys()] : typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => {
    const x = a < 0 ? a + rank : a;
    if (!Number.isInteger(x) || x < 0 || x >= rank) throw new ShapeError(`axis ${a} out of range for rank ${rank}`);
    return x;
  });
  return [...new Set(out)].sort((a, b) => a - b);
}

/** The NumPy broadcast of several shapes; ShapeError when they do not broadcast. */
export function broadcastShapes(shapes: readonly Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i]!;
      if (out[o] === 1) out[o] = d;
      else if (d !== 1 && d !== out[o]) throw new ShapeError(`cannot broadcast shapes ${shapes.map(shapeToString).join(' and ')}`);
    }
  }
  return out;
}

/** Every tensor reachable from a scope's result (`isTensor` recognises the backend's own tensors). */
export function tensorsInContainer(c: TensorContainer, isTensor: (x: object) => x is Tensor, out = new Set<Tensor>()): Set<Tensor> {
  if (c === null || c === undefined || typeof c !== 'object') return out;
  if (isTensor(c)) { out.add(c); return out; }
  if (c instanceof Map) { for (const v of c.values()) out.add(v); return out; }
  if (Array.isArray(c)) { for (const v of c) tensorsInContainer(v, isTensor, out); return out; }
  for (const v of Object.values(c as Record<string, TensorContainer>)) tensorsInContainer(v, isTensor, out);
  return out;
}

/**
 * Closes a scope for backends that track tensors themselves: tensors of `owned` reachable from
 * `result` move to the enclosing scope (`parent`), all others are disposed.
 */
export function releaseScope(owned: Iterable<Tensor>, result: TensorContainer, isTensor: (x: object) => x is Tensor,
  parent: Set<Tensor> | undefined): void {
  const keep = tensorsInContainer(result, isTensor);
  for (const t of [...owned]) {
    if (keep.has(t)) parent?.add(t);
    else t.dispose();
  }
}
