// Core's TensorOps on onnxruntime, lazily: each op checks shapes and records a DAG node at once
// (ops stay synchronous, as the interface requires); values are computed when `data()` is awaited
// or a segment consumes the tensor, by one ORT run over everything pending (see executor.ts).
// Handles (`OnnxTensor`) are what scopes, dispose() and numTensors() count; nodes are shared.

import {
  InputError, ShapeError, broadcastShapes, dropped, normalizeAxes, releaseScope, shapeToString, sizeOf,
  type DType, type Shape, type Tensor, type TensorContainer, type TensorOps,
} from '@sfc/core';
import type * as ort from 'onnxruntime-node';
import { ortTensor, type SessionSettings } from '../ort-session.js';
import { LazyExecutor, type ExecutorStats } from './executor.js';
import { LazyNode, type NodeFeed, type Values } from './node.js';

export class OnnxTensor implements Tensor {
  private disposed = false;

  constructor(readonly node: LazyNode, readonly owner: OnnxTensorOps) {
    node.handles++;
  }

  get shape(): Shape { return this.node.shape; }
  get dtype(): DType { return this.node.dtype; }
  get isDisposed(): boolean { return this.disposed; }

  async data(): Promise<Float32Array | Int32Array> {
    if (this.disposed) throw new InputError('data() of a disposed tensor', 'keep the tensor alive (return it from the scope) until you read it');
    await this.owner.executor.materialize([this.node]);
    return this.node.value!.slice();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.node.handles--;
    this.owner.released(this);
  }
}



function checkShape(shape: Shape): number[] {
  for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new ShapeError(`invalid shape ${shapeToString(shape)}`);
  return [...shape];
}

export class OnnxTensorOps implements TensorOps {
  readonly executor: LazyExecutor;
  private live = 0;
  private readonly scopes: Set<OnnxTensor>[] = [];

  constructor(settings: SessionSettings) {
    this.executor = new LazyExecutor(settings);
  }

  get stats(): ExecutorStats { return this.executor.stats; }

  released(t: OnnxTensor): void {
    this.live--;
    // The last handle on a computed value: its array is garbage unless a pending op still reads it.
    if (t.node.handles === 0 && t.node.value) dropped(t.node.value.byteLength);
    for (const s of this.scopes) s.delete(t);
  }

  /** A new handle on `node`, owned by the innermost scope. */
  handle(node: LazyNode): OnnxTensor {
    const t = new OnnxTensor(node, this);
    this.live++;
    this.scopes[this.scopes.length - 1]?.add(t);
    return t;
  }

  /** The node behind a tensor of this backend (throws for foreign or disposed tensors). */
  nodeOf(t: Tensor): LazyNode {
    if (!(t instanceof OnnxTensor) || t.owner !== this) {
      throw new InputError('tensor from another backend or ops instance', 'create every tensor with the ops of the backend that uses it');
    }
    if (t.isDisposed) throw new InputError('use of a disposed tensor', 'keep the tensor alive (return it from the scope) until it is used');
    return t.node;
  }

  /** Computes every pending tensor among `ts` (one run) and returns their ORT tensors. */
  async ortInputs(ts: readonly Tensor[]): Promise<ort.Tensor[]> {
    const nodes = ts.map((t) => this.nodeOf(t));
    await this.executor.materialize(nodes);
    return nodes.map((n) => ortTensor(n.dtype, n.value!, n.shape));
  }

  /** Wraps values produced elsewhere (a segment run) as a concrete tensor. */
  wrap(values: Values, shape: readonly number[]): OnnxTensor {
    const dtype: DType = values instanceof Int32Array ? 'int32' : 'float32';
    return this.handle(LazyNode.of(values, [...shape], dtype));
  }

  private make(op: string, inputs: readonly Tensor[], shape: readonly number[], dtype: DType = 'float32',
    attrs: Record<string, unknown> = {}, feeds: NodeFeed[] = []): OnnxTensor {
    return this.handle(new LazyNode(op, inputs.map((t) => this.nodeOf(t)), attrs, shape, dtype, feeds));
  }

  private zip(op: string, ts: readonly Tensor[]): Tensor {
    return this.make(op, ts, broadcastShapes(ts.map((t) => this.nodeOf(t).shape)));
  }

  private map(op: string, a: Tensor): Tensor {
    return this.make(op, [a], this.nodeOf(a).shape);
  }

