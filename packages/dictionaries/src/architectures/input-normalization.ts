// SAELens SAEs trained on per-token normalised inputs (`normalize_activations`):
//   constant_norm_rescale  x_n = c(x)·x with c = sqrt(d)/‖x‖;   x̂ = (f W_dec + b_dec) / c
//   layer_norm             x_n = (x − μ)/(σ + 1e-5), σ = std (unbiased, as torch);  x̂ = (f W_dec + b_dec)·σ + μ
// The reconstruction then depends on x, not on f alone, but sfc's algorithms need a fixed
// linear decoder. sfc therefore reports features in raw activation units, φ = f · s(x) with
// s = 1/c (resp. σ), so that x̂ = φ W_dec + β(x) with β(x) = b_dec·s(x) (+ μ(x)). The decoder
// is φ ↦ φ W_dec with bias 0; the per-token term β(x) belongs to the error node. Feature j is
// active exactly when SAELens' feature j is; its value differs by the per-token factor s(x).
// Derivatives include the normalisation: ∂φ/∂x = s·(∂f/∂x_n)(∂x_n/∂x) + f ∇s.

import { type Dictionary, type Tensor, type TensorOps } from '@sfc/core';

export type InputNormalization = 'constant_norm_rescale' | 'layer_norm';

const LN_EPS = 1e-5;

class InputNormalizedDictionary implements Dictionary {
  readonly architecture: string;
  readonly dIn: number;
  readonly dSae: number;
  readonly hook?: string;
  readonly source?: string;
  readonly format?: string;
  readonly details: Readonly<Record<string, string | number | boolean>>;
  private bias: Tensor | undefined;

  constructor(private readonly ops: TensorOps, private readonly inner: Dictionary, private readonly kind: InputNormalization) {
    this.architecture = inner.architecture;
    this.dIn = inner.dIn;
    this.dSae = inner.dSae;
    if (inner.hook !== undefined) this.hook = inner.hook;
    if (inner.source !== undefined) this.source = inner.source;
    if (inner.format !== undefined) this.format = inner.format;
    this.details = { ...inner.details, normalizeActivations: kind, featureUnits: 'raw (f·s(x))' };
    if (inner.encodeFeatures) this.encodeFeatures = (x, features) => this.selectedFeatures(x, features);
  }

  /** Runs fn on x flattened to [N, d] and restores the leading axes of the result. */
  private rows(x: Tensor, width: number, fn: (x2: Tensor, tmp: (t: Tensor) => Tensor) => Tensor): Tensor {
    const temps: Tensor[] = [];
    const tmp = (t: Tensor) => { temps.push(t); return t; };
    let out: Tensor | undefined;
    try {
      const lead = x.shape.slice(0, -1);
      const x2 = x.shape.length === 2 ? x : tmp(this.ops.reshape(x, [-1, x.shape[x.shape.length - 1]!]));
      const y = fn(x2, tmp);
      out = x.shape.length === 2 ? y : (tmp(y), this.ops.reshape(y, [...lead, width]));
      return out;
    } finally {
      for (const t of temps) if (t !== out && !t.isDisposed) t.dispose();
    }
  }

  /** Normalised input x_n, the feature scale s [N,1], and what the VJP of the normalisation needs. */
  private stats(x: Tensor, tmp: (t: Tensor) => Tensor): { xn: Tensor; s: Tensor; z: Tensor; denom: Tensor } {
    const ops = this.ops;
    const d = this.dIn;
    if (this.kind === 'constant_norm_rescale') {
      const norm = tmp(ops.sqrt(tmp(ops.sum(tmp(ops.square(x)), 1, true))));
      const s = tmp(ops.scale(norm, 1 / Math.sqrt(d)));
      return { xn: tmp(ops.div(x, s)), s, z: x, denom: norm };
    }
    const z = tmp(ops.sub(x, tmp(ops.mean(x, 1, true))));
    const sigma = tmp(ops.sqrt(tmp(ops.scale(tmp(ops.sum(tmp(ops.square(z)), 1, true)), 1 / (d - 1)))));
    return { xn: tmp(ops.div(z, tmp(ops.addScalar(sigma, LN_EPS)))), s: sigma, z, denom: sigma };
  }

