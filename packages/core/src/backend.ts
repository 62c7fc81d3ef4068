// The backend plugin contract: tensor math (TensorOps) plus execution of a model's segments,
// forward and VJP. Backends are plain objects made by async factories (`await tfjsBackend()`).

import type { DType, Tensor, TensorOps } from './tensor.js';
import type { LogitSelection, ModelSpec } from './model/spec.js';
import { CapabilityError } from './errors.js';

export interface BackendCapabilities {
  /** Segment VJPs available (attrib, ig, edges need them). */
  readonly grad: boolean;
  /**
   * Attention segments can keep the keys and values of past positions (SegmentRuntime.createKvCache),
   * so generation feeds one new token per step. Absent means false: callers re-run the prefix.
   */
  readonly kvCache?: boolean;
  /**
   * KV caches take per-row left padding (KvCacheOptions.padding), so prompts of different lengths
   * decode in one batch exactly as each alone. Absent means false: batch prompts of one length.
   */
  readonly paddedKvCache?: boolean;
  readonly devices: readonly string[];
  readonly dtypes: readonly DType[];
  /**
   * Whether loadModel copies the canonical weights it is given (tfjs uploads them into its own
   * memory; a backend that wraps the Float32Arrays says false). Model.load counts the copy in its
   * memory check before reading the checkpoint. Absent means true.
   */
  readonly copiesWeights?: boolean;
  /**
   * The backend runs an unembed segment with `transposed` (a [vocab, d] weight read transposed):
   * Model.load then points a tied decoder's unembedding at the token embedding instead of a
   * [d, vocab] copy (`transposedTiedUnembed`). Absent means false.
   */
  readonly transposedUnembed?: boolean;
  /**
   * The backend computes on 16-bit weights (HalfWeightTensor) as the store holds them, widening
   * them per segment. Absent means false: it widens them once at load, into its own float32 copy.
   */
  readonly halfWeights?: boolean;
  /**
   * With halfWeights: canonicalWeights stores the 16-bit [in, out] weights of attention, MLP and
   * projection segments transposed (HalfWeightTensor.transposed), so the backend can widen them in
   * chunks of rows (each a contiguous [rows, in] part).
   */
  readonly halfWeightsTransposed?: boolean;
}

/** Canonical weights (see model/spec.ts), fp32, row-major. */
export interface WeightTensor { readonly shape: readonly number[]; readonly data: Float32Array }
/**
 * A canonical weight kept in 16 bits (from a BF16/F16 checkpoint, model/half-weights.ts): the
 * float32 value of element [r, …] is exactly fp16(word) · scale, `scale` one power of two, or
 * `scale[r]`, a power of two per row of a 2-D weight. Backends widen it (per segment, or once at
 * load, with widenWeight) and compute in float32.
 */
export interface HalfWeightTensor {
  readonly shape: readonly number[];
  readonly dtype: 'float16';
  readonly data: Uint16Array;
  /** One power of two, or one per row of `data` (of the transpose when `transposed`). */
  readonly scale: number | Float32Array;
  /**
   * 2-D only, when the backend asked for it (capabilities.halfWeightsTransposed): `data` holds the
   * weight transposed, row-major [shape[1], shape[0]] (a linear's [out, in], as checkpoints store it).
   */
  readonly transposed?: boolean;
}
export type StoredWeight = WeightTensor | HalfWeightTensor;
export type WeightStore = ReadonlyMap<string, StoredWeight>;

export interface SegmentCallOptions {
  /** Unembed only: which logits to produce. */
  readonly logits?: LogitSelection;
  /** Position of the first token (for positional embeddings and rotary); default 0. */
  readonly positionOffset?: number;
  /**
   * Attention forward only: attend over the positions this segment already holds in the cache
   * plus the new ones (causal within the new block) and append the new keys and values.
   * `positionOffset` must equal the number of positions the segment holds. The embed segment reads
   * its `padding` (learned positions per row); other segments ignore it.
   */
  readonly cache?: KvCache;
}

export interface KvCacheOptions {
  /** Rows of every forward that uses the cache. */
  readonly batch: number;
  /** Most positions the cache will hold (prompt + tokens fed back); at most the model's maxPositions. */
  readonly maxLength: number;
  /**
   * Left padding per row (length `batch`): row r's first `padding[r]` slots are pad tokens. Its
   * token in slot t sits at position t − padding[r] (rotary, learned positions), and no query
   * attends to a pad slot; a sliding window counts positions, i.e. slots. What a pad slot's own
   * query computes is finite but meaningless. Needs `capabilities.paddedKvCache`.
   */
  readonly padding?: readonly number[];
}

/**
 * Keys and values of past positions for every attention segment of one loaded model and one batch,
 * owned by the runtime that created it. Not shared between runs whose edits differ (edits at
 * earlier positions change the cached keys and values). Dispose it when done.
 */
export interface KvCache {
  readonly batch: number;
  readonly maxLength: number;
  /** Positions held by every attention segment: where the next forward starts. */
  readonly length: number;
  /** The left padding per row it was created with; absent when no row is padded. */
  readonly padding?: readonly number[];
  readonly isDisposed: boolean;
  /** Frees the cached keys and values (idempotent). */
  dispose(): void;
}

/**
 * A model loaded on a backend. Every input and output is [batch, seq, d] except the embed
 * input (int32 token ids [batch, seq]) and the unembed output (see LogitSelection).
 * `inputs` are given in the order of the segment's `inputs` list.
 */
export interface SegmentRuntime {
  forward(segment: string, inputs: readonly Tensor[], options?: SegmentCallOptions): Promise<Tensor>;
  /**
   * Optional: `forward`, plus what the segment's VJP would otherwise recompute (`kept`: backend
   * tensors of shape [batch, seq, …], possibly none). Core slices and gathers them by rows like
   * any value and hands them back to `vjp` for the same inputs.
   */
  forwardKeeping?(segment: string, inputs: readonly Tensor[], options?: SegmentCallOptions): Promise<{ output: Tensor; kept: Tensor[] }>;
  /**
   * Cotangent of the output → cotangents of each input (same order as `inputs`; the embed
   * segment returns []). The cotangent's batch may be a multiple of the inputs' batch only if
   * the caller tiles the inputs first; shapes must match exactly. `kept`: what forwardKeeping
   * gave for these very inputs (rows in the same order), so the VJP need not recompute it.
   */
  vjp(segment: string, inputs: readonly Tensor[], cotangent: Tensor, options?: SegmentCallOptions, kept?: readonly Tensor[]): Promise<Tensor[]>;
  /** An empty KV cache for this model; present exactly when the backend has `capabilities.kvCache`. */
  createKvCache?(options: KvCacheOptions): Promise<KvCache>;
  dispose(): void;
}

export interface Backend {
  /** e.g. `tfjs-wasm`, `tfjs-cpu`, `tfjs-tensorflow`, `onnx`. */
  readonly name: string;
  readonly capabilities: BackendCapabilities;
  readonly ops: TensorOps;
  /** One line for `sfc info`: engine, version, device, threads. */
  describe(): string;
  loadModel(spec: ModelSpec, weights: WeightStore): Promise<SegmentRuntime>;
  dispose(): Promise<void>;
}

export const GRAD_BACKENDS = 'tfjs (cpu, wasm, tensorflow) and onnx';

export function requireGrad(backend: Backend, what: string): void {
  if (!backend.capabilities.grad) {
    throw new CapabilityError(`${what} needs gradients, but backend '${backend.name}' has none`,
      `use --backend ${GRAD_BACKENDS}`);
  }
}