  tensor(values: Float32Array | readonly number[], shape: Shape): Tensor {
    return this.adopt(Float32Array.from(values), shape);
  }
  adopt(values: Float32Array, shape: Shape): Tensor {
    if (values.length !== sizeOf(checkShape(shape))) throw new ShapeError(`${values.length} values for shape ${shapeToString(shape)}`);
    return this.wrap(values, shape);
  }
  intTensor(values: Int32Array | readonly number[], shape: Shape): Tensor {
    if (values.length !== sizeOf(checkShape(shape))) throw new ShapeError(`${values.length} values for shape ${shapeToString(shape)}`);
    for (const v of values) if (!Number.isInteger(v)) throw new InputError(`intTensor: ${v} is not an integer`);
    return this.wrap(Int32Array.from(values), shape);
  }
  zeros(shape: Shape): Tensor { return this.wrap(new Float32Array(sizeOf(checkShape(shape))), shape); }
  fill(shape: Shape, value: number): Tensor { return this.wrap(new Float32Array(sizeOf(checkShape(shape))).fill(value), shape); }

  add(a: Tensor, b: Tensor): Tensor { return this.zip('add', [a, b]); }
  sub(a: Tensor, b: Tensor): Tensor { return this.zip('sub', [a, b]); }
  mul(a: Tensor, b: Tensor): Tensor { return this.zip('mul', [a, b]); }
  div(a: Tensor, b: Tensor): Tensor { return this.zip('div', [a, b]); }
  maximum(a: Tensor, b: Tensor): Tensor { return this.zip('maximum', [a, b]); }
  greater(a: Tensor, b: Tensor): Tensor { return this.zip('greater', [a, b]); }
  where(mask: Tensor, a: Tensor, b: Tensor): Tensor { return this.zip('where', [mask, a, b]); }
  scale(a: Tensor, k: number): Tensor {
    return this.make('scale', [a], this.nodeOf(a).shape, 'float32', {}, [{ elem: 'float32', dims: [], data: [k] }]);
  }
  addScalar(a: Tensor, k: number): Tensor {
    return this.make('addScalar', [a], this.nodeOf(a).shape, 'float32', {}, [{ elem: 'float32', dims: [], data: [k] }]);
  }
  neg(a: Tensor): Tensor { return this.map('neg', a); }
  abs(a: Tensor): Tensor { return this.map('abs', a); }
  square(a: Tensor): Tensor { return this.map('square', a); }
  sqrt(a: Tensor): Tensor { return this.map('sqrt', a); }
  exp(a: Tensor): Tensor { return this.map('exp', a); }
  log(a: Tensor): Tensor { return this.map('log', a); }
  relu(a: Tensor): Tensor { return this.map('relu', a); }
  logSoftmax(a: Tensor): Tensor {
    if (this.nodeOf(a).shape.length === 0) throw new ShapeError('logSoftmax needs rank ≥ 1');
    return this.map('logSoftmax', a);
  }

  matMul(a: Tensor, b: Tensor): Tensor {
    const as = this.nodeOf(a).shape, bs = this.nodeOf(b).shape;
    if (as.length < 2 || bs.length < 2) throw new ShapeError(`matMul needs rank ≥ 2, got ${shapeToString(as)} @ ${shapeToString(bs)}`);
    const n = as[as.length - 2]!, k = as[as.length - 1]!, k2 = bs[bs.length - 2]!, m = bs[bs.length - 1]!;
    if (k !== k2) throw new ShapeError(`matMul inner dimensions differ: ${shapeToString(as)} @ ${shapeToString(bs)}`);
    const batch = broadcastShapes([as.slice(0, -2), bs.slice(0, -2)]);
    return this.make('matMul', [a, b], [...batch, n, m]);
  }

  matMulTransposed(a: Tensor, b: Tensor): Tensor {
    const as = this.nodeOf(a).shape, bs = this.nodeOf(b).shape;
    if (as.length < 2 || bs.length !== 2) throw new ShapeError(`matMulTransposed needs a of rank ≥ 2 and a 2-D b, got ${shapeToString(as)} @ ${shapeToString(bs)}ᵀ`);
    if (as[as.length - 1] !== bs[1]) throw new ShapeError(`matMulTransposed inner dimensions differ: ${shapeToString(as)} @ ${shapeToString(bs)}ᵀ`);
    const shape = [...as.slice(0, -1), bs[0]!];
    if (as.length === 2) return this.make('matMulTransposed', [a, b], shape);
    // Gemm is 2-D: rows [-1, k] in, the result shape out (feeds, so one graph serves every size).
    return this.make('matMulTransposed', [a, b], shape, 'float32', {}, [
      { elem: 'int64', dims: [2], data: [-1, bs[1]!] }, { elem: 'int64', dims: [shape.length], data: shape },
    ]);
  }

