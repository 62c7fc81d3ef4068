// Test fixture: the tiny GPT-NeoX of fixtures/small-a on the tfjs cpu backend, with its SAELens
// SAEs (ReLU) for every submodule. Test-only (tfjs and @sfc/dictionaries are devDependencies).

import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Model, type Backend, type Dictionary } from '@sfc/core';
import { tfjsBackend } from '@sfc/backend-tfjs';
import { loadDictionarySet } from '@sfc/dictionaries';

export const SMALL_A = fileURLToPath(new URL('../../../fixtures/small-a', import.meta.url));

export interface SmallA {
  readonly backend: Backend;
  readonly model: Model;
  readonly dictionaries: Map<string, Dictionary>;
  dispose(): Promise<void>;
}

export async function loadSmallA(): Promise<SmallA> {
  const backend = await tfjsBackend({ flavor: 'cpu' });
  const model = await Model.load(SMALL_A, backend);
  const dictionaries = await loadDictionarySet(join(SMALL_A, 'saelens'), model.submodules, { ops: backend.ops, dIn: model.spec.dims.dModel });
  return {
    backend, model, dictionaries,
    async dispose() {
      for (const d of dictionaries.values()) d.dispose();
      model.dispose();
      await backend.dispose();
    },
  };
}
