// RMS normalization over the last axis, as transformers computes it in float32:
// Llama, Mistral, Qwen:  y = w ⊙ (x·r)          r = 1/√(mean(x²) + ε)
// Gemma (unitOffset):    y = (1 + w) ⊙ (x·r)
// Also the per-head q/k norms (Qwen3, Gemma 3): x [b, h, s, hd] with w [hd].
// VJP with w' the applied scale, x̂ = x·r, ĝ = dy ⊙ w':  dx = r·(ĝ − x̂·mean(ĝ ⊙ x̂)).

import type { GraphBuilder } from '../onnx-graph.js';
import type { OpLowering } from './op.js';

export interface RmsNormAttrs {
  readonly eps: number;
  /** Gemma's (1 + w) scale instead of w. */
  readonly unitOffset: boolean;
}

function meanLast(g: GraphBuilder, x: string): string {
  return g.node('ReduceMean', [x, g.constI64([-1])], { keepdims: 1 });
}

/** inputs: x [..., d], weight [d] */
export const rmsNorm: OpLowering<RmsNormAttrs> = {
  name: 'rmsNorm',
  forward(g, [x, w], { eps, unitOffset }) {
    const r = g.node('Reciprocal', [g.node('Sqrt', [g.node('Add', [meanLast(g, g.node('Mul', [x!, x!])), g.constF(eps)])])]);
    const xhat = g.node('Mul', [x!, r]);
    const scale = unitOffset ? g.node('Add', [w!, g.constF(1)]) : w!;
    return { outputs: [g.node('Mul', [xhat, scale])], saved: { r, xhat, scale } };
  },
  vjp(g, { saved: { r, xhat, scale } }, [dy]) {
    const gh = g.node('Mul', [dy!, scale!]);
    const m = meanLast(g, g.node('Mul', [gh, xhat!]));
    return [g.node('Mul', [g.node('Sub', [gh, g.node('Mul', [xhat!, m])]), r!]), undefined];
  },
};
