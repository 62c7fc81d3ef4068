// SAEs whose activation is "keep the pre-activation where it exceeds a per-feature threshold":
//   relu                  f = relu(pre)                                  (threshold 0)
//   jumprelu              f = relu(pre) · 1[pre > θ_j]                  (SAELens, Gemma Scope, dictionary_learning)
//   batchtopk (inference) f = relu(pre) · 1[relu(pre) > θ]              (one learned scalar θ)
//   matryoshka batchtopk  as batchtopk, features past the active groups are 0
// with pre = (x − b_dec·[applyBDecToInput]) W_enc + b_enc. All are pre · 1[pre > θ⁺_j] with
// θ⁺_j = max(θ_j, 0) (+∞ for inactive features) — strict `>`, as every source writes it.
// The derivative treats the selection as fixed: ∂f_j/∂x = 1[pre_j > θ⁺_j] · W_enc[:, j].

import { ShapeError, type Tensor, type TensorOps } from '@sfc/core';
import { expectShape, host, type HostTensor } from '../host-weights.js';
import { checkEncoder, LinearDictionary, rowMatMul, rowMatMulTransposed, type DecoderWeights, type DictionaryMeta } from './linear-dictionary.js';

export interface LinearEncoderWeights extends DecoderWeights {
  /** [dIn, dSae]. */
  readonly W_enc: HostTensor;
  /** [dSae]. */
  readonly b_enc: HostTensor;
}

abstract class ThresholdDictionary extends LinearDictionary {
  /** W_encᵀ [dSae, dIn] (linear-dictionary.ts). */
  private readonly wEncRows: Tensor;
  private readonly bEnc: Tensor;
  /** θ⁺ [dSae]. */
  private readonly thr: Tensor;
  private readonly plainRelu: boolean;

  protected constructor(ops: TensorOps, w: LinearEncoderWeights, thresholdPlus: Float32Array | undefined, meta: DictionaryMeta) {
    super(ops, w, meta);
    checkEncoder(w.W_enc, w.b_enc, w, meta.source ?? 'dictionary');
    this.wEncRows = this.ownEncoderRows(w.W_enc);
    this.bEnc = this.own(w.b_enc);
    this.plainRelu = thresholdPlus === undefined || thresholdPlus.every((t) => t === 0);
    this.thr = this.own(host([this.dSae], thresholdPlus ?? new Float32Array(this.dSae)));
  }

  private pre(x: Tensor, tmp: (t: Tensor) => Tensor): Tensor {
    return tmp(this.ops.add(tmp(rowMatMulTransposed(this.ops, this.centre(x, tmp), this.wEncRows, tmp)), this.bEnc));
  }

  encode(x: Tensor): Tensor {
    this.check(x, this.dIn, 'input');
    return this.tidy((tmp) => {
      const pre = this.pre(x, tmp);
      const act = this.ops.relu(pre);
      // relu(pre)·1[pre > θ⁺] = pre·1[pre > θ⁺] since θ⁺ ≥ 0; relu first keeps zeros positive.
      return this.plainRelu ? act : this.ops.mul(tmp(act), tmp(this.ops.greater(pre, this.thr)));
    });
  }

  encodeVjp(x: Tensor, cotangent: Tensor): Tensor {
    this.check(x, this.dIn, 'input');
    this.check(cotangent, this.dSae, 'cotangent');
    return this.tidy((tmp) => {
      const mask = tmp(this.ops.greater(this.pre(x, tmp), this.thr));
      return rowMatMul(this.ops, tmp(this.ops.mul(cotangent, mask)), this.wEncRows, tmp);
    });
  }

  encodeFeatures(x: Tensor, features: Int32Array): Tensor {
    this.check(x, this.dIn, 'input');
    return this.tidy((tmp) => {
      const ops = this.ops;
      const idx = tmp(this.featureIndices(features));
      const pre = tmp(ops.add(tmp(rowMatMulTransposed(ops, this.centre(x, tmp), tmp(ops.gather(this.wEncRows, idx, 0)), tmp)), tmp(ops.gather(this.bEnc, idx, 0))));
      const act = ops.relu(pre);
      return this.plainRelu ? act : ops.mul(tmp(act), tmp(ops.greater(pre, tmp(ops.gather(this.thr, idx, 0)))));
    });
  }

