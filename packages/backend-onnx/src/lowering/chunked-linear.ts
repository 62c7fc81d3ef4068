// y = x · Wᵀ (+ b) on a 16-bit W [rows, d] held row-major, widened one chunk of rows at a time: a
// linear's weight held transposed (its checkpoint layout [out, in]) or a tied unembedding's
// [vocab, d] table. Widening a whole weight before its product writes and re-reads 4 bytes per
// value through memory (and, without an arena, faults in fresh pages on every call); widening a
// few MiB at a time keeps the chunk in cache between the Cast and the product. Each chunk is the
// product's left side, yᵀ_i = W_i · xᵀ, which the GEMM reads as it is (its right side, the few
// rows of x, is the one it packs). Chunks split the output axis, so every output value is the same
// single dot product; the VJP sums the chunks' parts of dx. Measured in docs/performance.md,
// "Gemma-2-2B scale".

import type { OpLowering } from './op.js';
import { timesScale, widenHalf, type HalfScale } from './widen.js';

export interface ChunkedAttrs {
  /** Row counts of the chunks, in order (they sum to the output width). */
  readonly widths: readonly number[];
  /**
   * The weight's scale (a power of two), or `rows`: one factor per weight row, fed per chunk after
   * the chunks. A power of two moves through a product exactly, so the factors scale the small
   * side (the output, or the cotangent) instead of every weight value per call.
   */
  readonly scale: HalfScale;
  /** A float32 bias [rows] is the last input. */
  readonly bias?: boolean;
}

interface Parts { readonly x: string; readonly chunks: readonly string[]; readonly factors: readonly string[]; readonly bias?: string }

function parts(inputs: readonly string[], { widths, scale, bias }: ChunkedAttrs): Parts {
  const n = widths.length;
  return {
    x: inputs[0]!, chunks: inputs.slice(1, 1 + n), factors: scale === 'rows' ? inputs.slice(1 + n, 1 + 2 * n) : [],
    ...(bias ? { bias: inputs[inputs.length - 1]! } : {}),
  };
}

/** inputs: x [..., d], chunks W_i float16 [r_i, d], (`rows`: factors f_i [r_i]), (bias [rows]) → x · Wᵀ (+ b), [..., rows]. */
export const chunkedLinearT: OpLowering<ChunkedAttrs> = {
  name: 'chunkedLinearT',
  forward(g, inputs, attrs) {
    const { x, chunks, factors, bias } = parts(inputs, attrs);
    const shape = g.node('Shape', [x]);
    const width = g.node('Slice', [shape, g.constI64([-1]), g.constI64([2 ** 31])]);
    const flat = g.node('Reshape', [x, g.node('Concat', [g.constI64([-1]), width], { axis: 0 })]); // [n, d]
    const ys = chunks.map((c, i) => {
      const yT = g.node('Gemm', [widenHalf(g, c, 1), flat], { transB: 1 }); // [r_i, n]
      return attrs.scale === 'rows' ? g.node('Mul', [yT, g.node('Unsqueeze', [factors[i]!, g.constI64([1])])]) : yT;
    });
    const yT = ys.length === 1 ? ys[0]! : g.node('Concat', ys, { axis: 0 }); // [rows, n]
    const lead = g.node('Slice', [shape, g.constI64([0]), g.constI64([-1])]);
    let y = g.node('Reshape', [g.node('Transpose', [yT], { perm: [1, 0] }), g.node('Concat', [lead, g.constI64([-1])], { axis: 0 })]);
    if (attrs.scale !== 'rows') y = timesScale(g, y, attrs.scale);
    return { outputs: [bias ? g.node('Add', [y, bias]) : y] };
  },
  vjp(g, { inputs, attrs }, [dy]) {
    const { chunks, factors } = parts(inputs, attrs);
    // Each chunk's part is added as soon as it is made (not one Sum over all parts), so only one
    // part [n, in] is alive at a time: with IG's 320 rows a Sum held 21 parts of 11.8 MB at once.
    let at = 0;
    let dx: string | undefined;
    chunks.forEach((c, i) => {
      const w = attrs.widths[i]!;
      let d = g.node('Slice', [dy!, g.constI64([at]), g.constI64([at + w]), g.constI64([-1])]);
      at += w;
      if (attrs.scale === 'rows') d = g.node('Mul', [d, factors[i]!]);
      const part = g.node('MatMul', [d, widenHalf(g, c, 1)]);
      dx = dx === undefined ? part : g.node('Add', [dx, part]);
    });
    return inputs.map((_, i) => (i === 0 ? (attrs.scale === 'rows' ? dx! : timesScale(g, dx!, attrs.scale)) : undefined));
  },
};
