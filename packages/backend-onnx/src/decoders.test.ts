// Gemma 2/3 and the Llama family on onnxruntime: core's decoder conformance suite (cached decoding
// of every refgen decoder against transformers' cached generation — sliding windows shorter than
// the prompt, soft-caps, GQA/MQA, q/k norms, local/global rope — and the KV-cache suite on all
// six). Logits, submodule outputs and gradients are in test/src/model-parity.test.ts.

import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Model } from '@sfc/core';
import { runDecoderConformance } from '@sfc/core/testing';
import { tempBackend } from './test-support/temp-backend.js';

const backend = tempBackend('decoders');

runDecoderConformance({ load: (dir) => Model.load(dir, backend()), modelsDir: fileURLToPath(new URL('../../../fixtures/models', import.meta.url)) },
  { describe, it, expect, afterAll }, 'Decoders (onnx)');
