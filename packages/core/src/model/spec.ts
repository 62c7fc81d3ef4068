// The architecture description that core owns and backends execute: a chain of segments
// between submodules, each a fixed op sequence over canonical weights.
//
// Canonical weight layout (set by weights.ts, whatever the checkpoint's layout):
// every linear weight is [in, out] (y = x @ W + b, no transposed matmuls on the hot path; the one
// exception is a tied unembedding read transposed from the token embedding, `transposed`);
// the attention projection `qkv` is [d, (nHeads + 2·nKvHeads)·headDim] with columns q | k | v,
// each head-major (head h occupies columns h*headDim … (h+1)*headDim − 1 inside its block).
// Every segment computes in float32, whatever the checkpoint's storage dtype.
//
// The exact math of every field, and what a backend must implement, is in
// docs/architecture.md ("The segment contract").

import type { Architecture } from '../submodule.js';

// The rotary math that evaluates a RotarySpec (one implementation, used by every backend).
export { paddedRotaryTables, rotaryInverseFrequencies, rotaryTables, SUPPORTED_ROPE_TYPES, type RotaryTables } from './rope.js';

/** y = (x − mean(x)) / √(var(x) + eps) ⊙ w + b over the last axis (biased variance, two passes). */
export interface LayerNormSpec { readonly kind: 'layernorm'; readonly weight: string; readonly bias: string; readonly eps: number }
/**
 * RMSNorm over the last axis, in float32: x̂ = x / √(mean(x²) + eps); y = x̂ ⊙ w (offset 0: Llama,
 * Mistral, Qwen) or y = x̂ ⊙ (1 + w) (offset 1: Gemma).
 */
export interface RmsNormSpec { readonly kind: 'rmsnorm'; readonly weight: string; readonly eps: number; readonly offset: 0 | 1 }
export type NormSpec = LayerNormSpec | RmsNormSpec;
export interface LinearSpec { readonly weight: string; readonly bias?: string }

/** Hugging Face rope types sfc computes (`rope_type` of `rope_scaling` / `rope_parameters`). */
export type RopeType = 'default' | 'linear' | 'dynamic' | 'yarn' | 'llama3';

/**
 * Rotary position embedding of an attention segment, resolved from config.json: the backends
 * take cos/sin tables from `rotaryTables` (rope.ts) and never recompute frequencies themselves.
 */
export interface RotarySpec {
  readonly type: RopeType;
  /** inv_freq [rotaryDims / 2] in float32 as transformers computes it; read-only, shared by every layer. */
  readonly invFreq: Float32Array;
  /** Multiplies cos and sin (YaRN's attention factor; 1 for every other type). */
  readonly attentionFactor: number;
  /**
   * Dynamic NTK: a forward whose positions run past `maxPositions` (max_position_embeddings)
   * rotates with frequencies from a base rescaled for its length (see rotaryInverseFrequencies).
   */
  readonly dynamic?: { readonly base: number; readonly factor: number; readonly maxPositions: number };
}

export interface EmbedSegment {
  readonly kind: 'embed';
  readonly name: 'embed';
  readonly inputs: readonly [];
  /** [vocab, d] */
  readonly tokenEmbedding: string;
  /** [maxPositions, d], GPT-2 only. */
  readonly positionEmbedding?: string;
  /**
   * Multiplies the token embeddings (Gemma: √hidden_size, rounded to float32 as transformers'
   * normalizer tensor in the float32 hidden dtype). Absent: 1.
   */
  readonly scale?: number;
}

export interface AttentionSegment {
  readonly kind: 'attention';
  readonly name: string;
  readonly layer: number;
  /** Summed to form the segment input (one entry for every architecture sfc knows). */
  readonly inputs: readonly string[];
  readonly ln: NormSpec;
  /** [d, (nHeads + 2·nKvHeads)·headDim], columns q | k | v, each head-major; bias optional (Qwen 2). */
  readonly qkv: LinearSpec;
  /**
   * o_proj [nHeads·headDim, d]: the segment outputs z @ out (+ bias), width d. Absent: the segment
   * outputs z itself, the concatenated heads [b, s, nHeads·headDim] (Gemma's attn_l, SAELens
   * `hook_z`), and a `project` segment applies o_proj downstream.
   */
  readonly out?: LinearSpec;
  readonly nHeads: number;
  /** Key/value heads (grouped-query attention); query head h reads kv head ⌊h / (nHeads / nKvHeads)⌋. */
  readonly nKvHeads: number;
  readonly headDim: number;
  /** Per-head RMSNorm of q and of k over headDim (weight [headDim]), before rotary (Qwen 3, Gemma 3). */
  readonly qNorm?: RmsNormSpec;
  readonly kNorm?: RmsNormSpec;
  /** Rotary dims per head (0 = none), rotate-half convention, applied to the first `rotaryDims`. */
  readonly rotaryDims: number;
  /** Present exactly when rotaryDims > 0; its invFreq has rotaryDims / 2 entries. */
  readonly rotary?: RotarySpec;
  /** Multiplies q·k (1/sqrt(headDim), possibly divided by layer+1; Gemma: query_pre_attn_scalar^−½). */
  readonly scale: number;
  /** Attention-logit soft-cap (Gemma 2): scores = softcap · tanh(q·k·scale / softcap), before the mask. */
  readonly softcap?: number;
  /** Sliding window W: query position i sees key position j iff i − W < j ≤ i (absolute positions). */
  readonly slidingWindow?: number;
}

