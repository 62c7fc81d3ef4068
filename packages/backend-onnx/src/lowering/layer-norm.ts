// Layer normalization over the last axis: y = (x − μ)·r·w + b with r = 1/√(var + ε) (biased variance).
// VJP: dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), ĝ = dy·w, x̂ = (x − μ)·r.

import { float, type GraphBuilder } from '../onnx-graph.js';
import type { OpLowering } from './op.js';

export interface LayerNormAttrs { readonly eps: number }

/** inputs: x [..., d], weight [d], bias [d] */
export const layerNorm: OpLowering<LayerNormAttrs> = {
  name: 'layerNorm',
  forward(g, [x, w, b], { eps }) {
    // stash_type 1 = statistics in fp32; Mean and InvStdDev are returned for the VJP.
    const [y, mean, invStd] = g.nodeN('LayerNormalization', [x!, w!, b!], { axis: -1, epsilon: float(eps), stash_type: 1 }, 3);
    return { outputs: [y!], saved: { mean: mean!, invStd: invStd! } };
  },
  vjp(g, { inputs: [x, w], saved }, [dy]) {
    const xhat = g.node('Mul', [g.node('Sub', [x!, saved.mean!]), saved.invStd!]);
    const gh = g.node('Mul', [dy!, w!]);
    const m1 = meanLast(g, gh);
    const m2 = meanLast(g, g.node('Mul', [gh, xhat]));
    const inner = g.node('Sub', [g.node('Sub', [gh, m1]), g.node('Mul', [xhat, m2])]);
    return [g.node('Mul', [inner, saved.invStd!]), undefined, undefined];
  },
};

function meanLast(g: GraphBuilder, x: string): string {
  return g.node('ReduceMean', [x, g.constI64([-1])], { keepdims: 1 });
}
