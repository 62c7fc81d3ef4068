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
 * g·W_decᵀ for g [..., d] and the decoder rows W_dec [F, d]: [..., F]. Computed as (W_dec·gᵀ)ᵀ, so
 * only g and the [N, F] result are transposed, never the decoder (a 64 MB copy at 32k features,
 * on every call, since TensorOps has no transposed matmul).
 */
export function decoderProjection(ops: TensorOps, g: Tensor, decoder: Tensor): Tensor {
  const lead = g.shape.slice(0, -1);
  const d = g.shape[g.shape.length - 1]!;
  const n = lead.reduce((a, b) => a * b, 1);
  return tidySync((t) => {
    const proj = t(ops.matMul(decoder, t(ops.transpose(t(ops.reshape(g, [n, d]))))));
    return ops.reshape(t(ops.transpose(proj)), [...lead, decoder.shape[0]!]);
  }, [g]);
}

/**
 * Node effects of a gradient g = ∂m/∂x [..., d] taken at the submodule output, for a state
 * difference Δ: act = (g·W_decᵀ) ⊙ Δf (∂m/∂f_i = g·W_dec[i] for a linear decoder), res = Σ_d g ⊙ Δr.
 */
export function effectOf(ops: TensorOps, grad: Tensor, dict: Dictionary, delta: SparseAct): SparseAct {
  return {
    act: tidySync((t) => ops.mul(t(decoderProjection(ops, grad, dict.decoderRows())), delta.act)),
    res: tidySync((t) => ops.sum(t(ops.mul(grad, delta.res)), grad.shape.length - 1)),
  };
}

/** [..., F] and [...] → [..., F + 1] with the error node at index F (the reference's to_tensor()). */
export function toDense(ops: TensorOps, effect: SparseAct): Tensor {
  return ops.concat([effect.act, ops.reshape(effect.res, [...effect.res.shape, 1])], effect.act.shape.length - 1);
}