  transpose(a: Tensor, perm?: readonly number[]): Tensor {
    const node = this.nodeOf(a);
    const rank = node.shape.length;
    const p = perm ? [...perm] : [...Array(rank).keys()].reverse();
    if (p.length !== rank || [...p].sort((x, y) => x - y).some((x, i) => x !== i)) {
      throw new ShapeError(`transpose: [${p.join(', ')}] is not a permutation of ${rank} axes`);
    }
    return this.make('transpose', [a], p.map((i) => node.shape[i]!), node.dtype, { perm: p });
  }

  reshape(a: Tensor, shape: Shape): Tensor {
    const node = this.nodeOf(a);
    const n = sizeOf(node.shape);
    const unknown = shape.filter((d) => d === -1).length;
    const known = sizeOf(shape.filter((d) => d !== -1));
    if (unknown > 1 || shape.some((d) => d !== -1 && (!Number.isInteger(d) || d < 0))) throw new ShapeError(`invalid reshape target ${shapeToString(shape)}`);
    const resolved = shape.map((d) => (d === -1 ? (known === 0 ? 0 : n / known) : d));
    if (sizeOf(resolved) !== n || resolved.some((d) => !Number.isInteger(d))) throw new ShapeError(`cannot reshape ${shapeToString(node.shape)} to ${shapeToString(shape)}`);
    // A concrete tensor is reshaped for free: values are immutable, so the new node shares them.
    if (node.concrete) return this.handle(LazyNode.of(node.value!, resolved, node.dtype));
    return this.make('reshape', [a], resolved, node.dtype, {}, [{ elem: 'int64', dims: [resolved.length], data: resolved }]);
  }

  private reduce(op: string, a: Tensor, axes: number | readonly number[] | undefined, keepDims: boolean): Tensor {
    const shape = this.nodeOf(a).shape;
    const ax = normalizeAxes(axes, shape.length);
    const out = keepDims ? shape.map((d, i) => (ax.includes(i) ? 1 : d)) : shape.filter((_, i) => !ax.includes(i));
    if (op === 'max' && ax.some((i) => shape[i] === 0)) throw new ShapeError(`max over an empty axis of ${shapeToString(shape)}`);
    return this.make(op, [a], out, 'float32', { axes: ax, keepDims });
  }
  sum(a: Tensor, axes?: number | readonly number[], keepDims = false): Tensor { return this.reduce('sum', a, axes, keepDims); }
  mean(a: Tensor, axes?: number | readonly number[], keepDims = false): Tensor { return this.reduce('mean', a, axes, keepDims); }
  max(a: Tensor, axes?: number | readonly number[], keepDims = false): Tensor { return this.reduce('max', a, axes, keepDims); }

  gather(a: Tensor, indices: Tensor, axis = 0): Tensor {
    const node = this.nodeOf(a), idx = this.nodeOf(indices);
    if (idx.dtype !== 'int32') throw new InputError('gather indices must be int32', 'create them with ops.intTensor');
    const rank = node.shape.length;
    const ax = axis < 0 ? axis + rank : axis;
    if (!Number.isInteger(ax) || ax < 0 || ax >= rank) throw new ShapeError(`gather axis ${axis} out of range for ${shapeToString(node.shape)}`);
    if (idx.concrete) {
      const dim = node.shape[ax]!;
      for (const r of idx.value!) if (r < 0 || r >= dim) throw new ShapeError(`gather index ${r} out of range [0, ${dim})`);
    }
    return this.make('gather', [a, indices], [...node.shape.slice(0, ax), ...idx.shape, ...node.shape.slice(ax + 1)], node.dtype, { axis: ax });
  }