/** gelu_new is also transformers' gelu_pytorch_tanh (the same function). */
export type Activation = 'gelu' | 'gelu_new' | 'relu' | 'silu';

export interface MlpSegment {
  readonly kind: 'mlp';
  readonly name: string;
  readonly layer: number;
  /**
   * Summed to form the segment input: [resid_{l-1}] (parallel) or [resid_{l-1}, attn_l] (sequential;
   * Gemma: [resid_{l-1}, attn_l.out], the projected attention).
   */
  readonly inputs: readonly string[];
  /** Applied first (Gemma: pre_feedforward_layernorm; Llama: post_attention_layernorm). */
  readonly ln: NormSpec;
  /** Gated MLP (Llama, Gemma): h = act(x̂ @ gate) ⊙ (x̂ @ fcIn), fcIn being up_proj. Absent: h = act(x̂ @ fcIn + b). */
  readonly gate?: LinearSpec;
  readonly fcIn: LinearSpec;
  /** [dMlp, d] (down_proj). */
  readonly fcOut: LinearSpec;
  readonly activation: Activation;
  /** Applied to the output (Gemma's post_feedforward_layernorm): mlp_l = postNorm(h @ fcOut). */
  readonly postNorm?: NormSpec;
}

/**
 * The attention output projection when the attention submodule is the concatenated heads
 * (Gemma): `attn_l.out` = postNorm(attn_l @ linear (+ bias)), width d. Not a submodule: it is an
 * intermediate value the model threads through (downstream segments read it), never edited, and
 * core composes VJPs through it, so edges and gradients still run between submodules.
 */
export interface ProjectSegment {
  readonly kind: 'project';
  /** `attn_{l}.out` */
  readonly name: string;
  readonly layer: number;
  readonly inputs: readonly [string];
  /** [nHeads·headDim, d] */
  readonly linear: LinearSpec;
  /** Gemma's post_attention_layernorm. */
  readonly postNorm?: NormSpec;
}

/**
 * y = x · factor. Gemma 2 with an `embed` submodule (withEmbedSubmodule): `embed` is embed_tokens'
 * output, where feature-circuits hooks it, and this segment (`embed.out`) applies the √hidden_size
 * that Gemma2Model multiplies it by before layer 0. Like `project`, an intermediate value the model
 * threads through, never a node or an edit point.
 */
export interface ScaleSegment {
  readonly kind: 'scale';
  /** `embed.out` */
  readonly name: string;
  readonly inputs: readonly [string];
  /** Rounded to float32 (the embed segment's `scale` it replaces). */
  readonly factor: number;
}

export interface SumSegment {
  readonly kind: 'sum';
  readonly name: string;
  readonly layer: number;
  /** resid_l = Σ inputs = resid_{l-1} + attn_l + mlp_l. */
  readonly inputs: readonly string[];
}

export interface UnembedSegment {
  readonly kind: 'unembed';
  readonly name: 'unembed';
  readonly inputs: readonly [string];
  readonly ln: NormSpec;
  /** [d, vocab]; with `transposed`, [vocab, d]. */
  readonly weight: LinearSpec;
  /**
   * The weight is stored [vocab, d] and read transposed: logits = h @ weightᵀ. For backends with
   * `capabilities.transposedUnembed`, Model.load points a tied decoder's unembedding at
   * `embed.tok` this way (transposedTiedUnembed), so the embedding is held once, not copied.
   */
  readonly transposed?: boolean;
  /** Final-logit soft-cap (Gemma 2): logits = softcap · tanh(logits / softcap), on every computed logit. */
  readonly softcap?: number;
}

export type SegmentSpec = EmbedSegment | AttentionSegment | MlpSegment | ProjectSegment | ScaleSegment | SumSegment | UnembedSegment;

export interface ModelDims {
  readonly dModel: number;
  readonly nLayers: number;
  readonly nHeads: number;
  /** Key/value heads (= nHeads without grouped-query attention). */
  readonly nKvHeads: number;
  /** From config.json's head_dim when present (Gemma, Qwen 3: may differ from dModel / nHeads). */
  readonly headDim: number;
  readonly dMlp: number;
  readonly vocabSize: number;
  /**
   * Longest sequence sfc runs: GPT-2's learned positions; for rotary models max_position_embeddings,
   * stretched by the rope scaling factor (rope.ts, ropeContextLength).
   */
  readonly maxPositions: number;
}

