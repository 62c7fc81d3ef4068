// Rotary position embeddings (RoPE) as transformers computes them for GPT-NeoX: the inverse
// frequencies and cos/sin scale of each rope type of modeling_rope_utils (default, linear,
// dynamic NTK, YaRN, Llama 3), ported step by step with the float32 rounding torch applies, and
// the cos/sin tables the backends multiply q and k by. config.ts reads and validates the JSON into
// RopeParams; this module owns the math, so every backend rotates with one implementation.

import type { RopeType, RotarySpec } from './spec.js';

export const SUPPORTED_ROPE_TYPES: readonly RopeType[] = ['default', 'linear', 'dynamic', 'yarn', 'llama3'];

/** A validated rope configuration (config.ts builds it from rope_scaling / rope_parameters). */
export type RopeParams =
  | { readonly type: 'default' }
  | { readonly type: 'linear' | 'dynamic'; readonly factor: number }
  | {
    readonly type: 'yarn'; readonly factor: number; readonly originalMaxPositions: number;
    /** Explicit cos/sin scale; else derived from factor, mscale and mscaleAllDim. */
    readonly attentionFactor?: number;
    readonly betaFast: number; readonly betaSlow: number;
    readonly mscale?: number; readonly mscaleAllDim?: number;
    /** Round the correction range to whole dims (transformers' default). */
    readonly truncate: boolean;
  }
  | { readonly type: 'llama3'; readonly factor: number; readonly lowFreqFactor: number; readonly highFreqFactor: number; readonly originalMaxPositions: number };

const f = Math.fround;

/** base^(2i/dims), i < dims/2: torch's float32 `base ** (arange(0, dims, 2).float() / dims)`. */
function powers(base: number, dims: number): Float32Array {
  const b = f(base);
  return Float32Array.from({ length: dims / 2 }, (_, i) => Math.pow(b, f((2 * i) / dims)));
}

/** inv_freq of plain RoPE: 1 / base^(2i/dims). */
function defaultInvFreq(base: number, dims: number): Float32Array {
  return powers(base, dims).map((p) => 1 / p);
}

