// RoPE scaling and attention_bias false on tfjs (wasm): core's conformance suite (cached decoding
// of every fixtures/models/neox-rope-* model against transformers' cached generation, and the
// KV-cache suite on the scaled and bias-free models).

import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type Backend } from '@sfc/core';
import { runRopeScalingConformance } from '@sfc/core/testing';
import { tfjsBackend } from './index.js';

let backend: Backend | undefined;
beforeAll(async () => { backend = await tfjsBackend({ flavor: 'wasm' }); });
afterAll(async () => { await backend?.dispose(); backend = undefined; });

runRopeScalingConformance({ load: (dir) => Model.load(dir, backend!), modelsDir: fileURLToPath(new URL('../../../fixtures/models', import.meta.url)) },
  { describe, it, expect, afterAll }, 'RoPE scaling (tfjs-wasm)');