  /**
   * Σ_j cot_j ∂φ_j/∂x for rows: Jₙᵀ(s · g) + (cot·f) ∇s, where g = inner VJP at x_n.
   * constant_norm: s = ‖x‖/√d, ∇s = x/(‖x‖√d), Jₙᵀv = c(v − x (x·v)/‖x‖²).
   * layer_norm:    s = σ, ∇s = z/((d−1)σ), Jₙᵀv = (v − mean v)/(σ+ε) − ∇s (z·v)/(σ+ε)².
   */
  private backProject(x: Tensor, st: { s: Tensor; z: Tensor; denom: Tensor }, g: Tensor, cotDotF: Tensor, tmp: (t: Tensor) => Tensor): Tensor {
    const ops = this.ops;
    const d = this.dIn;
    const v = tmp(ops.mul(g, st.s));
    if (this.kind === 'constant_norm_rescale') {
      const n2 = tmp(ops.square(st.denom));
      const c = tmp(ops.div(tmp(ops.fill([1], Math.sqrt(d))), st.denom));
      const xv = tmp(ops.sum(tmp(ops.mul(x, v)), 1, true));
      const jv = tmp(ops.mul(c, tmp(ops.sub(v, tmp(ops.mul(x, tmp(ops.div(xv, n2))))))));
      const gradS = tmp(ops.div(x, tmp(ops.scale(st.denom, Math.sqrt(d)))));
      return ops.add(jv, tmp(ops.mul(gradS, cotDotF)));
    }
    const se = tmp(ops.addScalar(st.s, LN_EPS));
    const gradS = tmp(ops.div(st.z, tmp(ops.scale(st.s, d - 1))));
    const zv = tmp(ops.sum(tmp(ops.mul(st.z, v)), 1, true));
    const centred = tmp(ops.sub(v, tmp(ops.mean(v, 1, true))));
    const jv = tmp(ops.sub(tmp(ops.div(centred, se)), tmp(ops.mul(gradS, tmp(ops.div(zv, tmp(ops.square(se))))))));
    return ops.add(jv, tmp(ops.mul(gradS, cotDotF)));
  }

  encode(x: Tensor): Tensor {
    return this.rows(x, this.dSae, (x2, tmp) => {
      const st = this.stats(x2, tmp);
      return this.ops.mul(tmp(this.inner.encode(st.xn)), st.s);
    });
  }

  /** Present when the inner dictionary has it (x must be [N, dIn]). */
  readonly encodeFeatures?: (x: Tensor, features: Int32Array) => Tensor;

  private selectedFeatures(x: Tensor, features: Int32Array): Tensor {
    return this.rows(x, features.length, (x2, tmp) => {
      const st = this.stats(x2, tmp);
      return this.ops.mul(tmp(this.inner.encodeFeatures!(st.xn, features)), st.s);
    });
  }

  decode(f: Tensor): Tensor {
    if (f.shape.length > 1) return this.ops.matMul(f, this.inner.decoderRows());
    const f2 = this.ops.reshape(f, [1, this.dSae]);
    const y = this.ops.matMul(f2, this.inner.decoderRows());
    f2.dispose();
    try { return this.ops.reshape(y, [this.dIn]); } finally { y.dispose(); }
  }

  decoderRows(): Tensor {
    return this.inner.decoderRows();
  }

  decoderBias(): Tensor {
    this.bias ??= this.ops.zeros([this.dIn]);
    return this.bias;
  }

  encodeVjp(x: Tensor, cotangent: Tensor): Tensor {
    return this.rows(x, this.dIn, (x2, tmp) => {
      const ops = this.ops;
      const cot = cotangent.shape.length === 2 ? cotangent : tmp(ops.reshape(cotangent, [-1, this.dSae]));
      const st = this.stats(x2, tmp);
      const g = tmp(this.inner.encodeVjp(st.xn, cot));
      const cotDotF = tmp(ops.sum(tmp(ops.mul(cot, tmp(this.inner.encode(st.xn)))), 1, true));
      return this.backProject(x2, st, g, cotDotF, tmp);
    });
  }

  featureGradients(x: Tensor, features: Int32Array): Tensor {
    return this.rows(x, this.dIn, (x2, tmp) => {
      const ops = this.ops;
      const n = features.length;
      const st = this.stats(x2, tmp);
      const g = tmp(this.inner.featureGradients(st.xn, features));
      const f = tmp(this.inner.encode(st.xn));
      const flat = Int32Array.from(features, (j, row) => row * this.dSae + j);
      const fSel = tmp(ops.reshape(tmp(ops.gather(tmp(ops.reshape(f, [n * this.dSae])), tmp(ops.intTensor(flat, [n])), 0)), [n, 1]));
      return this.backProject(x2, st, g, fSel, tmp);
    });
  }

  dispose(): void {
    this.inner.dispose();
    this.bias?.dispose();
    this.bias = undefined;
  }
}

/** Wraps a dictionary trained on normalised inputs (see the header for the units sfc uses). */
export function withInputNormalization(ops: TensorOps, inner: Dictionary, kind: InputNormalization): Dictionary {
  return new InputNormalizedDictionary(ops, inner, kind);
}
