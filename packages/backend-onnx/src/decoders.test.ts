// Gemma 2/3 and the Llama family on onnxruntime: core's decoder conformance suite (cached decoding
// of every refgen decoder against transformers' cached generation — sliding windows shorter than
// the prompt, soft-caps, GQA/MQA, q/k norms, local/global rope — and the KV-cache suite on all
// six). Logits, submodule outputs and gradients are in test/src/model-parity.test.ts.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type Backend } from '@sfc/core';
import { runDecoderConformance } from '@sfc/core/testing';
import { onnxBackend } from './index.js';

let backend: Backend | undefined;
let cacheDir: string;
beforeAll(async () => {
  cacheDir = mkdtempSync(join(tmpdir(), 'sfc-onnx-decoders-'));
  backend = await onnxBackend({ intraOpNumThreads: 1, cacheDir });
});
afterAll(async () => {
  await backend?.dispose();
  rmSync(cacheDir, { recursive: true, force: true });
});

runDecoderConformance({ load: (dir) => Model.load(dir, backend!), modelsDir: fileURLToPath(new URL('../../../fixtures/models', import.meta.url)) },
  { describe, it, expect, afterAll }, 'Decoders (onnx)');
