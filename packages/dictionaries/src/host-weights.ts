// Host-side (plain Float32Array) weight handling done once at load time: shape checks,
// transposes into the layout the hot matmuls want, and output-preserving norm folds.
// Nothing here touches activations.

import { ShapeError, shapeToString, type WeightTensor } from '@sfc/core';

export type HostTensor = WeightTensor;

export function host(shape: readonly number[], data: Float32Array): HostTensor {
  return { shape, data };
}

/** Throws a ShapeError naming the tensor and the file when `w` is not of `shape`. */
export function expectShape(w: HostTensor, shape: readonly number[], name: string, source: string): HostTensor {
  if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
    throw new ShapeError(`${source}: ${name} has shape ${shapeToString(w.shape)}, expected ${shapeToString(shape)}`,
      'the file is inconsistent with its own configuration (wrong d_in/d_sae, or a truncated export)');
  }
  return w;
}

/** [r, c] → [c, r]. */
export function transpose2d(w: HostTensor): HostTensor {
  const [r, c] = w.shape as [number, number];
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = w.data[i * c + j]!;
  return host([c, r], out);
}

/** L2 norm of each row of a [r, c] matrix (float64 accumulation). */
export function rowNorms(w: HostTensor): Float64Array {
  const [r, c] = w.shape as [number, number];
  const out = new Float64Array(r);
  for (let i = 0; i < r; i++) {
    let s = 0;
    for (let j = 0; j < c; j++) s += w.data[i * c + j]! ** 2;
    out[i] = Math.sqrt(s);
  }
  return out;
}

/** Row i of a [r, c] matrix times s[i]. */
export function scaleRows(w: HostTensor, s: ArrayLike<number>): HostTensor {
  const [r, c] = w.shape as [number, number];
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[i * c + j] = w.data[i * c + j]! * s[i]!;
  return host(w.shape, out);
}

/** Column j of a [r, c] matrix times s[j]. */
export function scaleColumns(w: HostTensor, s: ArrayLike<number>): HostTensor {
  const [r, c] = w.shape as [number, number];
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[i * c + j] = w.data[i * c + j]! * s[j]!;
  return host(w.shape, out);
}

/** Element-wise v[i] * s[i] (s may be a scalar). */
export function scaleVector(v: HostTensor, s: ArrayLike<number> | number): HostTensor {
  const out = new Float32Array(v.data.length);
  for (let i = 0; i < out.length; i++) out[i] = v.data[i]! * (typeof s === 'number' ? s : s[i]!);
  return host(v.shape, out);
}

/** A [n] vector filled with `value`. */
export function constant(n: number, value: number): HostTensor {
  return host([n], new Float32Array(n).fill(value));
}

/**
 * Rescales so every decoder row has unit norm, moving the norm into the encoder
 * (W_enc columns, b_enc, and any per-feature threshold scale the same way), which leaves
 * decode(encode(x)) unchanged and multiplies feature j by ‖W_dec[j]‖. Rows of zero norm are
 * left alone (a dead feature's decoder row must not become NaN).
 */
export function foldDecoderNorms(w: { W_enc: HostTensor; b_enc: HostTensor; W_dec: HostTensor }, extra: readonly HostTensor[] = []):
  { W_enc: HostTensor; b_enc: HostTensor; W_dec: HostTensor; extra: HostTensor[]; norms: Float64Array } {
  const norms = rowNorms(w.W_dec);
  const safe = Float64Array.from(norms, (n) => (n > 0 ? n : 1));
  return {
    W_dec: scaleRows(w.W_dec, Float64Array.from(safe, (n) => 1 / n)),
    W_enc: scaleColumns(w.W_enc, safe),
    b_enc: scaleVector(w.b_enc, safe),
    extra: extra.map((t) => scaleVector(t, t.data.length === 1 ? safe[0]! : safe)),
    norms,
  };
}
