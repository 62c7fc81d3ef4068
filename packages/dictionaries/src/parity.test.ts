// Parity with PyTorch ports of SAELens, dictionary_learning, Gemma Scope and lm-saes (Llama
// Scope): every case in test-data/archs (written by tools/refgen/make_sae_refs.py) and
// test-data/llama-scope (tools/refgen/make_llama_scope_refs.py) is loaded through its plugin and
// encode, decode, encodeVjp and featureGradients are compared with autograd, ≤ 1e-5.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Tensor, TensorOps } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { tfjsBackend } from '@sfc/backend-tfjs';
import { defaultDictionaryPlugins, describeDictionary, loadDictionary } from './index.js';

const DIRS = ['archs', 'llama-scope'].map((d) => fileURLToPath(new URL(`../test-data/${d}`, import.meta.url)));

interface Ref {
  dir: string; case: string; loader: string; options: Record<string, unknown>;
  expect: { architecture: string; dIn: number; dSae: number; hook: string | null; class?: string };
  x: number[][]; features: number[][]; decode: number[][]; cot: number[][]; vjp: number[][];
  feature_ids: number[]; feature_grads: number[][]; features_raw?: number[][];
}

const refs: Ref[] = DIRS.flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.ref.json')).sort()
  .map((f) => ({ ...JSON.parse(readFileSync(join(dir, f), 'utf8')) as Ref, dir })));

async function expectClose(t: Tensor, ref: number[][], what: string, tol = 1e-5): Promise<void> {
  const got = await t.data();
  const flat = ref.flat();
  expect(t.shape).toEqual([ref.length, ref[0]!.length]);
  let worst = 0;
  for (let i = 0; i < flat.length; i++) worst = Math.max(worst, Math.abs(got[i]! - flat[i]!) / Math.max(1, Math.abs(flat[i]!)));
  expect(worst, `${what}: worst relative difference ${worst}`).toBeLessThanOrEqual(tol);
}

// Every case on the pure-JS reference ops and on TensorFlow.js (cpu): the architectures are
// written once against TensorOps and must give the same numbers on any backend.
const tfjs = await tfjsBackend({ flavor: 'cpu' });
afterAll(() => tfjs.dispose());
const BACKENDS: [string, () => TensorOps][] = [['reference ops', referenceOps], ['tfjs-cpu', () => tfjs.ops]];

describe('parity test data', () => {
  it('has cases for every architecture and format', () => {
    expect(new Set(refs.map((r) => r.expect.architecture))).toEqual(new Set(['relu', 'jumprelu', 'topk', 'batchtopk', 'matryoshka_batchtopk', 'gated']));
    expect(new Set(refs.map((r) => r.loader))).toEqual(new Set(['saelens', 'dictionary-learning', 'gemma-scope', 'llama-scope']));
  });
});

describe.each(BACKENDS)('parity with PyTorch references on %s', (_name, makeOps) => {
  for (const ref of refs) {
    it(ref.case, async () => {
      const ops = makeOps();
      await ops.scope(async () => {
        const warnings: string[] = [];
        const dict = await loadDictionary(join(ref.dir, ref.case), { ops, dIn: ref.expect.dIn, warn: (m) => warnings.push(m), options: ref.options },
          defaultDictionaryPlugins());
        const info = describeDictionary(dict);
        expect(info.format).toBe(ref.loader);
        expect(info.architecture).toBe(ref.expect.architecture);
        expect([info.dIn, info.dSae]).toEqual([ref.expect.dIn, ref.expect.dSae]);
        if (ref.expect.hook) expect(info.hook).toBe(ref.expect.hook);
        if (ref.expect.class) expect(info.details.class).toBe(ref.expect.class);
        const n = ref.x.length;
        const x = ops.tensor(ref.x.flat(), [n, ref.expect.dIn]);
        await expectClose(dict.encode(x), ref.features, 'encode');
        await expectClose(dict.decode(ops.tensor(ref.features.flat(), [n, ref.expect.dSae])), ref.decode, 'decode');
        await expectClose(dict.encodeVjp(x, ops.tensor(ref.cot.flat(), [n, ref.expect.dSae])), ref.vjp, 'encodeVjp');
        await expectClose(dict.featureGradients(x, Int32Array.from(ref.feature_ids)), ref.feature_grads, 'featureGradients');
        dict.dispose();
      });
    });
  }
});
