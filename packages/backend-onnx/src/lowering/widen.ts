// 16-bit weights (HalfWeightTensor, docs/architecture.md "The segment contract") widened to float32 inside a
// segment's graph: Cast, then times the weight's power-of-two scale — one for the tensor, or one per
// row (a float32 input broadcast along the row). Both steps are exact, so the segment computes on
// the very float32 values a widened store would hold. Weights carry no cotangent, so there is
// nothing to pass back.

import { onnxElemType } from '../onnx-graph.js';
import type { GraphBuilder } from '../onnx-graph.js';
import type { OpLowering } from './op.js';

/** A 16-bit weight's scale: one power of two, or `rows`: a float32 input of one per row. */
export type HalfScale = number | 'rows';

export interface WidenAttrs {
  /** The weight's scale (a power of two; 1: none), or `rows`: input 1 holds the factors, broadcastable to x. */
  readonly scale: HalfScale;
  /** `rows` on a whole 2-D weight: input 1 is the [rows] vector (made [rows, 1] here). */
  readonly rowVector?: boolean;
}

/** x · scale for a power-of-two scale (exact), or x itself for 1 or none. */
export function timesScale(g: GraphBuilder, x: string, scale: number | undefined): string {
  return scale === undefined || scale === 1 ? x : g.node('Mul', [x, g.constF(scale)]);
}

/** fp16 `x` → float32 x · scale (`factors`: a float32 tensor broadcastable to x, for `rows`). */
export function widenHalf(g: GraphBuilder, x: string, scale: HalfScale, factors?: string): string {
  const y = g.node('Cast', [x], { to: onnxElemType('float32') });
  if (scale === 'rows') {
    if (!factors) throw new Error('internal: per-row widening without factors');
    return g.node('Mul', [y, factors]);
  }
  return timesScale(g, y, scale);
}

/** [rows] factors → [rows, 1], to scale the rows of a [rows, cols] matrix. */
export function rowFactors(g: GraphBuilder, scale: string): string {
  return g.node('Unsqueeze', [scale, g.constI64([1])]);
}

/** inputs: x float16 (a weight, or rows gathered from one), and for `rows` its factors (broadcastable) → float32. */
export const widen: OpLowering<WidenAttrs> = {
  name: 'widen',
  forward(g, [x, factors], { scale, rowVector }) {
    return { outputs: [widenHalf(g, x!, scale, factors && rowVector ? rowFactors(g, factors) : factors)] };
  },
  vjp(_g, ctx) {
    return ctx.inputs.map(() => undefined);
  },
};

/** inputs: per-row scales [V] (a 16-bit table's), ids int32 [...] → the factors of the gathered rows [..., 1]. */
export const gatheredRowFactors: OpLowering<void> = {
  name: 'gatheredRowFactors',
  constantOutputs: true,
  forward(g, [scale, ids]) {
    return { outputs: [g.node('Unsqueeze', [g.node('Gather', [scale!, ids!], { axis: 0 }), g.constI64([-1])])] };
  },
  vjp(_g, ctx) {
    return ctx.inputs.map(() => undefined);
  },
};
