// Linear map with canonical [in, out] weights: y = x @ W (+ b). VJP: dx = dy @ Wᵀ — written as a
// MatMul over a Transpose, which onnxruntime fuses into one transposed GEMM (no copy of W).

import type { OpLowering } from './op.js';

/** inputs: x [..., in], W [in, out], optional b [out] */
export const linear: OpLowering<void> = {
  name: 'linear',
  forward(g, [x, w, b]) {
    const y = g.node('MatMul', [x!, w!]);
    return { outputs: [b ? g.node('Add', [y, b]) : y] };
  },
  vjp(g, { inputs: [, w, b] }, [dy]) {
    const dx = g.node('MatMul', [dy!, g.node('Transpose', [w!], { perm: [1, 0] })]);
    return b ? [dx, undefined, undefined] : [dx, undefined];
  },
};

/**
 * Linear with a weight stored [out, in] (a tied unembedding reading the token embedding):
 * y = x @ Wᵀ, lowered as MatMul over a Transpose of W, which onnxruntime fuses into one
 * transposed GEMM (no copy of W). VJP: dx = dy @ W.
 */
export const linearTransposed: OpLowering<void> = {
  name: 'linearTransposed',
  forward(g, [x, w]) {
    return { outputs: [g.node('MatMul', [x!, g.node('Transpose', [w!], { perm: [1, 0] })])] };
  },
  vjp(g, { inputs: [, w] }, [dy]) {
    return [g.node('MatMul', [dy!, w!]), undefined];
  },
};
