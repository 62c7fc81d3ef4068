// The (features, error) pair feature-circuits calls SparseAct: SAE features [..., F] with the SAE
// error, either the error vector [..., d] (a state) or one value per position [...] (an effect or
// a gradient contracted with a delta). Dense tensors: "sparse" is only the reference's name.

import type { Dictionary } from '../dictionary.js';
import type { Tensor, TensorOps } from '../tensor.js';

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

/** The all-zero state (single-prompt mode's "patch"). */
export function zeroState(ops: TensorOps, like: SparseAct): SparseAct {
  return { act: ops.zeros(like.act.shape), res: ops.zeros(like.res.shape) };
}

/** a − b, element-wise on both parts. */
export function subState(ops: TensorOps, a: SparseAct, b: SparseAct): SparseAct {
  return { act: ops.sub(a.act, b.act), res: ops.sub(a.res, b.res) };
}

/**
 * Node effects of a gradient g = ∂m/∂x [..., d] taken at the submodule output, for a state
 * difference Δ: act = (g·W_decᵀ) ⊙ Δf (∂m/∂f_i = g·W_dec[i] for a linear decoder), res = Σ_d g ⊙ Δr.
 */
export function effectOf(ops: TensorOps, grad: Tensor, decoderT: Tensor, delta: SparseAct): SparseAct {
  return {
    act: ops.mul(ops.matMul(grad, decoderT), delta.act),
    res: ops.sum(ops.mul(grad, delta.res), grad.shape.length - 1),
  };
}

/** [..., F] and [...] → [..., F + 1] with the error node at index F (the reference's to_tensor()). */
export function toDense(ops: TensorOps, effect: SparseAct): Tensor {
  return ops.concat([effect.act, ops.reshape(effect.res, [...effect.res.shape, 1])], effect.act.shape.length - 1);
}