  slice(a: Tensor, begin: readonly number[], size: readonly number[]): Tensor {
    const node = this.nodeOf(a);
    const bg = node.shape.map((_, i) => begin[i] ?? 0);
    const sz = node.shape.map((d, i) => (size[i] === undefined || size[i] === -1 ? d - bg[i]! : size[i]!));
    for (let i = 0; i < node.shape.length; i++) {
      if (!Number.isInteger(bg[i]) || !Number.isInteger(sz[i]) || bg[i]! < 0 || sz[i]! < 0 || bg[i]! + sz[i]! > node.shape[i]!) {
        throw new ShapeError(`slice [${bg}] + [${sz}] out of ${shapeToString(node.shape)}`);
      }
    }
    return this.make('slice', [a], sz, node.dtype, {}, [
      { elem: 'int64', dims: [bg.length], data: bg },
      { elem: 'int64', dims: [bg.length], data: bg.map((b, i) => b + sz[i]!) },
    ]);
  }

  concat(tensors: readonly Tensor[], axis: number): Tensor {
    if (tensors.length === 0) throw new ShapeError('concat of no tensors');
    const nodes = tensors.map((t) => this.nodeOf(t));
    const first = nodes[0]!.shape;
    const ax = axis < 0 ? axis + first.length : axis;
    if (!Number.isInteger(ax) || ax < 0 || ax >= first.length) throw new ShapeError(`concat axis ${axis} out of range for rank ${first.length}`);
    for (const n of nodes) {
      if (n.shape.length !== first.length || n.shape.some((d, i) => i !== ax && d !== first[i])) {
        throw new ShapeError(`concat along axis ${ax}: shapes ${nodes.map((x) => shapeToString(x.shape)).join(', ')} differ elsewhere`);
      }
    }
    const shape = [...first];
    shape[ax] = nodes.reduce((p, n) => p + n.shape[ax]!, 0);
    const dtype: DType = nodes.every((n) => n.dtype === 'int32') ? 'int32' : 'float32';
    return this.make('concat', tensors, shape, dtype, { axis: ax });
  }

  tile(a: Tensor, reps: readonly number[]): Tensor {
    const node = this.nodeOf(a);
    if (reps.length > node.shape.length) throw new ShapeError(`tile: ${reps.length} repeats for rank ${node.shape.length}`);
    const r = node.shape.map((_, i) => reps[i] ?? 1);
    if (r.some((x) => !Number.isInteger(x) || x < 0)) throw new ShapeError(`tile: invalid repeats [${reps.join(', ')}]`);
    return this.make('tile', [a], node.shape.map((d, i) => d * r[i]!), node.dtype, {}, [{ elem: 'int64', dims: [r.length], data: r }]);
  }

  topk(a: Tensor, k: number): { values: Tensor; indices: Tensor } {
    const node = this.nodeOf(a);
    const m = node.shape[node.shape.length - 1];
    if (m === undefined) throw new ShapeError('topk needs rank ≥ 1');
    if (!Number.isInteger(k) || k < 0 || k > m) throw new ShapeError(`topk k=${k} larger than the last axis (${m})`);
    const shape = [...node.shape.slice(0, -1), k];
    const t = new LazyNode('topk', [node], {}, shape, 'float32', [{ elem: 'int64', dims: [1], data: [k] }], undefined, true);
    return {
      values: this.handle(new LazyNode('select', [t], { index: 0 }, shape, 'float32')),
      indices: this.handle(new LazyNode('select', [t], { index: 1 }, shape, 'int32')),
    };
  }

  oneHot(indices: Tensor, depth: number): Tensor {
    const node = this.nodeOf(indices);
    if (!Number.isInteger(depth) || depth < 0) throw new ShapeError(`oneHot depth ${depth} must be a non-negative integer`);
    return this.make('oneHot', [indices], [...node.shape, depth], 'float32', {}, [{ elem: 'int32', dims: [], data: [depth] }]);
  }

  async scope<T extends TensorContainer>(fn: () => Promise<T> | T): Promise<T> {
    const mine = new Set<OnnxTensor>();
    this.scopes.push(mine);
    let result: T;
    try {
      result = await fn();
    } catch (e) {
      this.scopes.splice(this.scopes.lastIndexOf(mine), 1);
      for (const t of [...mine]) t.dispose();
      throw e;
    }
    this.scopes.splice(this.scopes.lastIndexOf(mine), 1);
    releaseScope(mine, result, (x): x is OnnxTensor => x instanceof OnnxTensor, this.scopes[this.scopes.length - 1] as Set<Tensor> | undefined);
    return result;
  }

  keep(t: Tensor): Tensor {
    this.nodeOf(t);
    for (const s of this.scopes) s.delete(t as OnnxTensor);
    return t;
  }

  numTensors(): number {
    return this.live;
  }

  dispose(): void {
    this.executor.dispose();
  }
}

