// A plain-JavaScript TensorOps for tests: float64 accumulation, row-major Float32 storage, no
// backend needed. It lets plugin authors run the conformance suites (and sfc's own unit tests)
// without installing TensorFlow.js or onnxruntime. Slow by design; never use it for real work.

import { InputError, ShapeError } from '../errors.js';
import { broadcastShapes, normalizeAxes, releaseScope, shapeToString, sizeOf, type DType, type Shape, type Tensor, type TensorContainer, type TensorOps } from '../tensor.js';

class RefTensor implements Tensor {
  isDisposed = false;
  constructor(
    readonly shape: Shape,
    readonly dtype: DType,
    readonly values: Float32Array | Int32Array,
    private readonly owner: ReferenceOps,
  ) {}

  async data(): Promise<Float32Array | Int32Array> {
    if (this.isDisposed) throw new InputError('data() of a disposed tensor', 'keep the tensor alive (return it from the scope) until you read it');
    return this.values.slice();
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    this.owner.released(this);
  }
}

function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]!; }
  return s;
}



/** Index map from each output element to the element of `shape` it reads (NumPy broadcasting). */
function broadcastIndex(shape: Shape, out: readonly number[]): Int32Array {
  const n = sizeOf(out);
  const idx = new Int32Array(n);
  const inStrides = stridesOf(shape);
  const offset = out.length - shape.length;
  const outStrides = stridesOf(out);
  for (let i = 0; i < n; i++) {
    let rem = i;
    let src = 0;
    for (let d = 0; d < out.length; d++) {
      const c = Math.floor(rem / outStrides[d]!);
      rem -= c * outStrides[d]!;
      const sd = d - offset;
      if (sd >= 0 && shape[sd] !== 1) src += c * inStrides[sd]!;
    }
    idx[i] = src;
  }
  return idx;
}

export class ReferenceOps implements TensorOps {
  private live = 0;
  private readonly scopes: Set<RefTensor>[] = [];

  keep(t: Tensor): Tensor {
    for (const s of this.scopes) s.delete(t as RefTensor);
    return t;
  }

  released(t: RefTensor): void {
    this.live--;
    for (const s of this.scopes) s.delete(t);
  }

  private make(shape: Shape, values: Float32Array | Int32Array, dtype: DType = 'float32'): RefTensor {
    const t = new RefTensor([...shape], dtype, values, this);
    this.live++;
    this.scopes[this.scopes.length - 1]?.add(t);
    return t;
  }

  private v(t: Tensor): Float32Array | Int32Array {
    if (!(t instanceof RefTensor) || t.isDisposed) {
      throw new InputError(t.isDisposed ? 'use of a disposed tensor' : 'tensor from another backend', 'tensors must come from the same ops instance and be alive');
    }
    return t.values;
  }

  private map(a: Tensor, fn: (x: number) => number): Tensor {
    const src = this.v(a);
    const out = new Float32Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = fn(src[i]!);
    return this.make(a.shape, out);
  }

