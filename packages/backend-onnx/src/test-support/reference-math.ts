// Float64 reference math for tests: every op the ONNX lowering implements, written plainly in JS,
// plus whole segments composed from them and central finite differences. Independent of the
// lowering code on purpose (no shared helpers), so a test compares two separate derivations.

import { rotaryInverseFrequencies, type LinearSpec, type ModelSpec, type NormSpec, type SegmentSpec, type WeightStore } from '@sfc/core';

export interface T64 { readonly shape: readonly number[]; readonly data: Float64Array }

export const t64 = (shape: readonly number[], data: ArrayLike<number>): T64 => ({ shape: [...shape], data: Float64Array.from(data) });
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Deterministic pseudo-random numbers in [-scale, scale). */
export function randn(seed: number, n: number, scale = 1): Float64Array {
  let s = seed >>> 0 || 1;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

export function layerNorm(x: T64, w: ArrayLike<number>, b: ArrayLike<number>, eps: number): T64 {
  const d = x.shape[x.shape.length - 1]!;
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < x.data.length / d; r++) {
    let mu = 0;
    for (let j = 0; j < d; j++) mu += x.data[r * d + j]!;
    mu /= d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (x.data[r * d + j]! - mu) ** 2;
    const rs = 1 / Math.sqrt(v / d + eps);
    for (let j = 0; j < d; j++) out[r * d + j] = (x.data[r * d + j]! - mu) * rs * w[j]! + b[j]!;
  }
  return { shape: x.shape, data: out };
}

/** x [..., in] @ W [in, out] (+ b). */
export function linear(x: T64, w: ArrayLike<number>, inDim: number, outDim: number, b?: ArrayLike<number>): T64 {
  const rows = x.data.length / inDim;
  const out = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let acc = b ? b[o]! : 0;
      for (let i = 0; i < inDim; i++) acc += x.data[r * inDim + i]! * w[i * outDim + o]!;
      out[r * outDim + o] = acc;
    }
  }
  return { shape: [...x.shape.slice(0, -1), outDim], data: out };
}

