// The shared TensorOps conformance suite (the same one the onnx backend and the reference ops
// run) on tfjs-wasm, the default flavor here. One tfjs flavor per process (see engine.ts), so
// the cpu kernels are covered by ops.test.ts rather than a second run in this file.
import { afterAll, expect, it, describe } from 'vitest';
import { runTensorOpsConformance } from '@sfc/core/testing';
import { tfjsBackend } from './index.js';

const backend = await tfjsBackend({ flavor: 'wasm' });
afterAll(() => backend.dispose());
runTensorOpsConformance(backend.ops, { describe, it, expect }, 'tfjs-wasm TensorOps conformance');
