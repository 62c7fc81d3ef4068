// TopK SAE (per row): f = relu(pre) kept only at the row's k largest pre-activations.
// SAELens takes topk of pre then relu; dictionary_learning relu then topk — the same values.
// Built without a scatter: the row's k-th largest pre-activation is the cut (pre ≥ kth), so
// exact ties at the cut keep every tied feature where torch would keep an arbitrary subset.
// SAELens' `rescale_acts_by_decoder_norm` is folded into the weights by the loader.
// With a `selectionScale` s (lm-saes 2.x `sparsity_include_decoder_norm`: s_j = ‖W_dec[j]‖) the
// k features are the k largest pre_j·s_j (all s_j > 0 … or 0, which never selects), the values
// stay relu(pre_j) — lm-saes' topk(relu(pre·s)) / s.
// Derivative with the top-k set fixed: ∂f_j/∂x = 1[j selected, pre_j > 0] · W_enc[:, j].

import { ShapeError, type Tensor, type TensorOps } from '@sfc/core';
import { expectShape, type HostTensor } from '../host-weights.js';
import { checkEncoder, LinearDictionary, rowMatMul, rowMatMulTransposed, type DictionaryMeta } from './linear-dictionary.js';
import type { LinearEncoderWeights } from './threshold.js';

export interface TopKWeights extends LinearEncoderWeights {
  readonly k: number;
  /** [dSae], finite and ≥ 0: rank features by pre·scale instead of pre (values are still relu(pre)). */
  readonly selectionScale?: HostTensor;
}

export class TopKDictionary extends LinearDictionary {
  readonly architecture = 'topk';
  readonly k: number;
  /** W_encᵀ [dSae, dIn] (linear-dictionary.ts). */
  private readonly wEncRows: Tensor;
  private readonly bEnc: Tensor;
  private readonly scale: Tensor | undefined;

  constructor(ops: TensorOps, w: TopKWeights, meta: DictionaryMeta = {}) {
    super(ops, w, { ...meta, details: { k: w.k, ...meta.details } });
    checkEncoder(w.W_enc, w.b_enc, w, meta.source ?? 'dictionary');
    if (!Number.isInteger(w.k) || w.k < 1 || w.k > this.dSae) {
      throw new ShapeError(`${meta.source ?? 'dictionary'}: topk k = ${w.k} must be an integer in [1, d_sae = ${this.dSae}]`);
    }
    this.k = w.k;
    this.wEncRows = this.ownEncoderRows(w.W_enc);
    this.bEnc = this.own(w.b_enc);
    if (w.selectionScale !== undefined) {
      const source = meta.source ?? 'dictionary';
      expectShape(w.selectionScale, [this.dSae], 'topk selection scale', source);
      if (!w.selectionScale.data.every((v) => Number.isFinite(v) && v >= 0)) {
        throw new ShapeError(`${source}: topk selection scale must be finite and ≥ 0 (decoder row norms)`);
      }
      this.scale = this.own(w.selectionScale);
    }
  }

  /** pre-activations and the 0/1 mask of live selected features (same shape). */
  private selection(x: Tensor, tmp: (t: Tensor) => Tensor): { pre: Tensor; live: Tensor } {
    const ops = this.ops;
    const pre = tmp(ops.add(tmp(rowMatMulTransposed(ops, this.centre(x, tmp), this.wEncRows, tmp)), this.bEnc));
    const score = this.scale ? tmp(ops.mul(pre, this.scale)) : pre;
    const rank = pre.shape.length;
    const top = ops.topk(score, this.k);
    tmp(top.indices);
    const values = tmp(top.values);
    const begin = pre.shape.map((_, i) => (i === rank - 1 ? this.k - 1 : 0));
    const size = pre.shape.map((_, i) => (i === rank - 1 ? 1 : -1));
    const kth = tmp(ops.slice(values, begin, size));
    // score ≥ kth  ⇔  not (kth > score); live where score > 0 (⇔ pre > 0 when the scale is > 0)
    const selected = tmp(ops.addScalar(tmp(ops.neg(tmp(ops.greater(kth, score)))), 1));
    const live = tmp(ops.mul(selected, tmp(ops.greater(score, tmp(ops.zeros([1]))))));
    return { pre, live };
  }

  encode(x: Tensor): Tensor {
    this.check(x, this.dIn, 'input');
    return this.tidy((tmp) => {
      const { pre, live } = this.selection(x, tmp);
      return this.ops.mul(tmp(this.ops.relu(pre)), live);
    });
  }

  encodeVjp(x: Tensor, cotangent: Tensor): Tensor {
    this.check(x, this.dIn, 'input');
    this.check(cotangent, this.dSae, 'cotangent');
    return this.tidy((tmp) => {
      const { live } = this.selection(x, tmp);
      return rowMatMul(this.ops, tmp(this.ops.mul(cotangent, live)), this.wEncRows, tmp);
    });
  }

  featureGradients(x: Tensor, features: Int32Array): Tensor {
    this.check(x, this.dIn, 'input');
    return this.tidy((tmp) => {
      const ops = this.ops;
      const n = features.length;
      const idx = tmp(this.featureIndex(x, features));
      // The selection needs the whole row; read the mask at (n, features[n]) through a flat gather.
      const { live } = this.selection(x, tmp);
      const flat = Int32Array.from(features, (j, row) => row * this.dSae + j);
      const on = tmp(ops.gather(tmp(ops.reshape(live, [n * this.dSae])), tmp(ops.intTensor(flat, [n])), 0));
      const rows = tmp(ops.gather(this.wEncRows, idx, 0));
      return ops.mul(rows, tmp(ops.reshape(on, [n, 1])));
    });
  }
}
