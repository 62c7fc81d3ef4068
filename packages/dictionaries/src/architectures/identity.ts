// The identity dictionary (feature-circuits' IdentityDict): features are the submodule's own
// coordinates (neurons), the decoder is the identity with no bias, and the error is always 0.

import { InputError, ShapeError, shapeToString, type Dictionary, type Tensor, type TensorOps } from '@sfc/core';

export class IdentityDictionary implements Dictionary {
  readonly architecture = 'identity';
  readonly dIn: number;
  readonly dSae: number;
  readonly hook?: string;
  readonly source?: string;
  readonly format = 'identity';
  readonly details: Readonly<Record<string, string | number | boolean>> = {};
  private readonly ops: TensorOps;
  private eye: Tensor | undefined;
  private bias: Tensor | undefined;
  private disposed = false;

  constructor(ops: TensorOps, d: number, meta: { hook?: string; source?: string } = {}) {
    if (!Number.isInteger(d) || d < 1) throw new ShapeError(`identity dictionary needs a positive width, got ${d}`, 'pass the model width (dIn)');
    this.ops = ops;
    this.dIn = d;
    this.dSae = d;
    if (meta.hook !== undefined) this.hook = meta.hook;
    if (meta.source !== undefined) this.source = meta.source;
  }

  private check(x: Tensor, what: string): void {
    if (this.disposed) throw new InputError('identity dictionary used after dispose()', 'load it again');
    if (x.shape[x.shape.length - 1] !== this.dIn) {
      throw new ShapeError(`identity dictionary (d = ${this.dIn}): ${what} has shape ${shapeToString(x.shape)}`, 'pass activations of the submodule it was made for');
    }
  }

  /** A new handle (callers own what encode returns and may dispose it independently of x). */
  encode(x: Tensor): Tensor {
    this.check(x, 'input');
    return this.ops.reshape(x, x.shape);
  }

  decode(f: Tensor): Tensor {
    this.check(f, 'features');
    return this.ops.reshape(f, f.shape);
  }

  /** The d×d identity, built on first use (most callers never need it). */
  decoderRows(): Tensor {
    if (!this.eye) {
      const d = this.dIn;
      const idx = this.ops.intTensor(Int32Array.from({ length: d }, (_, i) => i), [d]);
      // Often first asked for inside a caller's scope: keep it, it lives until dispose().
      this.eye = this.ops.keep(this.ops.oneHot(idx, d));
      idx.dispose();
    }
    return this.eye;
  }

  decoderBias(): Tensor {
    this.bias ??= this.ops.keep(this.ops.zeros([this.dIn]));
    return this.bias;
  }

  encodeVjp(x: Tensor, cotangent: Tensor): Tensor {
    this.check(x, 'input');
    this.check(cotangent, 'cotangent');
    return this.ops.reshape(cotangent, cotangent.shape);
  }

  featureGradients(x: Tensor, features: Int32Array): Tensor {
    this.check(x, 'input');
    if (x.shape.length !== 2 || x.shape[0] !== features.length) {
      throw new ShapeError(`identity dictionary: featureGradients needs x [N, d] and N features, got ${shapeToString(x.shape)} and ${features.length}`);
    }
    for (const f of features) if (!Number.isInteger(f) || f < 0 || f >= this.dIn) throw new InputError(`identity dictionary: feature ${f} out of range [0, ${this.dIn})`);
    const idx = this.ops.intTensor(features, [features.length]);
    try {
      return this.ops.oneHot(idx, this.dIn);
    } finally {
      idx.dispose();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.eye?.dispose();
    this.bias?.dispose();
  }
}
