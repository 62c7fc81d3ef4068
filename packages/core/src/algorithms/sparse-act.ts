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
 */
export function effectOfOutputDelta(ops: TensorOps, grad: Tensor, dict: Dictionary, df: Tensor, dx: Tensor): SparseAct {
  const last = grad.shape.length - 1;
  const act = tidySync((t) => ops.mul(t(ops.matMulTransposed(grad, dict.decoderRows())), df));
  const res = tidySync((t) => ops.sub(t(ops.sum(t(ops.mul(grad, dx)), last)), t(ops.sum(act, last))));
  return { act, res };
}

/** [..., F] and [...] → [..., F + 1] with the error node at index F (the reference's to_tensor()). */
export function toDense(ops: TensorOps, effect: SparseAct): Tensor {
  return ops.concat([effect.act, ops.reshape(effect.res, [...effect.res.shape, 1])], effect.act.shape.length - 1);
}
