// The onnx backend plugin: `await onnxBackend(options)` gives core's Backend — TensorOps on
// onnxruntime (lazy, batched into few runs) and models whose segments run as compiled ONNX
// graphs, forward and VJP, so every capability (grad included) is available.

import { CapabilityError, ConfigError, InputError, isHalfWeight, type Backend, type ModelSpec, type SegmentRuntime, type StoredWeight, type WeightStore } from '@sfc/core';
import { DiskTable } from './disk-table.js';
import { resolveProviders } from './execution-providers.js';
import { defaultCacheDir, GraphCache } from './graph-cache.js';
import { OnnxTensorOps } from './lazy/tensor-ops.js';
import { ort, type SessionSettings } from './ort-session.js';
import { halfWeights, OnnxSegmentRuntime, weightTensors } from './segment-runtime.js';
import type { TableOnDisk } from './windowed-head.js';

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
  /**
   * Keep a 16-bit checkpoint's token embedding (`embed.tok`, also the tied head's table) in an
   * unlinked file under `cacheDir` instead of memory (disk-table.ts): runs read the rows they use,
   * and a head over the whole vocabulary reads the table window by window. Saves the table's
   * memory (1.1 GiB for Gemma-2-2B) for ~0.25 CPU-s per whole-vocabulary head at that size; the
   * results are the same. Default false.
   */
  readonly embeddingOnDisk?: boolean;
}

/** The canonical name of the token embedding table (docs/architecture.md, "The segment contract"). */
const EMBEDDING = 'embed.tok';

/** The store with its token embedding moved to a DiskTable under `dir` (the caller's store is left as it was). */
function embeddingToDisk(weights: WeightStore, dir: string): { store: WeightStore; onDisk: TableOnDisk } {
  const w = weights.get(EMBEDDING);
  if (!w || !isHalfWeight(w) || w.transposed || w.shape.length !== 2) {
    throw new CapabilityError('onnx.embeddingOnDisk keeps a 16-bit (BF16 or F16) token embedding on disk; this checkpoint holds it as float32',
      'turn onnx.embeddingOnDisk off for this model (its table stays in memory)');
  }
  const table = DiskTable.create(dir, w.data, w.shape[0]!, w.shape[1]!);
  const store = new Map<string, StoredWeight>(weights);
  store.set(EMBEDDING, { ...w, data: table.data });
  return { store, onDisk: { name: EMBEDDING, table } };
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
      const notes = [...(options.embeddingOnDisk ? ['token embedding kept on disk'] : []), ...providers.notes].map((n) => `; ${n}`).join('');
      return `onnxruntime-node ${ort.env.versions.common ?? '?'}, ${providers.active.join(' + ')}, ${threads} intra-op threads, graph cache ${cache.dir}${notes}`;
    },
    async loadModel(spec: ModelSpec, weights: WeightStore): Promise<SegmentRuntime> {
      if (disposed) throw new InputError('the onnx backend was disposed', 'create a new one with onnxBackend()');
      const { store, onDisk } = options.embeddingOnDisk ? embeddingToDisk(weights, cache.dir) : { store: weights, onDisk: undefined };
      let rt: OnnxSegmentRuntime;
      try {
        const half = halfWeights(store, spec, options.rowChunkBytes);
        rt = new OnnxSegmentRuntime(spec, weightTensors(spec, store, half), ops, cache, (r) => runtimes.delete(r), half, onDisk);
      } catch (e) {
        onDisk?.table.close();
        throw e;
      }
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
