// The KV cache on onnxruntime: core's conformance suite on a rotary GPT-NeoX (parallel and
// sequential residual) and a learned-position GPT-2 — cached logits equal a full forward's, with
// and without position-dependent edits, no leaked tensors, typed errors for misuse.

import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Model } from '@sfc/core';
import { runKvCacheConformance } from '@sfc/core/testing';
import { tempBackend } from './test-support/temp-backend.js';

const MODELS = ['neox-par-r25', 'neox-seq-r100', 'gpt2-b'].map((m) => fileURLToPath(new URL(`../../../fixtures/models/${m}`, import.meta.url)));

const backend = tempBackend('kv');

it('advertises the KV cache', () => {
  expect(backend().capabilities.kvCache).toBe(true);
});

runKvCacheConformance({ load: (dir) => Model.load(dir, backend()), models: MODELS }, { describe, it, expect, afterAll }, 'KV cache (onnx)');
