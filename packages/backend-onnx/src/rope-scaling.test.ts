// RoPE scaling and attention_bias false on onnxruntime: core's conformance suite (cached decoding
// of every fixtures/models/neox-rope-* model against transformers' cached generation, and the
// KV-cache suite on the scaled and bias-free models).

import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Model } from '@sfc/core';
import { runRopeScalingConformance } from '@sfc/core/testing';
import { tempBackend } from './test-support/temp-backend.js';

const backend = tempBackend('rope');

runRopeScalingConformance({ load: (dir) => Model.load(dir, backend()), modelsDir: fileURLToPath(new URL('../../../fixtures/models', import.meta.url)) },
  { describe, it, expect, afterAll }, 'RoPE scaling (onnx)');
