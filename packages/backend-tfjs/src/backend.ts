// The factory: `await tfjsBackend({ flavor })` → a Backend on TensorFlow.js (cpu, wasm, or the
// native tensorflow binding when @tensorflow/tfjs-node(-gpu) is installed). One flavor per
// process at a time (see engine.ts); dispose() frees every model loaded through the backend.

import { ConfigError, InputError, type Backend, type ModelSpec, type SegmentRuntime, type WeightStore } from '@sfc/core';
import { acquireEngine, describeEngine, releaseEngine, type TfjsFlavor, type TfjsFlavorOption } from './engine.js';
import { TfjsOps } from './ops.js';
import { TfjsSegmentRuntime } from './runtime.js';

export type { TfjsFlavor, TfjsFlavorOption };

export interface TfjsBackendOptions {
  /**
   * `auto` (default): tensorflow when tfjs-node-gpu or tfjs-node is installed, else wasm, else cpu.
   * While a tfjs backend is alive, every other one in the process must use the same flavor.
   */
  readonly flavor?: TfjsFlavorOption;
}

const FLAVORS: readonly TfjsFlavorOption[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

export async function tfjsBackend(options: TfjsBackendOptions = {}): Promise<Backend> {
  const option = options.flavor ?? 'auto';
  if (!FLAVORS.includes(option)) {
    throw new ConfigError(`unknown tfjs flavor ${JSON.stringify(option)}`, `use one of ${FLAVORS.join(', ')}`);
  }
  const flavor = await acquireEngine(option);
  let description: string;
  try {
    description = await describeEngine(flavor);
  } catch (e) {
    releaseEngine();
    throw e;
  }
  // tfjs-cpu (and tfjs-node until first use) keep the caller's array as storage and hand their own
  // storage out on read; copy at the boundary there. wasm copies into its heap both ways anyway.
  const copy = flavor !== 'wasm';
  const ops = new TfjsOps(copy);
  const runtimes = new Set<TfjsSegmentRuntime>();
  let disposed = false;
  const gpu = flavor === 'tensorflow' && description.includes('GPU');
  return {
    name: `tfjs-${flavor}`,
    capabilities: { grad: true, kvCache: true, paddedKvCache: true, devices: [gpu ? 'gpu' : 'cpu'], dtypes: ['float32', 'int32'], copiesWeights: true, transposedUnembed: true },
    ops,
    describe: () => description,
    async loadModel(spec: ModelSpec, weights: WeightStore): Promise<SegmentRuntime> {
      if (disposed) throw new InputError(`the tfjs-${flavor} backend was disposed`, 'create a new backend with tfjsBackend()');
      const rt = TfjsSegmentRuntime.load(spec, weights, ops, copy, (r) => runtimes.delete(r));
      runtimes.add(rt);
      return rt;
    },
    async dispose(): Promise<void> {
      if (disposed) return;
      disposed = true;
      for (const rt of [...runtimes]) rt.dispose();
      releaseEngine();
    },
  };
}
