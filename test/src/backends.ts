// The backends every parity suite runs on, defined once. Suites loop over PARITY_BACKENDS (the
// cheap model checks) or ALGORITHM_BACKENDS (attribution, edges, evaluation), one describe per
// backend, so a new backend is added here and nowhere else.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '@sfc/core';
import { onnxBackend } from '@sfc/backend-onnx';
import { tfjsBackend } from '@sfc/backend-tfjs';

export type BackendName = 'tfjs-wasm' | 'tfjs-cpu' | 'onnx';

/** A backend opened for a test: `close()` disposes it and removes what it wrote. */
export interface OpenBackend {
  readonly backend: Backend;
  close(): Promise<void>;
}

export interface TestBackend {
  readonly name: BackendName;
  /** Fast enough for the algorithm suites (attribution, edges, evaluation). */
  readonly algorithms: boolean;
  open(): Promise<OpenBackend>;
}

function tfjs(flavor: 'wasm' | 'cpu'): () => Promise<OpenBackend> {
  return async () => {
    const backend = await tfjsBackend({ flavor });
    return { backend, close: () => backend.dispose() };
  };
}

/** onnx compiles its graphs into a fresh temporary cache, so tests never touch the user's cache. */
async function onnx(): Promise<OpenBackend> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'sfc-test-onnx-'));
  const backend = await onnxBackend({ cacheDir });
  return {
    backend,
    async close() {
      await backend.dispose();
      rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}

export const BACKENDS: readonly TestBackend[] = [
  { name: 'tfjs-wasm', algorithms: true, open: tfjs('wasm') },
  // ~30× slower than wasm (pure-JS kernels): the model parity checks only.
  { name: 'tfjs-cpu', algorithms: false, open: tfjs('cpu') },
  { name: 'onnx', algorithms: true, open: onnx },
];

/** For model parity: logits, submodule outputs, gradients. */
export const PARITY_BACKENDS = BACKENDS;
/** For the circuit-discovery and evaluation suites. */
export const ALGORITHM_BACKENDS = BACKENDS.filter((b) => b.algorithms);

export function testBackend(name: BackendName): TestBackend {
  return BACKENDS.find((b) => b.name === name)!;
}
