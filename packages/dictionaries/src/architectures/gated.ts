// Gated SAE (Rajamanoharan et al. 2024; SAELens `gated`, dictionary_learning GatedAutoEncoder):
//   x̃ = x − b_dec·[applyBDecToInput]
//   π_gate = x̃ W_enc + b_gate,   π_mag = x̃ (W_enc ⊙ exp(r_mag)) + b_mag
//   f = 1[π_gate > 0] ⊙ relu(π_mag)
// W_mag = W_enc ⊙ exp(r_mag) is built once at load. With the gate fixed (as autograd has it):
//   ∂f_j/∂x = 1[π_gate_j > 0] · 1[π_mag_j > 0] · W_mag[:, j].

import type { Tensor, TensorOps } from '@sfc/core';
import { expectShape, host, type HostTensor } from '../host-weights.js';
import { LinearDictionary, rowMatMul, rowMatMulTransposed, type DecoderWeights, type DictionaryMeta } from './linear-dictionary.js';

export interface GatedWeights extends DecoderWeights {
  /** [dIn, dSae], shared by the gate and (rescaled) magnitude paths. */
  readonly W_enc: HostTensor;
  readonly b_gate: HostTensor;
  readonly b_mag: HostTensor;
  readonly r_mag: HostTensor;
}

export class GatedDictionary extends LinearDictionary {
  readonly architecture = 'gated';
  private readonly wEnc: Tensor;
  private readonly wMag: Tensor;
  private readonly bGate: Tensor;
  private readonly bMag: Tensor;

  constructor(ops: TensorOps, w: GatedWeights, meta: DictionaryMeta = {}) {
    super(ops, w, meta);
    const src = meta.source ?? 'dictionary';
    expectShape(w.W_enc, [this.dIn, this.dSae], 'W_enc', src);
    for (const [name, t] of [['b_gate', w.b_gate], ['b_mag', w.b_mag], ['r_mag', w.r_mag]] as const) expectShape(t, [this.dSae], name, src);
    const mag = new Float32Array(w.W_enc.data.length);
    const scale = Float64Array.from(w.r_mag.data, Math.exp);
    for (let i = 0; i < this.dIn; i++) for (let j = 0; j < this.dSae; j++) mag[i * this.dSae + j] = w.W_enc.data[i * this.dSae + j]! * scale[j]!;
    this.wEnc = this.own(w.W_enc);
    this.wMag = this.own(host(w.W_enc.shape, mag));
    this.bGate = this.own(w.b_gate);
    this.bMag = this.own(w.b_mag);
  }

  private paths(x: Tensor, tmp: (t: Tensor) => Tensor): { gate: Tensor; mag: Tensor } {
    const ops = this.ops;
    const xc = this.centre(x, tmp);
    const gatePre = tmp(ops.add(tmp(rowMatMul(ops, xc, this.wEnc, tmp)), this.bGate));
    const mag = tmp(ops.add(tmp(rowMatMul(ops, xc, this.wMag, tmp)), this.bMag));
    return { gate: tmp(ops.greater(gatePre, tmp(ops.zeros([1])))), mag };
  }

  encode(x: Tensor): Tensor {
    this.check(x, this.dIn, 'input');
    return this.tidy((tmp) => {
      const { gate, mag } = this.paths(x, tmp);
      return this.ops.mul(gate, tmp(this.ops.relu(mag)));
    });
  }

  encodeVjp(x: Tensor, cotangent: Tensor): Tensor {
    this.check(x, this.dIn, 'input');
    this.check(cotangent, this.dSae, 'cotangent');
    return this.tidy((tmp) => {
      const ops = this.ops;
      const { gate, mag } = this.paths(x, tmp);
      const live = tmp(ops.mul(gate, tmp(ops.greater(mag, tmp(ops.zeros([1]))))));
      return rowMatMulTransposed(ops, tmp(ops.mul(cotangent, live)), this.wMag, tmp);
    });
  }

  featureGradients(x: Tensor, features: Int32Array): Tensor {
    this.check(x, this.dIn, 'input');
    return this.tidy((tmp) => {
      const ops = this.ops;
      const idx = tmp(this.featureIndex(x, features));
      const xc = this.centre(x, tmp);
      const magRows = this.encoderColumns(this.wMag, idx, tmp);
      const gate = this.selectedPre(xc, this.encoderColumns(this.wEnc, idx, tmp), this.bGate, idx, tmp);
      const mag = this.selectedPre(xc, magRows, this.bMag, idx, tmp);
      const zero = tmp(ops.zeros([1]));
      const on = tmp(ops.mul(tmp(ops.greater(gate, zero)), tmp(ops.greater(mag, zero))));
      return ops.mul(magRows, tmp(ops.reshape(on, [features.length, 1])));
    });
  }
}
