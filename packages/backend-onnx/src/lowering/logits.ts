// The parts of the unembedding that LogitSelection asks for: keep only the last position, and
// multiply by only `k` columns of the unembedding per example (the metric's answer tokens)
// instead of the whole vocabulary.

import type { OpLowering } from './op.js';
import { seqLen } from './embedding.js';

/** inputs: x [b, s, d] → x[:, s−1, :] [b, d]. VJP: the cotangent placed at the last position, zeros elsewhere. */
export const lastPosition: OpLowering<void> = {
  name: 'lastPosition',
  forward(g, [x]) {
    return { outputs: [g.node('Gather', [x!, g.constI64(-1)], { axis: 1 })] };
  },
  vjp(g, { inputs: [x] }, [dy]) {
    const before = g.node('Sub', [seqLen(g, x!, 1), g.constI64(1)]);
    const pads = g.node('Concat', [g.constI64([0]), g.node('Unsqueeze', [before, g.constI64([0])]), g.constI64([0, 0, 0, 0])], { axis: 0 });
    return [g.node('Pad', [g.node('Unsqueeze', [dy!, g.constI64([1])]), pads])];
  },
};

export interface SelectColumnsAttrs {
  /** `h` keeps its sequence axis ([b, s, d]) or not ([b, d]). */
  readonly hasSeq: boolean;
}

/**
 * inputs: h [b, (s,) d], W [d, V], columns int32 [b, k], optional bias [V] → [b, (s,) k] with
 * out[n, …, j] = h[n, …] · W[:, columns[n, j]] (+ bias[columns[n, j]]).
 */
export const selectColumns: OpLowering<SelectColumnsAttrs> = {
  name: 'selectColumns',
  forward(g, [h, w, cols, bias], { hasSeq }) {
    const wSel = g.node('Transpose', [g.node('Gather', [w!, cols!], { axis: 1 })], { perm: [1, 0, 2] }); // [b, d, k]
    let y = hasSeq ? g.node('MatMul', [h!, wSel])
      : g.node('Squeeze', [g.node('MatMul', [g.node('Unsqueeze', [h!, g.constI64([1])]), wSel]), g.constI64([1])]);
    if (bias) {
      const bSel = g.node('Gather', [bias, cols!], { axis: 0 }); // [b, k]
      y = g.node('Add', [y, hasSeq ? g.node('Unsqueeze', [bSel, g.constI64([1])]) : bSel]);
    }
    return { outputs: [y], saved: { wSel } };
  },
  vjp(g, { inputs, saved: { wSel }, attrs: { hasSeq } }, [dy]) {
    const wT = g.node('Transpose', [wSel!], { perm: [0, 2, 1] }); // [b, k, d]
    const dh = hasSeq ? g.node('MatMul', [dy!, wT])
      : g.node('Squeeze', [g.node('MatMul', [g.node('Unsqueeze', [dy!, g.constI64([1])]), wT]), g.constI64([1])]);
    return inputs.map((_, i) => (i === 0 ? dh : undefined));
  },
};

/**
 * inputs: h [b, (s,) d], W [V, d] (read transposed), columns int32 [b, k] → [b, (s,) k] with
 * out[n, …, j] = h[n, …] · W[columns[n, j], :]: the rows of W are gathered (no copy of W).
 */
export const selectRows: OpLowering<SelectColumnsAttrs> = {
  name: 'selectRows',
  forward(g, [h, w, cols], { hasSeq }) {
    const wSel = g.node('Gather', [w!, cols!], { axis: 0 }); // [b, k, d]
    const wT = g.node('Transpose', [wSel], { perm: [0, 2, 1] }); // [b, d, k]
    const y = hasSeq ? g.node('MatMul', [h!, wT])
      : g.node('Squeeze', [g.node('MatMul', [g.node('Unsqueeze', [h!, g.constI64([1])]), wT]), g.constI64([1])]);
    return { outputs: [y], saved: { wSel } };
  },
  vjp(g, { inputs, saved: { wSel }, attrs: { hasSeq } }, [dy]) {
    const dh = hasSeq ? g.node('MatMul', [dy!, wSel!])
      : g.node('Squeeze', [g.node('MatMul', [g.node('Unsqueeze', [dy!, g.constI64([1])]), wSel!]), g.constI64([1])]);
    return inputs.map((_, i) => (i === 0 ? dh : undefined));
  },
};
