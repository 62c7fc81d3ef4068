// The parts of the unembedding that LogitSelection asks for: keep only the last position, and
// multiply by only `k` columns of the unembedding per example (the metric's answer tokens)
// instead of the whole vocabulary.

import type { GraphBuilder } from '../onnx-graph.js';
import type { OpLowering } from './op.js';
import { seqLen } from './embedding.js';
import { timesScale, widenHalf } from './widen.js';

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
  /**
   * W is float16 (a 16-bit weight, value = fp16 · scale): the gathered part is cast to float32 and
   * the products are multiplied by `scale` (a power of two, so exactly the same values; this
   * order keeps onnxruntime's kernels those of the float32 graph, so results are bit-identical).
   */
  readonly scale?: number;
}

/**
 * selectRows only: W [V, d] is float16 with one power-of-two factor per row, given as the last
 * input [V]; the products are multiplied by the gathered rows' factors (exact, as for `scale`).
 */
export interface SelectRowsAttrs extends Omit<SelectColumnsAttrs, 'scale'> {
  readonly scale?: number | 'rows';
}

/** y [b, (s,) k] times the factors of the gathered rows (`rows` scale), or scaled(y, scale). */
function scaledRows(g: GraphBuilder, y: string, scale: number | 'rows' | undefined, factors: string | undefined, cols: string, hasSeq: boolean): string {
  if (scale !== 'rows') return timesScale(g, y, scale);
  const f = g.node('Gather', [factors!, cols], { axis: 0 }); // [b, k]
  return g.node('Mul', [y, hasSeq ? g.node('Unsqueeze', [f, g.constI64([1])]) : f]);
}

/**
 * inputs: h [b, (s,) d], W [d, V], columns int32 [b, k], optional bias [V] → [b, (s,) k] with
 * out[n, …, j] = h[n, …] · W[:, columns[n, j]] (+ bias[columns[n, j]]).
 */
export const selectColumns: OpLowering<SelectColumnsAttrs> = {
  name: 'selectColumns',
  forward(g, [h, w, cols, bias], { hasSeq, scale }) {
    const gathered = g.node('Gather', [w!, cols!], { axis: 1 });
    const wSel = g.node('Transpose', [scale === undefined ? gathered : widenHalf(g, gathered, 1)], { perm: [1, 0, 2] }); // [b, d, k]
    let y = hasSeq ? g.node('MatMul', [h!, wSel])
      : g.node('Squeeze', [g.node('MatMul', [g.node('Unsqueeze', [h!, g.constI64([1])]), wSel]), g.constI64([1])]);
    y = timesScale(g, y, scale);
    if (bias) {
      const bSel = g.node('Gather', [bias, cols!], { axis: 0 }); // [b, k]
      y = g.node('Add', [y, hasSeq ? g.node('Unsqueeze', [bSel, g.constI64([1])]) : bSel]);
    }
    return { outputs: [y], saved: { wSel } };
  },
  vjp(g, { inputs, saved: { wSel }, attrs: { hasSeq, scale } }, [dy]) {
    const wT = g.node('Transpose', [wSel!], { perm: [0, 2, 1] }); // [b, k, d]
    const dh = hasSeq ? g.node('MatMul', [dy!, wT])
      : g.node('Squeeze', [g.node('MatMul', [g.node('Unsqueeze', [dy!, g.constI64([1])]), wT]), g.constI64([1])]);
    return inputs.map((_, i) => (i === 0 ? timesScale(g, dh, scale) : undefined));
  },
};

/**
 * inputs: h [b, (s,) d], W [V, d] (read transposed), columns int32 [b, k] → [b, (s,) k] with
 * out[n, …, j] = h[n, …] · W[columns[n, j], :]: the rows of W are gathered (no copy of W).
 */
export const selectRows: OpLowering<SelectRowsAttrs> = {
  name: 'selectRows',
  forward(g, [h, w, cols, factors], { hasSeq, scale }) {
    const gathered = g.node('Gather', [w!, cols!], { axis: 0 }); // [b, k, d]
    const wSel = scale === undefined ? gathered : widenHalf(g, gathered, 1);
    const wT = g.node('Transpose', [wSel], { perm: [0, 2, 1] }); // [b, d, k]
    const y = hasSeq ? g.node('MatMul', [h!, wT])
      : g.node('Squeeze', [g.node('MatMul', [g.node('Unsqueeze', [h!, g.constI64([1])]), wT]), g.constI64([1])]);
    return { outputs: [scaledRows(g, y, scale, factors, cols!, hasSeq)], saved: { wSel } };
  },
  vjp(g, { inputs, saved: { wSel }, attrs: { hasSeq, scale } }, [dy]) {
    // dh = Σ_j dy_j · f_j · W[c_j]: the factors scale the cotangent's columns first.
    const dyScaled = scale === 'rows' ? scaledRows(g, dy!, scale, inputs[3], inputs[2]!, hasSeq) : dy!;
    const dh = hasSeq ? g.node('MatMul', [dyScaled, wSel!])
      : g.node('Squeeze', [g.node('MatMul', [g.node('Unsqueeze', [dyScaled, g.constI64([1])]), wSel!]), g.constI64([1])]);
    return inputs.map((_, i) => (i === 0 ? (scale === 'rows' ? dh : timesScale(g, dh, scale)) : undefined));
  },
};
