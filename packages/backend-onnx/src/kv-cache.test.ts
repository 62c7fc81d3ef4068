// The KV cache on onnxruntime: core's conformance suite on a rotary GPT-NeoX (parallel and
// sequential residual) and a learned-position GPT-2 — cached logits equal a full forward's, with
// and without position-dependent edits, no leaked tensors, typed errors for misuse.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type Backend } from '@sfc/core';
import { runKvCacheConformance } from '@sfc/core/testing';
import { onnxBackend } from './index.js';

const MODELS = ['neox-par-r25', 'neox-seq-r100', 'gpt2-b'].map((m) => fileURLToPath(new URL(`../../../fixtures/models/${m}`, import.meta.url)));

let backend: Backend | undefined;
let cacheDir: string;
beforeAll(async () => {
  cacheDir = mkdtempSync(join(tmpdir(), 'sfc-onnx-kv-'));
  backend = await onnxBackend({ intraOpNumThreads: 1, cacheDir });
});
afterAll(async () => {
  await backend?.dispose();
  rmSync(cacheDir, { recursive: true, force: true });
});

it('advertises the KV cache', () => {
  expect(backend!.capabilities.kvCache).toBe(true);
});

runKvCacheConformance({ load: (dir) => Model.load(dir, backend!), models: MODELS }, { describe, it, expect, afterAll }, 'KV cache (onnx)');
