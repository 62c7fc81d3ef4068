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
    const { x, chunks, factors } = parts(inputs, attrs);
    // dxᵀ = Σ_i W_iᵀ · dy_iᵀ: each widened chunk is the GEMM's left side again (read as it is,
    // transposed in cache-sized blocks) and the few rows of dy the side it packs; dy_i · W_i would
    // pack every widened chunk as the right side (~25% more at Gemma-2-2B shape).
    // Each chunk is widened afresh, next to its product: the forward recomputed in this graph has
    // its own Cast of the same chunk, and ORT's common-subexpression elimination would merge the
    // two and keep every widened chunk alive from the forward to here (85 MB per Gemma-2-2B MLP
    // matrix, written to fresh pages: the MLP VJP cost 1.6× more). A Reshape to the chunk's own
    // shape (an alias, no copy) makes this Cast's input a different value.
    // Each part is added as soon as it is made (not one Sum over all parts), so only one part is
    // alive at a time: with IG's 320 rows a Sum held 21 parts of 11.8 MB at once.
    const rows = attrs.widths.reduce((a, b) => a + b, 0);
    const flat = g.node('Reshape', [dy!, g.constI64([-1, rows])]); // [n, rows]
    let at = 0;
    let dxT: string | undefined;
    chunks.forEach((c, i) => {
      const w = attrs.widths[i]!;
      let d = g.node('Slice', [flat, g.constI64([at]), g.constI64([at + w]), g.constI64([-1])]);
      at += w;
      if (attrs.scale === 'rows') d = g.node('Mul', [d, factors[i]!]);
      const wide = widenHalf(g, g.node('Reshape', [c, g.constI64([w, -1])]), 1);
      dxT = g.node('Gemm', dxT === undefined ? [wide, d] : [wide, d, dxT], { transA: 1, transB: 1 }); // [in, n]
    });
    const dx = g.node('Reshape', [g.node('Transpose', [dxT!], { perm: [1, 0] }), g.node('Shape', [x])]);
    return inputs.map((_, i) => (i === 0 ? (attrs.scale === 'rows' ? dx : timesScale(g, dx, attrs.scale)) : undefined));
  },
};
