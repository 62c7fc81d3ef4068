// RMS normalization over the last axis, as transformers computes it in float32:
// Llama, Mistral, Qwen:  y = w ⊙ (x·r)          r = 1/√(mean(x²) + ε)
// Gemma (unitOffset):    y = (1 + w) ⊙ (x·r)
// Also the per-head q/k norms (Qwen3, Gemma 3): x [b, h, s, hd] with w [hd].
// VJP with w' the applied scale, x̂ = x·r, ĝ = dy ⊙ w':  dx = r·(ĝ − x̂·mean(ĝ ⊙ x̂)).

import { float, type GraphBuilder } from '../onnx-graph.js';
import type { OpLowering } from './op.js';

export interface RmsNormAttrs {
  readonly eps: number;
  /** Gemma's (1 + w) scale instead of w. */
  readonly unitOffset: boolean;
}

function meanLast(g: GraphBuilder, x: string): string {
  return g.node('ReduceMean', [x, g.constI64([-1])], { keepdims: 1 });
}

/**
 * inputs: x [..., d], weight [d]. The forward is onnxruntime's fused SimplifiedLayerNormalization
 * (one pass; its inverse RMS in float32 is kept for the VJP, as layer-norm.ts keeps LayerNormalization's).
 */
export const rmsNorm: OpLowering<RmsNormAttrs> = {
  name: 'rmsNorm',
  forward(g, [x, w], { eps, unitOffset }) {
    const scale = unitOffset ? g.node('Add', [w!, g.constF(1)]) : w!;
    const [y, r] = g.nodeN('SimplifiedLayerNormalization', [x!, scale], { axis: -1, epsilon: float(eps), stash_type: 1 }, 2);
    return { outputs: [y!], saved: { r: r!, scale } };
  },
  vjp(g, { inputs: [x], saved: { r, scale } }, [dy]) {
    const xhat = g.node('Mul', [x!, r!]);
    const gh = g.node('Mul', [dy!, scale!]);
    const m = meanLast(g, g.node('Mul', [gh, xhat]));
    return [g.node('Mul', [g.node('Sub', [gh, g.node('Mul', [xhat, m])]), r!]), undefined];
  },
};
