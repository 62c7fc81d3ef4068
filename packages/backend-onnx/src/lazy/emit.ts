// ONNX lowering of each TensorOps op for the lazy engine: one emitter per op name, writing the
// node(s) for one DAG node into a graph. Arithmetic follows core's reference semantics: integer
// inputs are promoted to float32, reductions and element-wise results are float32.

import { onnxElemType, type GraphBuilder } from '../onnx-graph.js';
import type { LazyNode } from './node.js';

type Emit = (g: GraphBuilder, ins: readonly string[], n: LazyNode, feeds: readonly string[], inputNodes: readonly LazyNode[]) => string[];

const FLOAT = onnxElemType('float32');
const INT32 = onnxElemType('int32');
const BOOL = onnxElemType('bool');

/** Input i as float32 (a Cast when it is an int32 tensor). */
function fl(g: GraphBuilder, ins: readonly string[], nodes: readonly LazyNode[], i: number): string {
  return nodes[i]!.dtype === 'float32' ? ins[i]! : g.node('Cast', [ins[i]!], { to: FLOAT });
}

const binary = (opType: string): Emit => (g, ins, _n, _f, nodes) => [g.node(opType, [fl(g, ins, nodes, 0), fl(g, ins, nodes, 1)])];
const unary = (opType: string): Emit => (g, ins, _n, _f, nodes) => [g.node(opType, [fl(g, ins, nodes, 0)])];

function reduce(opType: string): Emit {
  return (g, ins, n, _f, nodes) => {
    const axes = n.attrs.axes as number[];
    const x = fl(g, ins, nodes, 0);
    if (axes.length === 0) return [g.node('Identity', [x])];
    return [g.node(opType, [x, g.constI64(axes)], { keepdims: n.attrs.keepDims ? 1 : 0 })];
  };
}

export const EMITTERS: Readonly<Record<string, Emit>> = {
  add: binary('Add'),
  sub: binary('Sub'),
  mul: binary('Mul'),
  div: binary('Div'),
  maximum: binary('Max'),
  greater: (g, ins, _n, _f, nodes) => [g.node('Cast', [g.node('Greater', [fl(g, ins, nodes, 0), fl(g, ins, nodes, 1)])], { to: FLOAT })],
  where: (g, ins, _n, _f, nodes) => [g.node('Where', [g.node('Cast', [ins[0]!], { to: BOOL }), fl(g, ins, nodes, 1), fl(g, ins, nodes, 2)])],
  scale: (g, ins, _n, feeds, nodes) => [g.node('Mul', [fl(g, ins, nodes, 0), feeds[0]!])],
  addScalar: (g, ins, _n, feeds, nodes) => [g.node('Add', [fl(g, ins, nodes, 0), feeds[0]!])],
  neg: unary('Neg'),
  abs: unary('Abs'),
  sqrt: unary('Sqrt'),
  exp: unary('Exp'),
  log: unary('Log'),
  relu: unary('Relu'),
  square: (g, ins, _n, _f, nodes) => { const x = fl(g, ins, nodes, 0); return [g.node('Mul', [x, x])]; },
  matMul: binary('MatMul'),
  // Gemm multiplies by bᵀ inside MLAS's packing: no [m, k] transpose is ever materialized.
  matMulTransposed: (g, ins, n, feeds, nodes) => {
    const a = fl(g, ins, nodes, 0), b = fl(g, ins, nodes, 1);
    if (n.shape.length === 2) return [g.node('Gemm', [a, b], { transB: 1 })];
    const rows = g.node('Reshape', [a, feeds[0]!]);
    return [g.node('Reshape', [g.node('Gemm', [rows, b], { transB: 1 }), feeds[1]!])];
  },
  transpose: (g, ins, n) => [g.node('Transpose', [ins[0]!], { perm: n.attrs.perm as number[] })],
  reshape: (g, ins, _n, feeds) => [g.node('Reshape', [ins[0]!, feeds[0]!])],
  sum: reduce('ReduceSum'),
  mean: reduce('ReduceMean'),
  max: reduce('ReduceMax'),
  gather: (g, ins, n) => [g.node('Gather', [ins[0]!, ins[1]!], { axis: n.attrs.axis as number })],
  slice: (g, ins, n, feeds) => [g.node('Slice', [ins[0]!, feeds[0]!, feeds[1]!, g.constI64([...Array(n.shape.length).keys()])])],
  concat: (g, ins, n, _f, nodes) => {
    const float = n.dtype === 'float32';
    return [g.node('Concat', ins.map((_, i) => (float ? fl(g, ins, nodes, i) : ins[i]!)), { axis: n.attrs.axis as number })];
  },
  tile: (g, ins, _n, feeds) => [g.node('Tile', [ins[0]!, feeds[0]!])],
  topk: (g, ins, _n, feeds, nodes) => {
    const [values, indices] = g.nodeN('TopK', [fl(g, ins, nodes, 0), feeds[0]!], { axis: -1, largest: 1, sorted: 1 }, 2);
    return [values!, g.node('Cast', [indices!], { to: INT32 })];
  },
  select: () => { throw new Error('internal: select is resolved by the compiler'); },
  oneHot: (g, ins, _n, feeds) => {
    const idx = g.node('Cast', [ins[0]!], { to: INT32 });
    const range = g.node('Range', [g.constI32(0), feeds[0]!, g.constI32(1)]);
    return [g.node('Cast', [g.node('Equal', [g.node('Unsqueeze', [idx, g.constI64([-1])]), range])], { to: FLOAT })];
  },
  logSoftmax: (g, ins, _n, _f, nodes) => [g.node('LogSoftmax', [fl(g, ins, nodes, 0)], { axis: -1 })],
};
