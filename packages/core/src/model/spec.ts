// The architecture description that core owns and backends execute: a chain of segments
// between submodules, each a fixed op sequence over canonical weights.
//
// Canonical weight layout (set by weights.ts, whatever the checkpoint's layout):
// every linear weight is [in, out] (y = x @ W + b, no transposed matmuls on the hot path);
// the attention projection `qkv` is [d, 3d] with columns q | k | v, each head-major
// (head h occupies columns h*headDim … (h+1)*headDim − 1 inside its block).

import type { Architecture } from '../submodule.js';

// The rotary math that evaluates a RotarySpec (one implementation, used by every backend).
export { rotaryInverseFrequencies, rotaryTables, SUPPORTED_ROPE_TYPES, type RotaryTables } from './rope.js';

export interface LayerNormSpec { readonly weight: string; readonly bias: string; readonly eps: number }
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
}

export interface AttentionSegment {
  readonly kind: 'attention';
  readonly name: string;
  readonly layer: number;
  /** Summed to form the segment input (one entry for every architecture sfc knows). */
  readonly inputs: readonly string[];
  readonly ln: LayerNormSpec;
  readonly qkv: LinearSpec;
  readonly out: LinearSpec;
  readonly nHeads: number;
  readonly headDim: number;
  /** Rotary dims per head (0 = none), rotate-half convention, applied to the first `rotaryDims`. */
  readonly rotaryDims: number;
  /** Present exactly when rotaryDims > 0; its invFreq has rotaryDims / 2 entries. */
  readonly rotary?: RotarySpec;
  /** Multiplies q·k (1/sqrt(headDim), possibly divided by layer+1). */
  readonly scale: number;
}

export type Activation = 'gelu' | 'gelu_new' | 'relu';

export interface MlpSegment {
  readonly kind: 'mlp';
  readonly name: string;
  readonly layer: number;
  /** Summed to form the segment input: [resid_{l-1}] (parallel) or [resid_{l-1}, attn_l] (sequential). */
  readonly inputs: readonly string[];
  readonly ln: LayerNormSpec;
  readonly fcIn: LinearSpec;
  readonly fcOut: LinearSpec;
  readonly activation: Activation;
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
  readonly ln: LayerNormSpec;
  /** [d, vocab] */
  readonly weight: LinearSpec;
}

export type SegmentSpec = EmbedSegment | AttentionSegment | MlpSegment | SumSegment | UnembedSegment;

export interface ModelDims {
  readonly dModel: number;
  readonly nLayers: number;
  readonly nHeads: number;
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
  /** In forward order; segment `name` equals the submodule it produces (plus the final `unembed`). */
  readonly segments: readonly SegmentSpec[];
  /** Canonical weight name → shape, for validation before anything is allocated on a backend. */
  readonly weightShapes: ReadonlyMap<string, readonly number[]>;
  /** config.json's tie_word_embeddings where it decides whether the checkpoint must hold its own unembedding (GPT-NeoX). */
  readonly tieWordEmbeddings?: boolean;
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

export function findSegment(spec: ModelSpec, name: string): SegmentSpec {
  const s = spec.segments.find((x) => x.name === name);
  if (!s) throw new Error(`internal: no segment '${name}'`);
  return s;
}
