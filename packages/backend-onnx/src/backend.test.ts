// The backend object: capabilities, describe(), execution-provider fallback, weight checks,
// dispose.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, InputError, ShapeError, NotFoundError, requireGrad } from '@sfc/core';
import { onnxBackend } from './index.js';
import { cudaLibraryPresent } from './execution-providers.js';
import { randomModel, TINY_CONFIGS } from './test-support/random-model.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'sfc-onnx-backend-'));
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

describe('onnxBackend', () => {
  it('has every capability and describes itself', async () => {
    const b = await onnxBackend({ cacheDir, intraOpNumThreads: 3 });
    expect(b.name).toBe('onnx');
    expect(b.capabilities.grad).toBe(true);
    expect(b.capabilities.devices).toContain('cpu');
    expect(() => requireGrad(b, 'ig')).not.toThrow();
    expect(b.describe()).toMatch(/^onnxruntime-node \d+\.\d+\.\d+, cpu, 3 intra-op threads, graph cache /);
    await b.dispose();
  });

  it('falls back to cpu when cuda is requested but not installed, and says so', async () => {
    const b = await onnxBackend({ cacheDir, executionProviders: ['cuda', 'cpu'] });
    if (cudaLibraryPresent()) {
      expect(b.describe()).toMatch(/cuda/);
    } else {
      expect(b.capabilities.devices).toEqual(['cpu']);
      expect(b.describe()).toMatch(/cuda requested but not installed/);
    }
    await b.dispose();
    const unknown = await onnxBackend({ cacheDir, executionProviders: ['tpu'] });
    expect(unknown.describe()).toMatch(/tpu: unknown execution provider/);
    await unknown.dispose();
  });

  it('refuses bad options, wrong weights and use after dispose', async () => {
    await expect(onnxBackend({ intraOpNumThreads: 0 })).rejects.toThrow(ConfigError);
    const b = await onnxBackend({ cacheDir });
    const { spec, weights } = randomModel(TINY_CONFIGS['neox parallel, rotary 1/2']!);
    const missing = new Map(weights);
    missing.delete('l0.qkv.w');
    await expect(b.loadModel(spec, missing)).rejects.toThrow(NotFoundError);
    const wrong = new Map(weights);
    wrong.set('l0.qkv.b', { shape: [5], data: new Float32Array(5) });
    await expect(b.loadModel(spec, wrong)).rejects.toThrow(ShapeError);
    const rt = await b.loadModel(spec, weights);
    await b.dispose();
    await expect(b.loadModel(spec, weights)).rejects.toThrow(InputError);
    await expect(rt.forward('attn_0', [])).rejects.toThrow(InputError);
  });
});
