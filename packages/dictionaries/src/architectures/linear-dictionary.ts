// Shared base of every SAE with a linear decoder x̂ = f·W_dec + b_dec: owns the device
// tensors, decode, decoder rows/bias, input centring (x − b_dec when the format says so),
// disposal, and the encoder products the VJPs need.
// Layout: W_dec [dSae, dIn], so decode is a plain matmul. Relu, JumpReLU, BatchTopK and TopK hold
// the encoder as rows too (W_encᵀ [dSae, dIn], transposed once at load): encode is x · W_encᵀᵀ, a
// product with the weight's transpose, which the GEMM packs as it reads it — at a few dozen rows
// a quarter less CPU time than packing W_enc [dIn, dSae] (docs/performance.md) — and a feature's
// encoder direction is one row. Gated SAEs keep W_enc [dIn, dSae].

import { dropped, InputError, ShapeError, shapeToString, tidySync, transpose, type Dictionary, type Tensor, type TensorOps } from '@sfc/core';
import { expectShape, type HostTensor } from '../host-weights.js';

export interface DictionaryMeta {
  /** Hook or submodule the dictionary was trained on. */
  readonly hook?: string;
  /** File or folder it came from. */
  readonly source?: string;
  /** Loader/format id: saelens, dictionary-learning, gemma-scope, … */
  readonly format?: string;
  /** Extra facts for `sfc dict info` (k, class name, normalisation, …). */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

/** The decoder half every linear architecture shares. */
export interface DecoderWeights {
  /** [dSae, dIn] — rows are feature directions. */
  readonly W_dec: HostTensor;
  /** [dIn]. */
  readonly b_dec: HostTensor;
  /** Subtract b_dec from the input before encoding (SAELens `apply_b_dec_to_input`). */
  readonly applyBDecToInput: boolean;
  /**
   * The loader hands W_dec's array over (read fresh from the file, held by nothing else): the
   * dictionary keeps it as its storage instead of a copy where the backend can (TensorOps.adopt).
   * The caller must not use the array afterwards.
   */
  readonly handOver?: boolean;
}

export abstract class LinearDictionary implements Dictionary {
  abstract readonly architecture: string;
  readonly dIn: number;
  readonly dSae: number;
  readonly hook?: string;
  readonly source?: string;
  readonly format?: string;
  readonly details: Readonly<Record<string, string | number | boolean>>;

  protected readonly ops: TensorOps;
  protected readonly wDec: Tensor;
  protected readonly bDec: Tensor;
  protected readonly applyBDecToInput: boolean;
  private readonly owned: Tensor[] = [];
  private disposed = false;

  protected constructor(ops: TensorOps, dec: DecoderWeights, meta: DictionaryMeta) {
    const [dSae, dIn] = dec.W_dec.shape as [number, number];
    if (dec.W_dec.shape.length !== 2) throw new ShapeError(`${meta.source ?? 'dictionary'}: W_dec must be 2-D, got ${shapeToString(dec.W_dec.shape)}`);
    expectShape(dec.b_dec, [dIn], 'b_dec', meta.source ?? 'dictionary');
    if (dSae < 1 || dIn < 1) {
      throw new ShapeError(`${meta.source ?? 'dictionary'}: W_dec is ${shapeToString(dec.W_dec.shape)}, a dictionary with d_sae = ${dSae} and d_in = ${dIn}`,
        'a dictionary needs at least one feature and one input dimension; the file is truncated or not an SAE');
    }
    this.ops = ops;
    this.dIn = dIn;
    this.dSae = dSae;
    if (meta.hook !== undefined) this.hook = meta.hook;
    if (meta.source !== undefined) this.source = meta.source;
    if (meta.format !== undefined) this.format = meta.format;
    this.details = { applyBDecToInput: dec.applyBDecToInput, ...meta.details };
    this.applyBDecToInput = dec.applyBDecToInput;
    this.wDec = this.own(dec.W_dec, dec.handOver === true);
    this.bDec = this.own(dec.b_dec);
  }

  /**
   * Uploads a host tensor; it lives until dispose(). `handedOver`: nobody else holds the array, so
   * it becomes the tensor's storage where the backend can adopt it — unless it is a view into a
   * larger buffer, which adopting would keep alive whole.
   */
  protected own(w: HostTensor, handedOver = false): Tensor {
    const whole = w.data.byteOffset === 0 && w.data.byteLength === w.data.buffer.byteLength;
    const adopt = handedOver && whole ? this.ops.adopt?.bind(this.ops) : undefined;
    const t = adopt ? adopt(w.data, w.shape) : this.ops.tensor(w.data, w.shape);
    if (!adopt) dropped(w.data.byteLength); // a loader's array, copied: usually garbage now
    this.owned.push(t);
    return t;
  }

  /** Uploads an encoder W_enc [dIn, dSae] as its rows W_encᵀ [dSae, dIn]; it lives until dispose(). */
  protected ownEncoderRows(W_enc: HostTensor): Tensor {
    const [dIn, dSae] = W_enc.shape as [number, number];
    const rows = this.own({ shape: [dSae, dIn], data: transpose(W_enc.data, dIn, dSae) }, true);
    dropped(W_enc.data.byteLength); // the loader's W_enc, usually garbage now
    return rows;
  }

