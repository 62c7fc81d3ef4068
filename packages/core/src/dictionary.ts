// The dictionary (SAE) contract that algorithms and steering use. Implementations
// (architectures and file loaders) live in plugins such as @sfc/dictionaries.

import type { Tensor, TensorOps } from './tensor.js';

export interface Dictionary {
  /** Architecture id: relu, jumprelu, topk, batchtopk, gated, matryoshka_batchtopk, identity, … */
  readonly architecture: string;
  readonly dIn: number;
  readonly dSae: number;
  /** Hook or submodule the dictionary was trained on, when the file says. */
  readonly hook?: string;
  /** Where it was loaded from (shown by `sfc dict info`). */
  readonly source?: string;
  /** Loader/format id (saelens, dictionary-learning, gemma-scope, identity, or a plugin's). */
  readonly format?: string;
  /** Extra facts for `sfc dict info` (k, threshold, class name, normalisation, …). */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
  /** [..., dIn] → features [..., dSae]. */
  encode(x: Tensor): Tensor;
  /** Linear decoder: f @ W_dec + b_dec, [..., dSae] → [..., dIn]. */
  decode(f: Tensor): Tensor;
  /** W_dec as [dSae, dIn] (rows are feature directions). The caller must not dispose it. */
  decoderRows(): Tensor;
  /** b_dec [dIn]; decode(0) = b_dec. The caller must not dispose it. */
  decoderBias(): Tensor;
  /**
   * VJP of encode at x: given cotangents on the features [N, dSae] returns [N, dIn] =
   * Σ_j cot_j ∂f_j/∂x. Architectures with discrete selection (TopK, JumpReLU, gates) treat
   * the selection as fixed, as autograd does.
   */
  encodeVjp(x: Tensor, cotangent: Tensor): Tensor;
  /**
   * Row n = ∂f_{features[n]}(x_n)/∂x_n for x [N, dIn]; same as encodeVjp with one-hot cotangents,
   * without materialising [N, dSae].
   */
  featureGradients(x: Tensor, features: Int32Array): Tensor;
  /**
   * Optional: the activations of `features` only, x [N, dIn] → [N, features.length], equal to
   * the same columns of encode(x). Architectures whose features are computed independently
   * (ReLU, JumpReLU, BatchTopK at inference) provide it at a fraction of encode's cost; those
   * with a selection over all features (TopK) omit it and callers encode fully.
   */
  encodeFeatures?(x: Tensor, features: Int32Array): Tensor;
  dispose(): void;
}

export interface DictionaryLoadContext {
  readonly ops: TensorOps;
  /** Submodule the dictionary is for, when known (for validation and hook checks). */
  readonly submodule?: string;
  /** Expected dIn (the model's width), when known. */
  readonly dIn?: number;
  readonly warn?: (message: string) => void;
  /** Loader-specific options (e.g. normalizeDecoder, scalingFactor). */
  readonly options?: Readonly<Record<string, unknown>>;
}

export interface DictionaryDetection {
  readonly ok: boolean;
  /** Why it matched or not, for the combined error when no plugin matches. */
  readonly reason: string;
  /**
   * The hook or submodule the dictionary says it was trained on, when the plugin can tell
   * without loading weights (e.g. SAELens `hook_name`). Set loaders use it to attach folders
   * with arbitrary names.
   */
  readonly hook?: string;
}

/**
 * A loader plugin: plain object from a factory, e.g. `saelens()`. `meta.namespace` (default
 * `meta.name`) identifies it in a registry: two different plugins may not share one.
 */
export interface DictionaryPlugin {
  readonly meta: { readonly name: string; readonly version?: string; readonly namespace?: string };
  detect(dir: string): Promise<DictionaryDetection>;
  load(dir: string, ctx: DictionaryLoadContext): Promise<Dictionary>;
}

export function definePlugin(plugin: DictionaryPlugin): DictionaryPlugin {
  return plugin;
}
