// Adam (Kingma & Ba 2015) with global-norm gradient clipping, on core's TensorOps — the update
// torch.optim.Adam and torch.nn.utils.clip_grad_norm_ perform, with no host round trip (the
// clip factor is computed on the device).

import type { Tensor, TensorOps } from '@sfc/core';

export interface AdamOptions {
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
  /** Clip the global gradient norm to this (torch clip_grad_norm_); undefined = no clipping. */
  readonly clipNorm?: number;
}

export type TensorGroup<K extends string> = Readonly<Record<K, Tensor>>;

export interface AdamState<K extends string> {
  readonly m: TensorGroup<K>;
  readonly v: TensorGroup<K>;
  /** Steps taken. */
  readonly t: number;
}

export function adamInit<K extends string>(ops: TensorOps, params: TensorGroup<K>): AdamState<K> {
  const zeros = (): TensorGroup<K> => Object.fromEntries(Object.entries<Tensor>(params).map(([k, p]) => [k, ops.zeros(p.shape)])) as TensorGroup<K>;
  return { m: zeros(), v: zeros(), t: 0 };
}

/**
 * One Adam step at learning rate `lr`. Returns new parameters and state (all new tensors);
 * intermediates are left to the caller's scope.
 */
export function adamStep<K extends string>(ops: TensorOps, params: TensorGroup<K>, grads: TensorGroup<K>, state: AdamState<K>,
  lr: number, options: AdamOptions = {}): { params: TensorGroup<K>; state: AdamState<K> } {
  const b1 = options.beta1 ?? 0.9, b2 = options.beta2 ?? 0.999, eps = options.eps ?? 1e-8;
  const keys = Object.keys(params) as K[];
  let g = grads;
  if (options.clipNorm !== undefined) {
    let sq: Tensor | undefined;
    for (const k of keys) {
      const s = ops.sum(ops.square(grads[k]));
      sq = sq ? ops.add(sq, s) : s;
    }
    // min(1, c / (‖g‖ + 1e-6)) = c / max(‖g‖ + 1e-6, c), as clip_grad_norm_ clamps it.
    const total = ops.addScalar(ops.sqrt(sq!), 1e-6);
    const coef = ops.div(ops.fill([], options.clipNorm), ops.maximum(total, ops.fill([], options.clipNorm)));
    g = Object.fromEntries(keys.map((k) => [k, ops.mul(grads[k], coef)])) as TensorGroup<K>;
  }
  const t = state.t + 1;
  const bc1 = 1 - b1 ** t, bc2 = 1 - b2 ** t;
  const m: Partial<Record<K, Tensor>> = {}, v: Partial<Record<K, Tensor>> = {}, out: Partial<Record<K, Tensor>> = {};
  for (const k of keys) {
    m[k] = ops.add(ops.scale(state.m[k], b1), ops.scale(g[k], 1 - b1));
    v[k] = ops.add(ops.scale(state.v[k], b2), ops.scale(ops.square(g[k]), 1 - b2));
    // torch: p −= (lr / bc1) · m / (sqrt(v) / sqrt(bc2) + eps)
    const denom = ops.addScalar(ops.scale(ops.sqrt(v[k]!), 1 / Math.sqrt(bc2)), eps);
    out[k] = ops.sub(params[k], ops.scale(ops.div(m[k]!, denom), lr / bc1));
  }
  return { params: out as TensorGroup<K>, state: { m: m as TensorGroup<K>, v: v as TensorGroup<K>, t } };
}
