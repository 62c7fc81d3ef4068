// One onnx backend per test file, compiling into a fresh temporary graph cache that is removed
// with it (tests never touch the user's cache).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { Backend } from '@sfc/core';
import { onnxBackend, type OnnxBackendOptions } from '../index.js';

/** Registers the backend's creation and disposal on the file's hooks; returns its getter. */
export function tempBackend(prefix: string, options: Omit<OnnxBackendOptions, 'cacheDir'> = {}): () => Backend {
  let backend: Backend | undefined;
  let cacheDir: string | undefined;
  beforeAll(async () => {
    cacheDir = mkdtempSync(join(tmpdir(), `sfc-onnx-${prefix}-`));
    backend = await onnxBackend({ intraOpNumThreads: 1, ...options, cacheDir });
  });
  afterAll(async () => {
    await backend?.dispose();
    if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
  });
  return () => {
    if (!backend) throw new Error('the test backend is not open yet (use it inside a test or hook)');
    return backend;
  };
}