/** YaRN: per dim a blend of interpolated (÷ factor) and extrapolated frequencies, and the cos/sin scale. */
function yarn(p: Extract<RopeParams, { type: 'yarn' }>, base: number, dims: number): { invFreq: Float32Array; attentionFactor: number } {
  const mscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
  const attentionFactor = p.attentionFactor
    ?? (p.mscale && p.mscaleAllDim ? mscale(p.factor, p.mscale) / mscale(p.factor, p.mscaleAllDim) : mscale(p.factor));
  // The dim whose wavelength makes `rotations` turns over the original context (float64, like Python's math).
  const correctionDim = (rotations: number) => (dims * Math.log(p.originalMaxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
  let low = correctionDim(p.betaFast), high = correctionDim(p.betaSlow);
  if (p.truncate) { low = Math.floor(low); high = Math.ceil(high); }
  low = Math.max(low, 0);
  high = Math.min(high, dims - 1);
  if (low === high) high += 0.001; // transformers' guard against a zero-width ramp
  const lo = f(low), span = f(high - low), factor = f(p.factor);
  const invFreq = Float32Array.from(powers(base, dims), (pf, i) => {
    const extrapolation = f(1 / pf), interpolation = f(1 / f(factor * pf));
    const ramp = Math.min(1, Math.max(0, f(f(i - lo) / span)));
    const extrapolationShare = f(1 - ramp);
    return f(interpolation * f(1 - extrapolationShare)) + f(extrapolation * extrapolationShare);
  });
  return { invFreq, attentionFactor };
}

/** Llama 3: long wavelengths ÷ factor, short ones kept, a smooth blend in between. */
function llama3(p: Extract<RopeParams, { type: 'llama3' }>, base: number, dims: number): Float32Array {
  const factor = f(p.factor), old = f(p.originalMaxPositions), lowFreq = f(p.lowFreqFactor), span = f(p.highFreqFactor - p.lowFreqFactor);
  // torch compares a float32 tensor with a Python float in float32.
  const lowWavelen = f(p.originalMaxPositions / p.lowFreqFactor), highWavelen = f(p.originalMaxPositions / p.highFreqFactor);
  const twoPi = f(2 * Math.PI);
  return defaultInvFreq(base, dims).map((x) => {
    const wavelen = f(f(1 / x) * twoPi); // `2π / inv_freq` is reciprocal() × 2π in torch
    const kept = wavelen > lowWavelen ? f(x / factor) : x;
    if (wavelen < highWavelen || wavelen > lowWavelen) return kept;
    const smooth = f(f(f(f(1 / wavelen) * old) - lowFreq) / span);
    return f(f(f(1 - smooth) * kept) / factor) + f(smooth * kept);
  });
}

/** The RotarySpec of `dims` rotary dims per head with base `base` (rope_theta); `maxPositions` is max_position_embeddings. */
export function rotarySpec(p: RopeParams, dims: number, base: number, maxPositions: number): RotarySpec {
  switch (p.type) {
    case 'default':
      return { type: p.type, invFreq: defaultInvFreq(base, dims), attentionFactor: 1 };
    case 'linear': {
      // Positions ÷ factor, applied to the frequencies (the same angles).
      const factor = f(p.factor);
      return { type: p.type, invFreq: defaultInvFreq(base, dims).map((x) => x / factor), attentionFactor: 1 };
    }
    case 'dynamic':
      return { type: p.type, invFreq: defaultInvFreq(base, dims), attentionFactor: 1, dynamic: { base, factor: p.factor, maxPositions } };
    case 'yarn':
      return { type: p.type, ...yarn(p, base, dims) };
    case 'llama3':
      return { type: p.type, invFreq: llama3(p, base, dims), attentionFactor: 1 };
  }
}

/**
 * The longest sequence sfc runs with this scaling. transformers sets no limit for rotary models;
 * sfc refuses longer inputs as a guard and takes the context the scaling stretches to: linear and
 * dynamic scale max_position_embeddings itself (transformers' NeoX docs: leave it at the trained
 * length), YaRN and Llama 3 scale original_max_position_embeddings.
 */
export function ropeContextLength(p: RopeParams, maxPositions: number): number {
  switch (p.type) {
    case 'default': return maxPositions;
    case 'linear': case 'dynamic': return Math.max(maxPositions, Math.floor(maxPositions * p.factor));
    case 'yarn': case 'llama3': return Math.max(maxPositions, Math.floor(p.originalMaxPositions * p.factor));
  }
}

/**
 * inv_freq for a forward whose positions end at `length` − 1 (offset + new positions). Static
 * types ignore the length. Dynamic NTK, as transformers' dynamic_rope_update: up to
 * max_position_embeddings the plain frequencies, beyond it base' = base·(factor·L/max − (factor − 1))^(r/(r−2))
 * for L = `length` — with a KV cache, the total length so far, so cached keys keep the rotation of
 * the step that wrote them (transformers' cached generation does the same). transformers keeps
 * the largest length seen in module state between calls; sfc keys every call on its own length,
 * which is the same for generation (lengths only grow) and for each single forward.
 */
export function rotaryInverseFrequencies(rotary: RotarySpec, length: number): Float32Array {
  const d = rotary.dynamic;
  if (!d || length <= d.maxPositions) return rotary.invFreq;
  const dims = 2 * rotary.invFreq.length;
  // transformers computes this from a length tensor: float32 steps (torch raises to the Python
  // float exponent unrounded).
  let x = f(f(length) * f(d.factor));
  x = f(x / d.maxPositions);
  x = f(x - f(d.factor - 1));
  x = f(Math.pow(x, dims / (dims - 2)));
  return defaultInvFreq(f(f(d.base) * x), dims);
}

/** cos and sin [seq, rotaryDims] (row t = position offset + t, halves repeated), times the attention factor. */
export interface RotaryTables { readonly cos: Float32Array; readonly sin: Float32Array }

/** The last tables built per RotarySpec: every layer of a forward asks for the same ones. */
const lastTables = new WeakMap<RotarySpec, { readonly offset: number; readonly seq: number; readonly tables: RotaryTables }>();

/**
 * Tables for positions offset … offset + seq − 1, as transformers builds them in float32:
 * angle = pos·inv_freq, emb = cat(angles, angles), cos(emb)·attention_factor. The arrays are
 * shared (read-only).
 */
export function rotaryTables(rotary: RotarySpec, offset: number, seq: number): RotaryTables {
  const memo = lastTables.get(rotary);
  if (memo && memo.offset === offset && memo.seq === seq) return memo.tables;
  const inv = rotaryInverseFrequencies(rotary, offset + seq);
  const half = inv.length, r = 2 * half;
  const scale = f(rotary.attentionFactor);
  const cos = new Float32Array(seq * r), sin = new Float32Array(seq * r);
  for (let t = 0; t < seq; t++) {
    for (let i = 0; i < half; i++) {
      const angle = f((offset + t) * inv[i]!);
      let c = f(Math.cos(angle)), s = f(Math.sin(angle));
      if (scale !== 1) { c = f(c * scale); s = f(s * scale); }
      cos[t * r + i] = c; cos[t * r + half + i] = c;
      sin[t * r + i] = s; sin[t * r + half + i] = s;
    }
  }
  const tables = { cos, sin };
  lastTables.set(rotary, { offset, seq, tables });
  return tables;
}

const lastPaddedTables = new WeakMap<RotarySpec, { readonly offset: number; readonly seq: number; readonly padding: readonly number[]; readonly tables: RotaryTables }>();

/**
 * Tables of a left-padded batch, row-major [rows, seq, rotaryDims]: row r holds rotaryTables for
 * positions offset − padding[r] … (negative for pad slots, whose values no real query reads), so
 * each row's tokens rotate exactly as in that row alone (dynamic NTK keyed on its own length).
 */
export function paddedRotaryTables(rotary: RotarySpec, padding: readonly number[], offset: number, seq: number): RotaryTables {
  const memo = lastPaddedTables.get(rotary);
  if (memo && memo.offset === offset && memo.seq === seq && memo.padding === padding) return memo.tables;
  const n = seq * 2 * rotary.invFreq.length;
  const cos = new Float32Array(padding.length * n), sin = new Float32Array(padding.length * n);
  padding.forEach((p, r) => {
    const t = rotaryTables(rotary, offset - p, seq);
    cos.set(t.cos, r * n);
    sin.set(t.sin, r * n);
  });
  const tables = { cos, sin };
  lastPaddedTables.set(rotary, { offset, seq, padding, tables });
  return tables;
}