function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse for 1e-6 checks; use a series / continued fraction.
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = ax, term = ax;
    for (let n = 1; n < 100; n++) {
      term *= -ax * ax / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz) for large |x|.
  let f = ax, c = ax, dd = 0;
  for (let i = 1; i < 200; i++) {
    const an = i / 2;
    dd = ax + an * dd; dd = 1 / dd;
    c = ax + an / c;
    const delta = c * dd;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

export const map = (x: T64, fn: (v: number) => number): T64 => ({ shape: x.shape, data: x.data.map(fn) });
export const geluExact = (x: T64) => map(x, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
export const geluTanh = (x: T64) => map(x, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
export const relu = (x: T64) => map(x, (v) => (v > 0 ? v : 0));

export function add(a: T64, b: T64): T64 {
  // b may broadcast over leading axes of a.
  const nb = b.data.length;
  return { shape: a.shape, data: a.data.map((v, i) => v + b.data[i % nb]!) };
}

/** qkv [b, s, 3d] → q, k, v as [b, h, s, hd]. */
export function splitHeads(qkv: T64, h: number, hd: number): [T64, T64, T64] {
  const [B, S] = qkv.shape as [number, number];
  const d = h * hd;
  const parts = [0, 1, 2].map(() => new Float64Array(B * h * S * hd));
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let p = 0; p < 3; p++) for (let hh = 0; hh < h; hh++) for (let e = 0; e < hd; e++) {
    parts[p]![((b * h + hh) * S + s) * hd + e] = qkv.data[(b * S + s) * 3 * d + p * d + hh * hd + e]!;
  }
  const [q, k, v] = parts.map((data): T64 => ({ shape: [B, h, S, hd], data }));
  return [q!, k!, v!];
}

export function mergeHeads(x: T64): T64 {
  const [B, h, S, hd] = x.shape as [number, number, number, number];
  const out = new Float64Array(B * S * h * hd);
  for (let b = 0; b < B; b++) for (let hh = 0; hh < h; hh++) for (let s = 0; s < S; s++) for (let e = 0; e < hd; e++) {
    out[(b * S + s) * h * hd + hh * hd + e] = x.data[((b * h + hh) * S + s) * hd + e]!;
  }
  return { shape: [B, S, h * hd], data: out };
}

/**
 * Rotary tables [S, 2·half] in float64 for positions offset…offset+S−1 from inverse frequencies
 * (core's, which the rope tests check against PyTorch): cat(angles, angles), cos/sin × scale.
 */
export function rotaryTables(invFreq: ArrayLike<number>, offset: number, S: number, scale = 1): { cos: T64; sin: T64 } {
  const half = invFreq.length, r = 2 * half;
  const cos = new Float64Array(S * r), sin = new Float64Array(S * r);
  for (let s = 0; s < S; s++) for (let i = 0; i < half; i++) {
    const ang = (offset + s) * invFreq[i]!;
    cos[s * r + i] = cos[s * r + half + i] = Math.cos(ang) * scale;
    sin[s * r + i] = sin[s * r + half + i] = Math.sin(ang) * scale;
  }
  return { cos: { shape: [S, r], data: cos }, sin: { shape: [S, r], data: sin } };
}

/** GPT-NeoX rotary (rotate-half) on the first r dims of each head of x [B, h, S, hd], with tables cos, sin [S, r]. */
export function rotary(x: T64, cos: T64, sin: T64): T64 {
  const [B, h, S, hd] = x.shape as [number, number, number, number];
  const r = cos.shape[1]!, half = r / 2;
  const out = Float64Array.from(x.data);
  for (let s = 0; s < S; s++) {
    for (let i = 0; i < half; i++) {
      const c = cos.data[s * r + i]!, sn = sin.data[s * r + i]!;
      for (let b = 0; b < B; b++) for (let hh = 0; hh < h; hh++) {
        const o = ((b * h + hh) * S + s) * hd;
        const x1 = x.data[o + i]!, x2 = x.data[o + i + half]!;
        out[o + i] = x1 * c - x2 * sn;
        out[o + i + half] = x2 * c + x1 * sn;
      }
    }
  }
  return { shape: x.shape, data: out };
}

export interface AttentionOptions {
  /** Gemma 2 attention-logit soft-capping: scores → cap·tanh(scores / cap). */
  readonly softCap?: number;
  /** Query at position P sees keys j with P − window < j ≤ P. */
  readonly window?: number;
}

/**
 * q [B, h, S, hd], k, v [B, kvh, T, hd] with T ≥ S and h a multiple of kvh: query i sits at key
 * position T − S + i; query head hh attends with key head ⌊hh / (h / kvh)⌋.
 */
export function causalAttention(q: T64, k: T64, v: T64, scale: number, o: AttentionOptions = {}): T64 {
  const [B, h, S, hd] = q.shape as [number, number, number, number];
  const kvh = k.shape[1]!, T = k.shape[2]!;
  const out = new Float64Array(q.data.length);
  const p = new Float64Array(T);
  for (let b = 0; b < B; b++) for (let hh = 0; hh < h; hh++) {
    const bh = b * h + hh, bk = b * kvh + Math.floor(hh / (h / kvh));
    for (let i = 0; i < S; i++) {
      const last = T - S + i;
      const first = o.window === undefined ? 0 : Math.max(0, last - o.window + 1);
      let mx = -Infinity;
      for (let j = first; j <= last; j++) {
        let dot = 0;
        for (let e = 0; e < hd; e++) dot += q.data[(bh * S + i) * hd + e]! * k.data[(bk * T + j) * hd + e]!;
        p[j] = o.softCap === undefined ? dot * scale : o.softCap * Math.tanh((dot * scale) / o.softCap);
        mx = Math.max(mx, p[j]!);
      }
      let z = 0;
      for (let j = first; j <= last; j++) { p[j] = Math.exp(p[j]! - mx); z += p[j]!; }
      for (let e = 0; e < hd; e++) {
        let acc = 0;
        for (let j = first; j <= last; j++) acc += (p[j]! / z) * v.data[(bk * T + j) * hd + e]!;
        out[(bh * S + i) * hd + e] = acc;
      }
    }
  }
  return { shape: q.shape, data: out };
}

/** RMSNorm over the last axis: x/√(mean(x²) + ε) ⊙ w, or ⊙ (1 + w) (Gemma). */
export function rmsNorm(x: T64, w: ArrayLike<number>, eps: number, unitOffset = false): T64 {
  const d = x.shape[x.shape.length - 1]!;
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < x.data.length / d; r++) {
    let ms = 0;
    for (let j = 0; j < d; j++) ms += x.data[r * d + j]! ** 2;
    const rs = 1 / Math.sqrt(ms / d + eps);
    for (let j = 0; j < d; j++) out[r * d + j] = x.data[r * d + j]! * rs * ((unitOffset ? 1 : 0) + w[j]!);
  }
  return { shape: x.shape, data: out };
}

export const silu = (x: T64) => map(x, (v) => v / (1 + Math.exp(-v)));
export const softCap = (x: T64, cap: number) => map(x, (v) => cap * Math.tanh(v / cap));

export function mul(a: T64, b: T64): T64 {
  return { shape: a.shape, data: a.data.map((v, i) => v * b.data[i]!) };
}

/** [B, S, n·hd] → [B, n, S, hd] */
export function toHeads(x: T64, n: number, hd: number): T64 {
  const [B, S] = x.shape as [number, number];
  const out = new Float64Array(x.data.length);
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let hh = 0; hh < n; hh++) for (let e = 0; e < hd; e++) {
    out[((b * n + hh) * S + s) * hd + e] = x.data[(b * S + s) * n * hd + hh * hd + e]!;
  }
  return { shape: [B, n, S, hd], data: out };
}

