// RoPE scaling and attention_bias false on onnxruntime: cached decoding of every rope fixture
// (fixtures/models/neox-rope-*) against the PyTorch reference of transformers' cached generation —
// for dynamic NTK that differs from a full forward past max_position_embeddings, because cached
// keys keep the rotation of the step that wrote them — and core's KV-cache conformance suite on
// the scaled and bias-free models (cached logits = full forward within the trained context).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type Backend } from '@sfc/core';
import { maxAbsDiff, runKvCacheConformance } from '@sfc/core/testing';
import { onnxBackend } from './index.js';

const dir = (m: string) => fileURLToPath(new URL(`../../../fixtures/models/${m}`, import.meta.url));
const ROPE = ['neox-rope-linear', 'neox-rope-dynamic', 'neox-rope-yarn', 'neox-rope-llama3'];

interface CacheRef { tokens: number[][]; logits: number[][][]; cache_check: { text: number; pieces: number[]; logits: number[][] } }

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

describe.each(ROPE)('%s: cached decoding matches transformers', (name) => {
  const ref = JSON.parse(readFileSync(`${dir(name)}/ref.json`, 'utf8')) as CacheRef;
  let model: Model;
  beforeAll(async () => { model = await Model.load(dir(name), backend!); });
  afterAll(() => model?.dispose());

  it('prefill, single tokens and a chunk through a KV cache give the reference logits', async () => {
    const { pieces, logits } = ref.cache_check;
    const ids = ref.tokens[ref.cache_check.text]!;
    const cache = await model.createKvCache({ batch: 1, maxLength: ids.length });
    const got: number[] = [];
    try {
      let at = 0;
      for (const n of pieces) {
        await model.ops.scope(async () => {
          const out = await model.forward(model.tokens(Int32Array.from(ids.slice(at, at + n)), 1, n), { cache });
          got.push(...(await out.logits!.data()));
        });
        at += n;
      }
    } finally {
      cache.dispose();
    }
    expect(maxAbsDiff(got, logits.flat())).toBeLessThanOrEqual(1e-4);
    // Dynamic NTK past max_position_embeddings: cached ≠ full forward (the check above can tell them apart).
    const full = maxAbsDiff(ref.logits[ref.cache_check.text]!.flat(), logits.flat());
    if (name === 'neox-rope-dynamic') expect(full).toBeGreaterThan(1e-2);
    else expect(full).toBeLessThanOrEqual(1e-5);
  });
});

runKvCacheConformance({ load: (d) => Model.load(d, backend!), models: [...ROPE, 'neox-nobias'].map(dir) }, { describe, it, expect, afterAll }, 'KV cache (onnx)');
