// Gemma 2/3 and the Llama family on tfjs (wasm): core's decoder conformance suite (cached decoding
// of every refgen decoder against transformers' cached generation, and the KV-cache suite on all
// six). Logits, submodule outputs and gradients are in test/src/model-parity.test.ts.

import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type Backend } from '@sfc/core';
import { runDecoderConformance } from '@sfc/core/testing';
import { tfjsBackend } from './index.js';

let backend: Backend | undefined;
beforeAll(async () => { backend = await tfjsBackend({ flavor: 'wasm' }); });
afterAll(async () => { await backend?.dispose(); backend = undefined; });

runDecoderConformance({ load: (dir) => Model.load(dir, backend!), modelsDir: fileURLToPath(new URL('../../../fixtures/models', import.meta.url)) },
  { describe, it, expect, afterAll }, 'Decoders (tfjs-wasm)');