export interface ModelSpec {
  readonly architecture: Architecture;
  readonly dims: ModelDims;
  readonly parallelResidual: boolean;
  /**
   * In forward order; segment `name` equals the submodule it produces, except the final `unembed`,
   * the intermediates (`project`: `attn_{l}.out`; `scale`: `embed.out`) and `embed` when
   * `embedSubmodule` is false.
   */
  readonly segments: readonly SegmentSpec[];
  /**
   * Whether the embedding output is the `embed` submodule. False for Gemma's default chain
   * (feature-circuits' include_embed=False); withEmbedSubmodule makes it one. Absent: true.
   */
  readonly embedSubmodule?: boolean;
  /**
   * config.json's tie_word_embeddings: `unembed.w` is the token embedding transposed, and the
   * checkpoint may omit the output head. Absent or false: the checkpoint must hold it.
   */
  readonly tiedEmbeddings?: boolean;
  /** Canonical weight name → shape, for validation before anything is allocated on a backend. */
  readonly weightShapes: ReadonlyMap<string, readonly number[]>;
}

/** Which logits the unembed segment computes; the metric needs two columns at the last position. */
export interface LogitSelection {
  /** Only the last position of every row (default: all positions). */
  readonly lastOnly?: boolean;
  /**
   * With lastOnly: the position read in each row (int32 [batch]) instead of the last one — each
   * row's last real token in a right-padded batch. Core's Model handles it (it gathers those rows
   * before the unembed segment and scatters the gradient back); backends never see it.
   */
  readonly lastPositions?: Int32Array;
  /** Per example `k` vocabulary ids (int32 [batch, k]); output [batch, (s,) k] instead of [batch, (s,) vocab]. */
  readonly columns?: import('../tensor.js').Tensor;
}

/**
 * A tied decoder's spec (tiedEmbeddings) whose unembedding reads `embed.tok` transposed instead
 * of an explicit `unembed.w` [d, vocab] copy — for backends with `capabilities.transposedUnembed`
 * (Model.load applies it). Other specs are returned as they are.
 */
export function transposedTiedUnembed(spec: ModelSpec): ModelSpec {
  const un = spec.segments[spec.segments.length - 1]!;
  if (!spec.tiedEmbeddings || un.kind !== 'unembed' || un.transposed || un.weight.weight !== 'unembed.w' || un.weight.bias) return spec;
  const shapes = new Map(spec.weightShapes);
  shapes.delete('unembed.w');
  const tok = spec.segments[0]!.kind === 'embed' ? spec.segments[0].tokenEmbedding : 'embed.tok';
  return { ...spec, segments: [...spec.segments.slice(0, -1), { ...un, weight: { weight: tok }, transposed: true }], weightShapes: shapes };
}

/** The value Gemma 2's layer 0 reads when `embed` is a submodule: embed_tokens' output times √hidden_size. */
const SCALED_EMBED = 'embed.out';

/**
 * The spec with the embedding output as the `embed` submodule (feature-circuits' include_embed=True;
 * docs/models.md): specs that have one are returned as they are. `embed` is what feature-circuits
 * hooks, the output of `model.embed_tokens`. On Gemma 2 that is the unscaled embedding (Gemma2Model
 * multiplies by √hidden_size after it), so the embed segment loses its `scale` to a `scale` segment
 * `embed.out` that layer 0 reads; on Gemma 3 embed_tokens (Gemma3TextScaledWordEmbedding) scales
 * itself, so `embed` is the scaled embedding and the chain is unchanged.
 */
export function withEmbedSubmodule(spec: ModelSpec): ModelSpec {
  if (spec.embedSubmodule !== false) return spec;
  const embed = spec.segments[0]!;
  if (embed.kind !== 'embed') throw new Error('internal: the first segment is not embed');
  if (spec.architecture !== 'gemma2' || embed.scale === undefined) return { ...spec, embedSubmodule: true };
  const { scale, ...unscaled } = embed;
  const reads = (inputs: readonly string[]) => inputs.map((n) => (n === embed.name ? SCALED_EMBED : n));
  const rest = spec.segments.slice(1).map((s) => ((s.inputs as readonly string[]).includes(embed.name) ? { ...s, inputs: reads(s.inputs) } as SegmentSpec : s));
  const scaled: ScaleSegment = { kind: 'scale', name: SCALED_EMBED, inputs: [embed.name], factor: scale };
  return { ...spec, segments: [unscaled, scaled, ...rest], embedSubmodule: true };
}

/** Width of a segment's output along its last axis (unembed: the vocabulary). */
export function segmentWidth(spec: ModelSpec, seg: SegmentSpec): number {
  if (seg.kind === 'attention' && !seg.out) return seg.nHeads * seg.headDim;
  if (seg.kind === 'unembed') return spec.dims.vocabSize;
  return spec.dims.dModel;
}

/** Width of a value of the chain by name (a segment's output). */
export function valueWidth(spec: ModelSpec, name: string): number {
  return segmentWidth(spec, findSegment(spec, name));
}

export function findSegment(spec: ModelSpec, name: string): SegmentSpec {
  const s = spec.segments.find((x) => x.name === name);
  if (!s) throw new Error(`internal: no segment '${name}'`);
  return s;
}
