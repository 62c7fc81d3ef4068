// The backend plugin contract: tensor math (TensorOps) plus execution of a model's segments,
// forward and VJP. Backends are plain objects made by async factories (`await tfjsBackend()`).

import type { DType, Tensor, TensorOps } from './tensor.js';
import type { LogitSelection, ModelSpec } from './model/spec.js';
import { CapabilityError } from './errors.js';

export interface BackendCapabilities {
  /** Segment VJPs available (attrib, ig, edges need them). */
  readonly grad: boolean;
  readonly devices: readonly string[];
  readonly dtypes: readonly DType[];
}

/** Canonical weights (see model/spec.ts), fp32, row-major. */
export interface WeightTensor { readonly shape: readonly number[]; readonly data: Float32Array }
export type WeightStore = ReadonlyMap<string, WeightTensor>;

export interface SegmentCallOptions {
  /** Unembed only: which logits to produce. */
  readonly logits?: LogitSelection;
  /** Position of the first token (for positional embeddings and rotary); default 0. */
  readonly positionOffset?: number;
}

/**
 * A model loaded on a backend. Every input and output is [batch, seq, d] except the embed
 * input (int32 token ids [batch, seq]) and the unembed output (see LogitSelection).
 * `inputs` are given in the order of the segment's `inputs` list.
 */
export interface SegmentRuntime {
  forward(segment: string, inputs: readonly Tensor[], options?: SegmentCallOptions): Promise<Tensor>;
  /**
   * Cotangent of the output → cotangents of each input (same order as `inputs`; the embed
   * segment returns []). The cotangent's batch may be a multiple of the inputs' batch only if
   * the caller tiles the inputs first; shapes must match exactly.
   */
  vjp(segment: string, inputs: readonly Tensor[], cotangent: Tensor, options?: SegmentCallOptions): Promise<Tensor[]>;
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
