// The onnx backend plugin: `await onnxBackend(options)` gives core's Backend — TensorOps on
// onnxruntime (lazy, batched into few runs) and models whose segments run as compiled ONNX
// graphs, forward and VJP, so every capability (grad included) is available.

import { ConfigError, InputError, type Backend, type ModelSpec, type SegmentRuntime, type WeightStore } from '@sfc/core';
import { resolveProviders } from './execution-providers.js';
import { defaultCacheDir, GraphCache } from './graph-cache.js';
import { OnnxTensorOps } from './lazy/tensor-ops.js';
import { ort, type SessionSettings } from './ort-session.js';
import { halfWeights, OnnxSegmentRuntime, weightTensors } from './segment-runtime.js';

export interface OnnxBackendOptions {
  /** Threads per ORT kernel (default 2). */
  readonly intraOpNumThreads?: number;
  /** Execution providers in order of preference (default ['cpu']); 'cuda' needs ORT's CUDA binaries. */
  readonly executionProviders?: readonly string[];
  /** Folder for compiled graphs (default `.sfc-cache/onnx` under the OS cache dir, else the cwd). */
  readonly cacheDir?: string;
  /**
   * Float32 bytes per row chunk of a 16-bit weight widened chunk by chunk (default 4 MiB for
   * linear weights, 16 MiB for a tied unembedding's table). For tests and tuning.
   */
  readonly rowChunkBytes?: number;
}

export async function onnxBackend(options: OnnxBackendOptions = {}): Promise<Backend> {
  const threads = options.intraOpNumThreads ?? 2;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new ConfigError(`intraOpNumThreads must be a positive integer, got ${threads}`, 'use e.g. 2 (the number of cores to use)');
  }
  const providers = await resolveProviders(options.executionProviders ?? ['cpu']);
  const settings: SessionSettings = { intraOpNumThreads: threads, executionProviders: providers.active, graphOptimizationLevel: 'extended' };
  // Lazy TensorOps graphs are small and appear at run time: cheap-to-build sessions.
  const ops = new OnnxTensorOps({ ...settings, graphOptimizationLevel: 'basic' });
  const cache = new GraphCache(options.cacheDir ?? defaultCacheDir(), settings);
  const runtimes = new Set<SegmentRuntime>();
  let disposed = false;

  return {
    name: 'onnx',
    // The weights are wrapped, not copied (weightTensors; 16-bit ones as they are, widened per
    // segment in the graph), and a tied unembedding reads the token embedding transposed
    // (segment-program.ts), so the store is the only copy of the weights.
    capabilities: {
      grad: true, kvCache: true, paddedKvCache: true, devices: providers.active, dtypes: ['float32', 'int32'],
      copiesWeights: false, transposedUnembed: true, halfWeights: true, halfWeightsTransposed: true,
    },
    ops,
    describe() {
      const notes = providers.notes.length ? `; ${providers.notes.join('; ')}` : '';
      return `onnxruntime-node ${ort.env.versions.common ?? '?'}, ${providers.active.join(' + ')}, ${threads} intra-op threads, graph cache ${cache.dir}${notes}`;
    },
    async loadModel(spec: ModelSpec, weights: WeightStore): Promise<SegmentRuntime> {
      if (disposed) throw new InputError('the onnx backend was disposed', 'create a new one with onnxBackend()');
      const half = halfWeights(weights, spec, options.rowChunkBytes);
      const rt = new OnnxSegmentRuntime(spec, weightTensors(spec, weights, half), ops, cache, (r) => runtimes.delete(r), half);
      runtimes.add(rt);
      return rt;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      for (const rt of [...runtimes]) rt.dispose();
      runtimes.clear();
      ops.dispose();
    },
  };
}
