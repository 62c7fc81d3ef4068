// The (features, error) pair feature-circuits calls SparseAct: SAE features [..., F] with the SAE
// error, either the error vector [..., d] (a state) or one value per position [...] (an effect or
// a gradient contracted with a delta). Dense tensors: "sparse" is only the reference's name.

import type { Dictionary } from '../dictionary.js';
import type { Tensor, TensorOps } from '../tensor.js';
import { tidySync } from '../tidy.js';

export interface SparseAct {
  /** Feature values [..., F]. */
  readonly act: Tensor;
  /** Error term: [..., d] for states, [...] for effects. */
  readonly res: Tensor;
}

/** The SAE decomposition of a submodule output x: f = enc(x), r = x − dec(f). */
export function saeState(ops: TensorOps, dict: Dictionary, x: Tensor): SparseAct {
  const act = dict.encode(x);
  return { act, res: ops.sub(x, dict.decode(act)) };
}

/**
 * Node effects of a gradient g = ∂m/∂x [..., d] taken at the submodule output, for a state
 * difference Δ: act = (g·W_decᵀ) ⊙ Δf (∂m/∂f_i = g·W_dec[i] for a linear decoder), res = Σ_d g ⊙ Δr.
 */
export function effectOf(ops: TensorOps, grad: Tensor, dict: Dictionary, delta: SparseAct): SparseAct {
  return {
    act: tidySync((t) => ops.mul(t(ops.matMulTransposed(grad, dict.decoderRows())), delta.act)),
    res: tidySync((t) => ops.sum(t(ops.mul(grad, delta.res)), grad.shape.length - 1)),
  };
}

/**
 * effectOf for a state difference given as Δf and the submodule-output difference Δx, whose error
 * part is Δr = Δx − Δf·W_dec: res = Σ_d g ⊙ Δx − Σ_F act (b_dec cancels). Δf is never decoded, so
 * a lazy backend never computes Δr for attrib and ig.
 *
 * act is 0 wherever Δf is, and SAE features are sparse (Δf has a few hundred non-zero columns of
 * tens of thousands), so g·W_decᵀ is computed on Δf's non-zero columns only: the decoder rows of
 * those features, gathered, instead of a product with the whole decoder (as much work as an
 * encode). Each value is the same dot product as in the full product.
 */
export async function effectOfOutputDelta(ops: TensorOps, grad: Tensor, dict: Dictionary, df: Tensor, dx: Tensor): Promise<SparseAct> {
  const last = grad.shape.length - 1;
  const columns = await nonZeroColumns(df);
  const act = columns.length === 0 ? ops.zeros(df.shape)
    : columns.length * 2 > dict.dSae ? tidySync((t) => ops.mul(t(ops.matMulTransposed(grad, dict.decoderRows())), df))
    : tidySync((t) => {
      const F = dict.dSae;
      const lead = df.shape.slice(0, last);
      const idx = t(ops.intTensor(columns, [columns.length]));
      const g2 = t(ops.reshape(grad, [-1, grad.shape[last]!]));
      const onColumns = t(ops.mul(t(ops.matMulTransposed(g2, t(ops.gather(dict.decoderRows(), idx, 0)))),
        t(ops.gather(t(ops.reshape(df, [-1, F])), idx, 1)))); // [n, |columns|]
      // Back to all F columns: column j reads column 1 + k of [0 | onColumns] when j = columns[k], else the zero column.
      const from = new Int32Array(F);
      columns.forEach((j, k) => { from[j] = k + 1; });
      const padded = t(ops.concat([t(ops.zeros([onColumns.shape[0]!, 1])), onColumns], 1));
      return ops.reshape(ops.gather(padded, t(ops.intTensor(from, [F])), 1), [...lead, F]);
    });
  const res = tidySync((t) => ops.sub(t(ops.sum(t(ops.mul(grad, dx)), last)), t(ops.sum(act, last))));
  return { act, res };
}

/** The columns (last-axis indices) where `t` has a non-zero value in some row, ascending. */
async function nonZeroColumns(t: Tensor): Promise<Int32Array> {
  const F = t.shape[t.shape.length - 1]!;
  const v = await t.data();
  const seen = new Uint8Array(F);
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) seen[i % F] = 1;
  const out: number[] = [];
  for (let j = 0; j < F; j++) if (seen[j]) out.push(j);
  return Int32Array.from(out);
}

/** [..., F] and [...] → [..., F + 1] with the error node at index F (the reference's to_tensor()). */
export function toDense(ops: TensorOps, effect: SparseAct): Tensor {
  return ops.concat([effect.act, ops.reshape(effect.res, [...effect.res.shape, 1])], effect.act.shape.length - 1);
}