  featureGradients(x: Tensor, features: Int32Array): Tensor {
    this.check(x, this.dIn, 'input');
    return this.tidy((tmp) => {
      const ops = this.ops;
      const idx = tmp(this.featureIndex(x, features));
      const rows = tmp(ops.gather(this.wEncRows, idx, 0));
      const pre = this.selectedPre(this.centre(x, tmp), rows, this.bEnc, idx, tmp);
      const on = tmp(ops.greater(pre, tmp(ops.gather(this.thr, idx, 0))));
      return ops.mul(rows, tmp(ops.reshape(on, [features.length, 1])));
    });
  }
}

/** Standard ReLU SAE (SAELens `standard`, dictionary_learning AutoEncoder / AutoEncoderNew). */
export class ReluDictionary extends ThresholdDictionary {
  readonly architecture = 'relu';
  constructor(ops: TensorOps, w: LinearEncoderWeights, meta: DictionaryMeta = {}) {
    super(ops, w, undefined, meta);
  }
}

function thresholdPlus(threshold: HostTensor, dSae: number, source: string): Float32Array {
  expectShape(threshold, [dSae], 'threshold', source);
  return Float32Array.from(threshold.data, (t) => Math.max(t, 0));
}

/** JumpReLU SAE: f = relu(pre)·1[pre > θ_j] (SAELens `jumprelu`, Gemma Scope, JumpReluAutoEncoder). */
export class JumpReluDictionary extends ThresholdDictionary {
  readonly architecture = 'jumprelu';
  constructor(ops: TensorOps, w: LinearEncoderWeights & { readonly threshold: HostTensor }, meta: DictionaryMeta = {}) {
    super(ops, w, thresholdPlus(w.threshold, w.W_dec.shape[0]!, meta.source ?? 'dictionary'), meta);
  }
}

/** BatchTopK SAE at inference: the learned global threshold replaces the batch-wide top-k. */
export class BatchTopKDictionary extends ThresholdDictionary {
  readonly architecture = 'batchtopk';
  readonly k: number | undefined;
  readonly threshold: number;
  constructor(ops: TensorOps, w: LinearEncoderWeights & { readonly threshold: number; readonly k?: number }, meta: DictionaryMeta = {}) {
    const dSae = w.W_dec.shape[0]!;
    super(ops, w, new Float32Array(dSae).fill(Math.max(w.threshold, 0)),
      { ...meta, details: { threshold: w.threshold, ...(w.k !== undefined ? { k: w.k } : {}), ...meta.details } });
    this.threshold = w.threshold;
    this.k = w.k;
  }
}

/**
 * Matryoshka BatchTopK SAE at inference: BatchTopK's threshold, and features of groups past
 * `activeGroups` (default all) are always 0.
 */
export class MatryoshkaBatchTopKDictionary extends ThresholdDictionary {
  readonly architecture = 'matryoshka_batchtopk';
  readonly groupSizes: readonly number[];
  readonly threshold: number;
  constructor(ops: TensorOps, w: LinearEncoderWeights & {
    readonly threshold: number; readonly k?: number; readonly groupSizes: readonly number[]; readonly activeGroups?: number;
  }, meta: DictionaryMeta = {}) {
    const dSae = w.W_dec.shape[0]!;
    const total = w.groupSizes.reduce((a, b) => a + b, 0);
    if (total !== dSae || w.groupSizes.some((g) => !Number.isInteger(g) || g <= 0)) {
      throw new ShapeError(`${meta.source ?? 'dictionary'}: matryoshka group sizes [${w.groupSizes.join(', ')}] must be positive and sum to d_sae = ${dSae}`);
    }
    const active = w.activeGroups ?? w.groupSizes.length;
    const end = w.groupSizes.slice(0, active).reduce((a, b) => a + b, 0);
    const thr = new Float32Array(dSae).fill(Math.max(w.threshold, 0));
    thr.fill(Infinity, end);
    super(ops, w, thr, {
      ...meta,
      details: { threshold: w.threshold, groups: w.groupSizes.join('+'), activeGroups: active, ...(w.k !== undefined ? { k: w.k } : {}), ...meta.details },
    });
    this.groupSizes = w.groupSizes;
    this.threshold = w.threshold;
  }
}
