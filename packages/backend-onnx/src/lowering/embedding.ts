// Embedding lookups, their scaling and residual sums. The lookups read constant tables with integer ids, so
// they pass no cotangent anywhere (the embed segment's VJP is empty); `sum` passes its cotangent
// unchanged to every input, reduced over leading axes an input was broadcast along.

import type { GraphBuilder } from '../onnx-graph.js';
import type { OpLowering } from './op.js';

/** inputs: table [V, d], ids int32 [...] → [..., d] */
export const embeddingLookup: OpLowering<void> = {
  name: 'embedding',
  forward(g, [table, ids]) {
    return { outputs: [g.node('Gather', [table!, ids!], { axis: 0 })] };
  },
  vjp(_g, ctx) {
    // Neither the table (a weight) nor integer ids carry a cotangent.
    return ctx.inputs.map(() => undefined);
  },
};

/** The sequence length (int64 scalar) of `x` along `axis`. */
export function seqLen(g: GraphBuilder, x: string, axis: number): string {
  return g.node('Gather', [g.node('Shape', [x]), g.constI64(axis)], { axis: 0 });
}

/** Positions offset … offset + s − 1 (int64 [s]) for the sequence axis of `x`. */
export function positions(g: GraphBuilder, x: string, offset: string, axis: number): string {
  return g.node('Range', [offset, g.node('Add', [offset, seqLen(g, x, axis)]), g.constI64(1)]);
}

export interface PositionRowsAttrs { readonly seqAxis: number }

/** inputs: table [P, d], offset int64 scalar, like (any tensor with the sequence axis) → table rows [s, d] */
export const positionRows: OpLowering<PositionRowsAttrs> = {
  name: 'positionEmbedding',
  constantOutputs: true,
  forward(g, [table, offset, like], { seqAxis }) {
    return { outputs: [g.node('Gather', [table!, positions(g, like!, offset!, seqAxis)], { axis: 0 })] };
  },
  vjp(_g, ctx) {
    return ctx.inputs.map(() => undefined);
  },
};

export interface SumAttrs {
  /** Rank of each input; the output has the largest (NumPy broadcasting over leading axes). */
  readonly ranks: readonly number[];
}

/** inputs: x_1 … x_n → Σ x_i */
export const sum: OpLowering<SumAttrs> = {
  name: 'sum',
  forward(g, inputs) {
    return { outputs: [inputs.length === 1 ? inputs[0]! : g.node('Sum', [...inputs])] };
  },
  vjp(g, { inputs, attrs: { ranks }, needs }, [dy]) {
    const out = Math.max(...ranks);
    return inputs.map((_, i) => {
      if (!needs[i]) return undefined;
      const lead = out - ranks[i]!;
      return lead === 0 ? dy! : g.node('ReduceSum', [dy!, g.constI64([...Array(lead).keys()])], { keepdims: 0 });
    });
  },
};

export interface ScaledAttrs { readonly factor: number }

/** inputs: x → x·factor (Gemma's embedding normalizer, a float32 constant). VJP: dy·factor. */
export const scaled: OpLowering<ScaledAttrs> = {
  name: 'scaled',
  forward(g, [x], { factor }) {
    return { outputs: [g.node('Mul', [x!, g.constF(factor)])] };
  },
  vjp(g, { attrs: { factor } }, [dy]) {
    return [g.node('Mul', [dy!, g.constF(factor)])];
  },
};
