// 16-bit weights (HalfWeightTensor, docs/architecture.md "The segment contract") widened to float32 inside a
// segment's graph: Cast, then times the weight's power-of-two scale. Both steps are exact, so the
// segment computes on the very float32 values a widened store would hold. Weights carry no
// cotangent, so there is nothing to pass back.

import { onnxElemType } from '../onnx-graph.js';
import type { GraphBuilder } from '../onnx-graph.js';
import type { OpLowering } from './op.js';

export interface WidenAttrs {
  /** The weight's scale (a power of two; 1: none). */
  readonly scale: number;
}

/** fp16 `x` → float32 x · scale. */
export function widenHalf(g: GraphBuilder, x: string, scale: number): string {
  const y = g.node('Cast', [x], { to: onnxElemType('float32') });
  return scale === 1 ? y : g.node('Mul', [y, g.constF(scale)]);
}

/** inputs: x float16 (a weight, or rows gathered from one) → float32. */
export const widen: OpLowering<WidenAttrs> = {
  name: 'widen',
  forward(g, [x], { scale }) {
    return { outputs: [widenHalf(g, x!, scale)] };
  },
  vjp(_g, ctx) {
    return ctx.inputs.map(() => undefined);
  },
};
