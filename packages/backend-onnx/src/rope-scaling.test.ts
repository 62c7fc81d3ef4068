// RoPE scaling and attention_bias false on onnxruntime: core's conformance suite (cached decoding
// of every fixtures/models/neox-rope-* model against transformers' cached generation, and the
// KV-cache suite on the scaled and bias-free models).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type Backend } from '@sfc/core';
import { runRopeScalingConformance } from '@sfc/core/testing';
import { onnxBackend } from './index.js';

let backend: Backend | undefined;
let cacheDir: string;
beforeAll(async () => {
  cacheDir = mkdtempSync(join(tmpdir(), 'sfc-onnx-rope-'));
  backend = await onnxBackend({ intraOpNumThreads: 1, cacheDir });
});
afterAll(async () => {
  await backend?.dispose();
  rmSync(cacheDir, { recursive: true, force: true });
});

runRopeScalingConformance({ load: (dir) => Model.load(dir, backend!), modelsDir: fileURLToPath(new URL('../../../fixtures/models', import.meta.url)) },
  { describe, it, expect, afterAll }, 'RoPE scaling (onnx)');