/** Columns [from, from + width) of the last axis. */
export function columns(x: T64, from: number, width: number): T64 {
  const d = x.shape[x.shape.length - 1]!;
  const rows = x.data.length / d;
  const out = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) for (let j = 0; j < width; j++) out[r * width + j] = x.data[r * d + from + j]!;
  return { shape: [...x.shape.slice(0, -1), width], data: out };
}

/** x [d0, d1, d2, d3] → permuted by `perm`. */
export function transpose4(x: T64, perm: readonly number[]): T64 {
  const sh = x.shape as [number, number, number, number];
  const out = perm.map((p) => sh[p]!);
  const data = new Float64Array(x.data.length);
  const strides = [sh[1] * sh[2] * sh[3], sh[2] * sh[3], sh[3], 1];
  let n = 0;
  for (let a = 0; a < out[0]!; a++) for (let b = 0; b < out[1]!; b++) for (let c = 0; c < out[2]!; c++) for (let d = 0; d < out[3]!; d++) {
    const idx = [a, b, c, d];
    let src = 0;
    for (let k = 0; k < 4; k++) src += idx[k]! * strides[perm[k]!]!;
    data[n++] = x.data[src]!;
  }
  return { shape: out, data };
}

/** Concatenation of a [d0, d1, p, d3] and b [d0, d1, s, d3] along axis 2. */
export function concatAxis2(a: T64, b: T64): T64 {
  const [d0, d1, p, d3] = a.shape as [number, number, number, number];
  const s = b.shape[2]!;
  const data = new Float64Array(d0 * d1 * (p + s) * d3);
  for (let i = 0; i < d0 * d1; i++) {
    data.set(a.data.subarray(i * p * d3, (i + 1) * p * d3), i * (p + s) * d3);
    data.set(b.data.subarray(i * s * d3, (i + 1) * s * d3), (i * (p + s) + p) * d3);
  }
  return { shape: [d0, d1, p + s, d3], data };
}

export function lastPosition(x: T64): T64 {
  const [B, S, d] = x.shape as [number, number, number];
  const out = new Float64Array(B * d);
  for (let b = 0; b < B; b++) for (let j = 0; j < d; j++) out[b * d + j] = x.data[(b * S + S - 1) * d + j]!;
  return { shape: [B, d], data: out };
}

/** h [b, (s,) d] with W [d, V] restricted to per-example columns cols [b, k]. */
export function selectColumns(h: T64, w: ArrayLike<number>, V: number, cols: ArrayLike<number>, k: number, bias?: ArrayLike<number>): T64 {
  const B = h.shape[0]!, d = h.shape[h.shape.length - 1]!;
  const S = h.shape.length === 3 ? h.shape[1]! : 1;
  const out = new Float64Array(B * S * k);
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let j = 0; j < k; j++) {
    const c = cols[b * k + j]!;
    let acc = bias ? bias[c]! : 0;
    for (let i = 0; i < d; i++) acc += h.data[(b * S + s) * d + i]! * w[i * V + c]!;
    out[(b * S + s) * k + j] = acc;
  }
  return { shape: h.shape.length === 3 ? [B, S, k] : [B, k], data: out };
}

export interface SegmentOptions { readonly positionOffset?: number; readonly lastOnly?: boolean; readonly columns?: { data: ArrayLike<number>; k: number } }

