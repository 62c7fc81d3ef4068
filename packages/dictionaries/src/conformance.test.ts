// Core's plugin conformance suite on sfc's own loaders, over every architecture of test-data/archs
// and the fixture's SAEs.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, it } from 'vitest';
import { referenceOps, runDictionaryPluginConformance } from '@sfc/core/testing';
import { tfjsBackend } from '@sfc/backend-tfjs';
import { dictionaryLearning, gemmaScope, llamaScope, saelens } from './index.js';

const ARCHS = fileURLToPath(new URL('../test-data/archs', import.meta.url));
const LLAMA_SCOPE = fileURLToPath(new URL('../test-data/llama-scope', import.meta.url));
const SMALL_A = fileURLToPath(new URL('../../../fixtures/small-a', import.meta.url));

const cases: [string, () => ReturnType<typeof saelens>, string, Record<string, unknown>?][] = [
  ['saelens', saelens, join(SMALL_A, 'saelens', 'mlp_out_layer1')],
  ...['standard', 'jumprelu', 'topk', 'topk_rescale', 'gated', 'batchtopk', 'matryoshka', 'constant_norm', 'layer_norm', 'pre6_topk']
    .map((c) => ['saelens', saelens, join(ARCHS, `saelens_${c}`)] as [string, typeof saelens, string]),
  ['dictionary-learning', dictionaryLearning, join(SMALL_A, 'dictionaries', 'resid_out_layer1')],
  ...['autoencoder', 'autoencoder_new', 'gated', 'jumprelu', 'topk', 'batchtopk', 'matryoshka']
    .map((c) => ['dictionary-learning', dictionaryLearning, join(ARCHS, `dl_${c}`)] as [string, typeof dictionaryLearning, string]),
  ['gemma-scope', gemmaScope, join(ARCHS, 'gemma_scope')],
  ...['L3R-2x', 'L1A-2x-topk', 'L2M-2x-relu', 'v2-L3R-jumprelu', 'v2-L1A-topk', 'v2-L2M-relu', 'v2-L0R-jumprelu-plain'].map((c) => ['llama-scope', llamaScope, join(LLAMA_SCOPE, c)] as [string, typeof llamaScope, string]),
];

for (const [name, factory, dir] of cases) {
  describe(`${name} on ${dir.split('/').slice(-2).join('/')}`, () => {
    runDictionaryPluginConformance(factory(), { dir, ops: referenceOps(), describe, it, rows: 8 });
  });
}

// The same suite on TensorFlow.js for one case of each architecture family.
const tfjs = await tfjsBackend({ flavor: 'cpu' });
afterAll(() => tfjs.dispose());
for (const [name, factory, dir] of cases.filter(([, , d]) => /saelens_(topk|gated|layer_norm|matryoshka)$|dl_(autoencoder|jumprelu)$|gemma_scope$|L3R-2x$/.test(d))) {
  describe(`tfjs-cpu: ${name} on ${dir.split('/').slice(-2).join('/')}`, () => {
    runDictionaryPluginConformance(factory(), { dir, ops: tfjs.ops, describe, it, rows: 8 });
  });
}
