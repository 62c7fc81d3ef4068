// Runs a single lowered op (or a small Program) on onnxruntime for tests: forward, and VJP
// against float64 finite differences of a plain-JS reference.

import * as ort from 'onnxruntime-node';
import type { ElemType } from '../onnx-graph.js';
import { Program, type Value } from '../lowering/op.js';
import { numericalVjp, randn, relErr, type T64, t64 } from './reference-math.js';

export interface CaseInput {
  readonly name: string;
  readonly elem: ElemType;
  readonly shape: readonly number[];
  readonly data: ArrayLike<number>;
  readonly differentiable: boolean;
}

export interface OpCase {
  readonly name: string;
  readonly inputs: readonly CaseInput[];
  build(p: Program, values: readonly Value[]): Value;
  readonly outShape: readonly number[];
  reference(xs: readonly T64[]): T64;
}

const opts = { intraOpNumThreads: 1, logSeverityLevel: 3 as const };

function feed(i: CaseInput): ort.Tensor {
  const shape = [...i.shape];
  switch (i.elem) {
    case 'float32': return new ort.Tensor('float32', Float32Array.from(i.data), shape);
    case 'int32': return new ort.Tensor('int32', Int32Array.from(i.data), shape);
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from(Array.from(i.data, (x) => BigInt(x))), shape);
    case 'bool': throw new Error('no bool inputs in tests');
  }
}

function program(c: OpCase): Program {
  const p = new Program(c.name);
  const vals = c.inputs.map((i) => p.input(i.name, i.elem, i.shape.map((_, k) => `${i.name}_${k}`), i.differentiable));
  p.setOutput(c.build(p, vals), 'float32', c.outShape.map((_, k) => `y_${k}`));
  return p;
}

export async function runForward(c: OpCase): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(program(c).compileForward().encode(), opts);
  const out = await s.run(Object.fromEntries(c.inputs.map((i) => [i.name, feed(i)])));
  await s.release();
  return out.y!.data as Float32Array;
}

export async function runVjp(c: OpCase, cot: Float32Array): Promise<Float32Array[]> {
  const { graph, outputs } = program(c).compileVjp();
  const s = await ort.InferenceSession.create(graph.encode(), opts);
  const feeds: Record<string, ort.Tensor> = Object.fromEntries(c.inputs.map((i) => [i.name, feed(i)]));
  feeds.dy = new ort.Tensor('float32', cot, [...c.outShape]);
  const out = await s.run(feeds);
  await s.release();
  return outputs.map((n) => out[n]!.data as Float32Array);
}

export interface CheckResult { forwardErr: number; vjpErr: number[] }

/** Forward vs the float64 reference; VJP vs central differences of the reference (relative to max |expected|). */
export async function checkOp(c: OpCase, seed = 7): Promise<CheckResult> {
  const xs = c.inputs.map((i) => t64(i.shape, i.data));
  const expected = c.reference(xs);
  const forward = await runForward(c);
  const forwardErr = relErr(forward, expected.data);
  const cot = Float32Array.from(randn(seed, expected.data.length));
  const wrt = c.inputs.flatMap((i, k) => (i.differentiable ? [k] : []));
  if (wrt.length === 0) return { forwardErr, vjpErr: [] };
  const vjp = await runVjp(c, cot);
  const numeric = numericalVjp((a) => c.reference(a), xs, cot, wrt);
  return { forwardErr, vjpErr: vjp.map((g, k) => relErr(g, numeric[k]!)) };
}