/** A whole segment in float64 (token ids for embed, activations otherwise). */
export function referenceSegment(spec: ModelSpec, weights: WeightStore, seg: SegmentSpec, inputs: readonly T64[], o: SegmentOptions = {}): T64 {
  const W = (n: string) => weights.get(n)!.data;
  const d = spec.dims.dModel;
  const offset = o.positionOffset ?? 0;
  const summed = () => inputs.slice(1).reduce((a, x) => add(a, x), inputs[0]!);
  const lin = (x: T64, l: LinearSpec) => {
    const [inDim, outDim] = weights.get(l.weight)!.shape as [number, number];
    return linear(x, W(l.weight), inDim, outDim, l.bias ? W(l.bias) : undefined);
  };
  const norm = (x: T64, n: NormSpec) => (n.kind === 'layernorm' ? layerNorm(x, W(n.weight), W(n.bias), n.eps) : rmsNorm(x, W(n.weight), n.eps, n.offset === 1));
  switch (seg.kind) {
    case 'embed': {
      const ids = inputs[0]!;
      const [B, S] = ids.shape as [number, number];
      const out = new Float64Array(B * S * d);
      const tok = W(seg.tokenEmbedding);
      const pos = seg.positionEmbedding ? W(seg.positionEmbedding) : undefined;
      for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let j = 0; j < d; j++) {
        out[(b * S + s) * d + j] = tok[ids.data[b * S + s]! * d + j]! * (seg.scale ?? 1) + (pos ? pos[(offset + s) * d + j]! : 0);
      }
      return { shape: [B, S, d], data: out };
    }
    case 'attention': {
      const { nHeads: H, nKvHeads: Hkv, headDim: hd } = seg;
      const qkv = lin(norm(summed(), seg.ln), seg.qkv);
      let q = toHeads(columns(qkv, 0, H * hd), H, hd);
      let k = toHeads(columns(qkv, H * hd, Hkv * hd), Hkv, hd);
      const v = toHeads(columns(qkv, (H + Hkv) * hd, Hkv * hd), Hkv, hd);
      if (seg.qNorm) q = norm(q, seg.qNorm);
      if (seg.kNorm) k = norm(k, seg.kNorm);
      if (seg.rotary) {
        const S = q.shape[2]!;
        const { cos, sin } = rotaryTables(rotaryInverseFrequencies(seg.rotary, offset + S), offset, S, seg.rotary.attentionFactor);
        q = rotary(q, cos, sin);
        k = rotary(k, cos, sin);
      }
      const ctx = mergeHeads(causalAttention(q, k, v, seg.scale, { softCap: seg.softcap, window: seg.slidingWindow }));
      return seg.out ? lin(ctx, seg.out) : ctx;
    }
    case 'mlp': {
      const h = norm(summed(), seg.ln);
      const act = (a: T64) => (seg.activation === 'gelu' ? geluExact(a) : seg.activation === 'gelu_new' ? geluTanh(a) : seg.activation === 'silu' ? silu(a) : relu(a));
      const a = seg.gate ? mul(act(lin(h, seg.gate)), lin(h, seg.fcIn)) : act(lin(h, seg.fcIn));
      const y = lin(a, seg.fcOut);
      return seg.postNorm ? norm(y, seg.postNorm) : y;
    }
    case 'project': {
      const y = lin(inputs[0]!, seg.linear);
      return seg.postNorm ? norm(y, seg.postNorm) : y;
    }
    case 'scale':
      return { shape: inputs[0]!.shape, data: inputs[0]!.data.map((v) => v * seg.factor) };
    case 'sum':
      return summed();
    case 'unembed': {
      let h = norm(inputs[0]!, seg.ln);
      if (o.lastOnly) h = lastPosition(h);
      const V = spec.dims.vocabSize;
      const bias = seg.weight.bias ? W(seg.weight.bias) : undefined;
      const y = o.columns ? selectColumns(h, W(seg.weight.weight), V, o.columns.data, o.columns.k, bias)
        : linear(h, W(seg.weight.weight), d, V, bias);
      return seg.softcap === undefined ? y : softCap(y, seg.softcap);
    }
  }
}

/**
 * ∂⟨c, f(x₁…xₙ)⟩/∂x_i by central differences in float64, for every input i in `wrt`.
 */
export function numericalVjp(f: (xs: T64[]) => T64, xs: readonly T64[], cot: ArrayLike<number>, wrt: readonly number[], h = 1e-5): Float64Array[] {
  const dot = (y: T64) => { let s = 0; for (let i = 0; i < y.data.length; i++) s += y.data[i]! * cot[i]!; return s; };
  return wrt.map((i) => {
    const g = new Float64Array(xs[i]!.data.length);
    for (let j = 0; j < g.length; j++) {
      const plus = xs.map((x, k) => (k === i ? { shape: x.shape, data: Float64Array.from(x.data) } : x));
      const minus = xs.map((x, k) => (k === i ? { shape: x.shape, data: Float64Array.from(x.data) } : x));
      plus[i]!.data[j]! += h;
      minus[i]!.data[j]! -= h;
      g[j] = (dot(f(plus)) - dot(f(minus))) / (2 * h);
    }
    return g;
  });
}

/** max |a − b| / max(max |b|, floor). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  let mx = 0, mb = floor;
  for (let i = 0; i < b.length; i++) { mx = Math.max(mx, Math.abs(a[i]! - b[i]!)); mb = Math.max(mb, Math.abs(b[i]!)); }
  if (a.length !== b.length) return Infinity;
  return mx / mb;
}

export { size };
