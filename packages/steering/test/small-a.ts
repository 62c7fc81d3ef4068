// Test fixture: the tiny GPT-NeoX of fixtures/small-a with its SAELens SAEs (ReLU) for every
// submodule, on the tfjs cpu backend (default) or onnxruntime. Test-only (the backends and
// @sfc/dictionaries are devDependencies).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Model, type Backend, type Dictionary } from '@sfc/core';
import { tfjsBackend } from '@sfc/backend-tfjs';
import { onnxBackend } from '@sfc/backend-onnx';
import { loadDictionarySet } from '@sfc/dictionaries';

export const SMALL_A = fileURLToPath(new URL('../../../fixtures/small-a', import.meta.url));

export type SmallABackend = 'tfjs-cpu' | 'onnx';

export interface SmallA {
  readonly backend: Backend;
  readonly model: Model;
  readonly dictionaries: Map<string, Dictionary>;
  dispose(): Promise<void>;
}

export async function loadSmallA(which: SmallABackend = 'tfjs-cpu'): Promise<SmallA> {
  // onnx compiles its graphs into a cache folder: a fresh one per fixture, removed on dispose.
  const cacheDir = which === 'onnx' ? mkdtempSync(join(tmpdir(), 'sfc-steering-onnx-')) : undefined;
  const backend = cacheDir ? await onnxBackend({ intraOpNumThreads: 1, cacheDir }) : await tfjsBackend({ flavor: 'cpu' });
  const model = await Model.load(SMALL_A, backend);
  const dictionaries = await loadDictionarySet(join(SMALL_A, 'saelens'), model.submodules, { ops: backend.ops, dIn: model.spec.dims.dModel });
  return {
    backend, model, dictionaries,
    async dispose() {
      for (const d of dictionaries.values()) d.dispose();
      model.dispose();
      await backend.dispose();
      if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}
