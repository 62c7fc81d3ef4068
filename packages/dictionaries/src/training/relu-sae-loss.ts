// The ReLU SAE training loss and its gradient, written analytically on core's TensorOps (which
// has no autodiff). Recipe: Anthropic's April 2024 update ("Training SAEs",
// transformer-circuits.pub/2024/april-update) as ported by dictionary_learning's
// `StandardTrainerAprilUpdate` with its `AutoEncoder` (input centred by the decoder bias):
//
//   c  = x − b_dec                      p = c·W_enc + b_enc        f = relu(p)
//   x̂  = f·W_dec + b_dec               e = x̂ − x                  n_j = ‖W_dec[j]‖
//   L  = (1/N) Σ_rows [ Σ_d e² + λ Σ_j f_j n_j ]
//
// The decoder is unconstrained; the sparsity penalty weighs each feature by its decoder norm,
// so shrinking f while growing W_dec does not pay. Gradients (G = ∂L/∂x̂ = 2e/N):
//
//   ∂L/∂f     = G·W_decᵀ + (λ/N)·n                 P = ∂L/∂p = ∂L/∂f ⊙ 1[p > 0]
//   ∂L/∂W_dec = fᵀ·G + (λ/N)·(Σ_rows f_j)·W_dec[j]/n_j
//   ∂L/∂W_enc = cᵀ·P        ∂L/∂b_enc = Σ_rows P
//   ∂L/∂b_dec = Σ_rows G − W_enc·(Σ_rows P)       (b_dec enters x̂ and, negated, c)

import { ShapeError, shapeToString, type Tensor, type TensorOps } from '@sfc/core';

/** Device tensors of a ReLU SAE: W_enc [d, F], b_enc [F], W_dec [F, d], b_dec [d]. */
export interface ReluSaeParams {
  readonly W_enc: Tensor;
  readonly b_enc: Tensor;
  readonly W_dec: Tensor;
  readonly b_dec: Tensor;
}

export const PARAM_NAMES = ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const;
export type ParamName = typeof PARAM_NAMES[number];

export interface ReluSaeLoss {
  /** Scalar total loss. */
  readonly loss: Tensor;
  /** Scalar mean over rows of Σ_d (x − x̂)². */
  readonly mse: Tensor;
  /** Scalar mean over rows of Σ_j f_j ‖W_dec[j]‖ (before λ). */
  readonly sparsity: Tensor;
  /** Features f [N, F]. */
  readonly features: Tensor;
  /** Reconstruction x̂ [N, d]. */
  readonly reconstruction: Tensor;
}

/**
 * Loss and gradient of one batch x [N, d] with sparsity coefficient `lambda`. Every returned
 * tensor is new; intermediates are left to the caller's scope (call inside `ops.scope`).
 */
export function reluSaeLossAndGrad(ops: TensorOps, p: ReluSaeParams, x: Tensor, lambda: number): { terms: ReluSaeLoss; grads: ReluSaeParams } {
  const [d, F] = p.W_enc.shape as [number, number];
  if (x.shape.length !== 2 || x.shape[1] !== d) {
    throw new ShapeError(`SAE training batch has shape ${shapeToString(x.shape)}, expected [N, ${d}]`);
  }
  const N = x.shape[0]!;
  const c = ops.sub(x, p.b_dec);
  const pre = ops.add(ops.matMul(c, p.W_enc), p.b_enc);
  const f = ops.relu(pre);
  const xHat = ops.add(ops.matMul(f, p.W_dec), p.b_dec);
  const e = ops.sub(xHat, x);
  const norms = ops.sqrt(ops.sum(ops.square(p.W_dec), 1)); // [F]

  const mse = ops.scale(ops.sum(ops.square(e)), 1 / N);
  const sparsity = ops.scale(ops.sum(ops.mul(f, norms)), 1 / N);
  const loss = ops.add(mse, ops.scale(sparsity, lambda));

  const G = ops.scale(e, 2 / N);
  const dF = ops.add(ops.matMul(G, ops.transpose(p.W_dec)), ops.scale(norms, lambda / N));
  // A row-shaped zero: comparisons against a [1]-shaped scalar take a slow broadcast path on tfjs-wasm.
  const P = ops.mul(dF, ops.greater(pre, ops.zeros([F])));
  const gBEnc = ops.sum(P, 0);
  // Columns of a zero decoder row have no direction; their penalty gradient is 0 there.
  const safeNorms = ops.maximum(norms, ops.fill([1], 1e-12));
  const penaltyRows = ops.mul(ops.reshape(ops.div(ops.sum(f, 0), safeNorms), [F, 1]), p.W_dec);
  const gWDec = ops.add(ops.matMul(ops.transpose(f), G), ops.scale(penaltyRows, lambda / N));
  const gWEnc = ops.matMul(ops.transpose(c), P);
  const gBDec = ops.sub(ops.sum(G, 0), ops.reshape(ops.matMul(p.W_enc, ops.reshape(gBEnc, [F, 1])), [d]));
  return {
    terms: { loss, mse, sparsity, features: f, reconstruction: xHat },
    grads: { W_enc: gWEnc, b_enc: gBEnc, W_dec: gWDec, b_dec: gBDec },
  };
}