  private zip(ts: readonly Tensor[], fn: (...x: number[]) => number): Tensor {
    const shape = broadcastShapes(ts.map((t) => t.shape));
    const n = sizeOf(shape);
    const srcs = ts.map((t) => this.v(t));
    const idx = ts.map((t) => broadcastIndex(t.shape, shape));
    const out = new Float32Array(n);
    const args = new Array<number>(ts.length);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < ts.length; k++) args[k] = srcs[k]![idx[k]![i]!]!;
      out[i] = fn(...args);
    }
    return this.make(shape, out);
  }

  tensor(values: Float32Array | readonly number[], shape: Shape): Tensor {
    if (values.length !== sizeOf(shape)) throw new ShapeError(`${values.length} values for shape ${shapeToString(shape)}`);
    return this.make(shape, Float32Array.from(values));
  }
  intTensor(values: Int32Array | readonly number[], shape: Shape): Tensor {
    if (values.length !== sizeOf(shape)) throw new ShapeError(`${values.length} values for shape ${shapeToString(shape)}`);
    return this.make(shape, Int32Array.from(values), 'int32');
  }
  zeros(shape: Shape): Tensor { return this.make(shape, new Float32Array(sizeOf(shape))); }
  fill(shape: Shape, value: number): Tensor { return this.make(shape, new Float32Array(sizeOf(shape)).fill(value)); }

  add(a: Tensor, b: Tensor): Tensor { return this.zip([a, b], (x, y) => x! + y!); }
  sub(a: Tensor, b: Tensor): Tensor { return this.zip([a, b], (x, y) => x! - y!); }
  mul(a: Tensor, b: Tensor): Tensor { return this.zip([a, b], (x, y) => x! * y!); }
  div(a: Tensor, b: Tensor): Tensor { return this.zip([a, b], (x, y) => x! / y!); }
  maximum(a: Tensor, b: Tensor): Tensor { return this.zip([a, b], (x, y) => Math.max(x!, y!)); }
  greater(a: Tensor, b: Tensor): Tensor { return this.zip([a, b], (x, y) => (x! > y! ? 1 : 0)); }
  where(mask: Tensor, a: Tensor, b: Tensor): Tensor { return this.zip([mask, a, b], (m, x, y) => (m !== 0 ? x! : y!)); }
  scale(a: Tensor, k: number): Tensor { return this.map(a, (x) => x * k); }
  addScalar(a: Tensor, k: number): Tensor { return this.map(a, (x) => x + k); }
  neg(a: Tensor): Tensor { return this.map(a, (x) => -x); }
  abs(a: Tensor): Tensor { return this.map(a, Math.abs); }
  square(a: Tensor): Tensor { return this.map(a, (x) => x * x); }
  sqrt(a: Tensor): Tensor { return this.map(a, Math.sqrt); }
  exp(a: Tensor): Tensor { return this.map(a, Math.exp); }
  log(a: Tensor): Tensor { return this.map(a, Math.log); }
  relu(a: Tensor): Tensor { return this.map(a, (x) => (x > 0 ? x : 0)); }

  matMul(a: Tensor, b: Tensor): Tensor {
    const av = this.v(a), bv = this.v(b);
    if (a.shape.length < 2 || b.shape.length < 2) throw new ShapeError(`matMul needs rank ≥ 2, got ${shapeToString(a.shape)} @ ${shapeToString(b.shape)}`);
    const n = a.shape[a.shape.length - 2]!, k = a.shape[a.shape.length - 1]!;
    const k2 = b.shape[b.shape.length - 2]!, m = b.shape[b.shape.length - 1]!;
    if (k !== k2) throw new ShapeError(`matMul inner dimensions differ: ${shapeToString(a.shape)} @ ${shapeToString(b.shape)}`);
    const aBatch = a.shape.slice(0, -2), bBatch = b.shape.slice(0, -2);
    const batch = broadcastShapes([aBatch, bBatch]);
    const aIdx = broadcastIndex(aBatch, batch), bIdx = broadcastIndex(bBatch, batch);
    const nb = sizeOf(batch);
    const out = new Float32Array(nb * n * m);
    const acc = new Float64Array(m);
    for (let bi = 0; bi < nb; bi++) {
      const ao = aIdx[bi]! * n * k, bo = bIdx[bi]! * k * m, oo = bi * n * m;
      for (let i = 0; i < n; i++) {
        acc.fill(0);
        for (let p = 0; p < k; p++) {
          const x = av[ao + i * k + p]!;
          if (x === 0) continue;
          const row = bo + p * m;
          for (let j = 0; j < m; j++) acc[j]! += x * bv[row + j]!;
        }
        for (let j = 0; j < m; j++) out[oo + i * m + j] = acc[j]!;
      }
    }
    return this.make([...batch, n, m], out);
  }

  matMulTransposed(a: Tensor, b: Tensor): Tensor {
    const av = this.v(a), bv = this.v(b);
    if (a.shape.length < 2 || b.shape.length !== 2) throw new ShapeError(`matMulTransposed needs a of rank ≥ 2 and a 2-D b, got ${shapeToString(a.shape)} @ ${shapeToString(b.shape)}ᵀ`);
    const k = a.shape[a.shape.length - 1]!, m = b.shape[0]!;
    if (b.shape[1] !== k) throw new ShapeError(`matMulTransposed inner dimensions differ: ${shapeToString(a.shape)} @ ${shapeToString(b.shape)}ᵀ`);
    const rows = sizeOf(a.shape) / k;
    const out = new Float32Array(rows * m);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < m; j++) {
        let acc = 0;
        for (let p = 0; p < k; p++) acc += av[i * k + p]! * bv[j * k + p]!;
        out[i * m + j] = acc;
      }
    }
    return this.make([...a.shape.slice(0, -1), m], out);
  }

  transpose(a: Tensor, perm?: readonly number[]): Tensor {
    const rank = a.shape.length;
    const p = perm ?? [...Array(rank).keys()].reverse();
    const src = this.v(a);
    const outShape = p.map((i) => a.shape[i]!);
    const inStrides = stridesOf(a.shape);
    const outStrides = stridesOf(outShape);
    const out = new (src instanceof Int32Array ? Int32Array : Float32Array)(src.length);
    for (let i = 0; i < src.length; i++) {
      let rem = i, s = 0;
      for (let d = 0; d < rank; d++) {
        const c = Math.floor(rem / outStrides[d]!);
        rem -= c * outStrides[d]!;
        s += c * inStrides[p[d]!]!;
      }
      out[i] = src[s]!;
    }
    return this.make(outShape, out, a.dtype);
  }

  reshape(a: Tensor, shape: Shape): Tensor {
    const n = sizeOf(a.shape);
    const known = shape.filter((d) => d !== -1);
    const resolved = shape.map((d) => (d === -1 ? n / sizeOf(known) : d));
    if (sizeOf(resolved) !== n) throw new ShapeError(`cannot reshape ${shapeToString(a.shape)} to ${shapeToString(shape)}`);
    return this.make(resolved, this.v(a).slice(), a.dtype);
  }

  private reduce(a: Tensor, axes: number | readonly number[] | undefined, keepDims: boolean, init: number,
    step: (acc: number, x: number) => number, finish: (acc: number, count: number) => number): Tensor {
    const src = this.v(a);
    const rank = a.shape.length;
    const ax = normalizeAxes(axes, rank);
    const keptShape = a.shape.map((d, i) => (ax.includes(i) ? 1 : d));
    const outN = sizeOf(keptShape);
    const acc = new Float64Array(outN).fill(init);
    const inStrides = stridesOf(a.shape), keptStrides = stridesOf(keptShape);
    for (let i = 0; i < src.length; i++) {
      let rem = i, o = 0;
      for (let d = 0; d < rank; d++) {
        const c = Math.floor(rem / inStrides[d]!);
        rem -= c * inStrides[d]!;
        if (!ax.includes(d)) o += c * keptStrides[d]!;
      }
      acc[o] = step(acc[o]!, src[i]!);
    }
    const count = ax.reduce((p, d) => p * a.shape[d]!, 1);
    const out = Float32Array.from(acc, (x) => finish(x, count));
    const shape = keepDims ? keptShape : a.shape.filter((_, i) => !ax.includes(i));
    return this.make(shape, out);
  }

  sum(a: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
    return this.reduce(a, axes, keepDims, 0, (s, x) => s + x, (s) => s);
  }
  mean(a: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
    return this.reduce(a, axes, keepDims, 0, (s, x) => s + x, (s, c) => s / c);
  }
  max(a: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
    return this.reduce(a, axes, keepDims, -Infinity, (s, x) => (x > s || Number.isNaN(x) ? x : s), (s) => s);
  }

  gather(a: Tensor, indices: Tensor, axis = 0): Tensor {
    const src = this.v(a);
    const idx = this.v(indices);
    const ax = axis < 0 ? axis + a.shape.length : axis;
    const outer = sizeOf(a.shape.slice(0, ax)), dim = a.shape[ax]!, inner = sizeOf(a.shape.slice(ax + 1));
    const out = new (src instanceof Int32Array ? Int32Array : Float32Array)(outer * idx.length * inner);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < idx.length; j++) {
        const r = idx[j]!;
        if (!Number.isInteger(r) || r < 0 || r >= dim) throw new ShapeError(`gather index ${r} out of range [0, ${dim})`);
        out.set(src.subarray((o * dim + r) * inner, (o * dim + r + 1) * inner), (o * idx.length + j) * inner);
      }
    }
    return this.make([...a.shape.slice(0, ax), ...indices.shape, ...a.shape.slice(ax + 1)], out, a.dtype);
  }

  slice(a: Tensor, begin: readonly number[], size: readonly number[]): Tensor {
    const src = this.v(a);
    const rank = a.shape.length;
    const sz = a.shape.map((d, i) => (size[i] === undefined || size[i] === -1 ? d - (begin[i] ?? 0) : size[i]!));
    const bg = a.shape.map((_, i) => begin[i] ?? 0);
    for (let i = 0; i < rank; i++) {
      if (bg[i]! < 0 || bg[i]! + sz[i]! > a.shape[i]!) throw new ShapeError(`slice [${bg}] + [${sz}] out of ${shapeToString(a.shape)}`);
    }
    const inStrides = stridesOf(a.shape), outStrides = stridesOf(sz);
    const n = sizeOf(sz);
    const out = new (src instanceof Int32Array ? Int32Array : Float32Array)(n);
    for (let i = 0; i < n; i++) {
      let rem = i, s = 0;
      for (let d = 0; d < rank; d++) {
        const c = Math.floor(rem / outStrides[d]!);
        rem -= c * outStrides[d]!;
        s += (c + bg[d]!) * inStrides[d]!;
      }
      out[i] = src[s]!;
    }
    return this.make(sz, out, a.dtype);
  }

  concat(tensors: readonly Tensor[], axis: number): Tensor {
    const first = tensors[0]!;
    const ax = axis < 0 ? axis + first.shape.length : axis;
    const outer = sizeOf(first.shape.slice(0, ax));
    const widths = tensors.map((t) => sizeOf(t.shape.slice(ax)));
    const total = widths.reduce((p, w) => p + w, 0);
    const out = new Float32Array(outer * total);
    for (let o = 0; o < outer; o++) {
      let off = 0;
      tensors.forEach((t, k) => {
        out.set(this.v(t).subarray(o * widths[k]!, (o + 1) * widths[k]!), o * total + off);
        off += widths[k]!;
      });
    }
    const shape = [...first.shape];
    shape[ax] = tensors.reduce((p, t) => p + t.shape[ax]!, 0);
    return this.make(shape, out);
  }

  tile(a: Tensor, reps: readonly number[]): Tensor {
    const outShape = a.shape.map((d, i) => d * (reps[i] ?? 1));
    const src = this.v(a);
    const inStrides = stridesOf(a.shape), outStrides = stridesOf(outShape);
    const n = sizeOf(outShape);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let rem = i, s = 0;
      for (let d = 0; d < outShape.length; d++) {
        const c = Math.floor(rem / outStrides[d]!);
        rem -= c * outStrides[d]!;
        s += (c % a.shape[d]!) * inStrides[d]!;
      }
      out[i] = src[s]!;
    }
    return this.make(outShape, out);
  }

  topk(a: Tensor, k: number): { values: Tensor; indices: Tensor } {
    const src = this.v(a);
    const m = a.shape[a.shape.length - 1]!;
    if (k > m) throw new ShapeError(`topk k=${k} larger than the last axis (${m})`);
    const rows = src.length / m;
    const values = new Float32Array(rows * k);
    const indices = new Int32Array(rows * k);
    const order = new Array<number>(m);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < m; j++) order[j] = j;
      // Largest first; ties keep the lower index first (as tfjs does).
      order.sort((x, y) => src[r * m + y]! - src[r * m + x]! || x - y);
      for (let j = 0; j < k; j++) { values[r * k + j] = src[r * m + order[j]!]!; indices[r * k + j] = order[j]!; }
    }
    const shape = [...a.shape.slice(0, -1), k];
    return { values: this.make(shape, values), indices: this.make(shape, indices, 'int32') };
  }

  oneHot(indices: Tensor, depth: number): Tensor {
    const idx = this.v(indices);
    const out = new Float32Array(idx.length * depth);
    for (let i = 0; i < idx.length; i++) {
      const j = idx[i]!;
      if (j >= 0 && j < depth) out[i * depth + j] = 1;
    }
    return this.make([...indices.shape, depth], out);
  }

  logSoftmax(a: Tensor): Tensor {
    const src = this.v(a);
    const m = a.shape[a.shape.length - 1]!;
    const out = new Float32Array(src.length);
    for (let r = 0; r < src.length / m; r++) {
      let mx = -Infinity;
      for (let j = 0; j < m; j++) mx = Math.max(mx, src[r * m + j]!);
      let s = 0;
      for (let j = 0; j < m; j++) s += Math.exp(src[r * m + j]! - mx);
      const lse = mx + Math.log(s);
      for (let j = 0; j < m; j++) out[r * m + j] = src[r * m + j]! - lse;
    }
    return this.make(a.shape, out);
  }

  async scope<T extends TensorContainer>(fn: () => Promise<T> | T): Promise<T> {
    const mine = new Set<RefTensor>();
    this.scopes.push(mine);
    let result: T;
    try {
      result = await fn();
    } catch (e) {
      this.scopes.pop();
      for (const t of [...mine]) t.dispose();
      throw e;
    }
    this.scopes.pop();
    releaseScope(mine, result, (x): x is RefTensor => x instanceof RefTensor, this.scopes[this.scopes.length - 1] as Set<Tensor> | undefined);
    return result;
  }

  numTensors(): number {
    return this.live;
  }
}


/** A fresh pure-JS TensorOps (each call has its own tensor accounting). */
export function referenceOps(): TensorOps {
  return new ReferenceOps();
}