  /**
   * Columns `idx` of an encoder matrix w [dIn, dSae] as rows [n, dIn]: gathered, then the small
   * result transposed — the [dSae, dIn] transpose (64 MiB at 32k features) is never built.
   */
  protected encoderColumns(w: Tensor, idx: Tensor, tmp: (t: Tensor) => Tensor): Tensor {
    return tmp(this.ops.transpose(tmp(this.ops.gather(w, idx, 1))));
  }

  protected check(x: Tensor, width: number, what: string): void {
    if (this.disposed) throw new InputError(`${this.describeSelf()} was used after dispose()`, 'load the dictionary again');
    if (x.shape[x.shape.length - 1] !== width) {
      throw new ShapeError(`${this.describeSelf()}: ${what} has shape ${shapeToString(x.shape)}, expected last axis ${width}`,
        'pass activations of the submodule this dictionary was trained on');
    }
  }

  protected describeSelf(): string {
    return `${this.architecture} dictionary${this.source ? ` from ${this.source}` : ''}`;
  }

  /** Synchronous tidy (encode/decode stay synchronous): see core's tidySync. */
  protected tidy(fn: (tmp: <T extends Tensor>(t: T) => T) => Tensor): Tensor {
    return tidySync(fn);
  }

  /** x − b_dec when the format centres inputs, else x itself (registered with tmp when new). */
  protected centre(x: Tensor, tmp: (t: Tensor) => Tensor): Tensor {
    return this.applyBDecToInput ? tmp(this.ops.sub(x, this.bDec)) : x;
  }

  /**
   * For row n: feature features[n]'s pre-activation x̃_n·w_n + bias, from its encoder direction
   * w_n (row n of `rows` [n, dIn]) — without computing the other dSae − 1 features.
   */
  protected selectedPre(xc: Tensor, rows: Tensor, bias: Tensor, idx: Tensor, tmp: (t: Tensor) => Tensor): Tensor {
    const ops = this.ops;
    return tmp(ops.add(tmp(ops.sum(tmp(ops.mul(xc, rows)), 1)), tmp(ops.gather(bias, idx, 0))));
  }

  protected featureIndex(x: Tensor, features: Int32Array): Tensor {
    if (x.shape.length !== 2 || x.shape[0] !== features.length) {
      throw new ShapeError(`${this.describeSelf()}: featureGradients needs x [N, dIn] with one feature per row, got x ${shapeToString(x.shape)} and ${features.length} features`);
    }
    return this.featureIndices(features);
  }

  /** `features` as an index tensor, each checked against [0, dSae). */
  protected featureIndices(features: Int32Array): Tensor {
    for (const f of features) {
      if (!Number.isInteger(f) || f < 0 || f >= this.dSae) {
        throw new InputError(`${this.describeSelf()}: feature index ${f} out of range [0, ${this.dSae})`);
      }
    }
    return this.ops.intTensor(features, [features.length]);
  }

  abstract encode(x: Tensor): Tensor;
  abstract encodeVjp(x: Tensor, cotangent: Tensor): Tensor;
  abstract featureGradients(x: Tensor, features: Int32Array): Tensor;

  decode(f: Tensor): Tensor {
    this.check(f, this.dSae, 'features');
    return this.tidy((tmp) => this.ops.add(tmp(rowMatMul(this.ops, f, this.wDec, tmp)), this.bDec));
  }

  decoderRows(): Tensor {
    return this.wDec;
  }

  decoderBias(): Tensor {
    return this.bDec;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.owned) t.dispose();
    this.owned.length = 0;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }
}

/** Shape-checks the encoder half shared by relu, jumprelu, topk and batchtopk SAEs. */
export function checkEncoder(W_enc: HostTensor, b_enc: HostTensor, dec: DecoderWeights, source: string): void {
  const [dSae, dIn] = dec.W_dec.shape as [number, number];
  expectShape(W_enc, [dIn, dSae], 'W_enc', source);
  expectShape(b_enc, [dSae], 'b_enc', source);
}

/** x · wᵀ for x [..., k] including a single vector [k] and w [m, k]; intermediates go to tmp. */
export function rowMatMulTransposed(ops: TensorOps, x: Tensor, w: Tensor, tmp: (t: Tensor) => Tensor): Tensor {
  if (x.shape.length === 1) return ops.reshape(tmp(ops.matMulTransposed(tmp(ops.reshape(x, [1, x.shape[0]!])), w)), [w.shape[0]!]);
  return ops.matMulTransposed(x, w);
}

/** x @ w for x [..., k] including a single vector [k]; intermediates go to tmp. */
export function rowMatMul(ops: TensorOps, x: Tensor, w: Tensor, tmp: (t: Tensor) => Tensor): Tensor {
  if (x.shape.length === 1) return ops.reshape(tmp(ops.matMul(tmp(ops.reshape(x, [1, x.shape[0]!])), w)), [w.shape[1]!]);
  return ops.matMul(x, w);
}
