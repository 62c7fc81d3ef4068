// Circuit discovery on the onnx backend against the PyTorch reference (fixtures/small-a/ref):
// node effects for attrib, ig and exact (aggregation sum and none) and the edges of every pair
// (aggregation sum) — the same acceptance as the tfjs parity suites: per submodule and per pair
// max|Δ|/max|ref| ≤ 1e-3, metrics within 1e-4, the same edge rows and nonzero counts.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attribute, batchExamples, discover, Model, selectExamples,
  type AttributionMethod, type Backend, type Dictionary, type EdgeSet, type PromptBatch,
} from '@sfc/core';
import { onnxBackend } from '@sfc/backend-onnx';
import { loadDictionarySet } from '@sfc/dictionaries';
import { SMALL_A } from './paths.js';
import { ourNodeVector, ref, refNodeVector, relMaxError, type Json } from './small-a.js';

let backend: Backend, model: Model, dictionaries: Map<string, Dictionary>, batches: PromptBatch[], cacheDir: string;
beforeAll(async () => {
  cacheDir = mkdtempSync(join(tmpdir(), 'sfc-onnx-algo-'));
  backend = await onnxBackend({ cacheDir });
  model = await Model.load(SMALL_A, backend);
  dictionaries = await loadDictionarySet(join(SMALL_A, 'saelens'), model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel });
  const sel = selectExamples(readFileSync(join(SMALL_A, 'data.jsonl'), 'utf8'), model.tokenizer, { numExamples: 40, seed: null });
  batches = batchExamples(sel.examples, 40);
});
afterAll(async () => {
  for (const d of dictionaries?.values() ?? []) d.dispose();
  model?.dispose();
  await backend?.dispose();
  rmSync(cacheDir, { recursive: true, force: true });
});

describe('onnx: node effects match feature-circuits (small-a)', () => {
  const methods: [string, AttributionMethod][] = [['attrib', { kind: 'attrib' }], ['ig', { kind: 'ig', steps: 10 }], ['exact', { kind: 'exact' }]];
  for (const [name, method] of methods) {
    for (const aggregation of ['sum', 'none'] as const) {
      it(`${name}, aggregation ${aggregation}`, async () => {
        const expected = ref(`${name}_${aggregation}`);
        const result = await attribute(model, dictionaries, batches, { method, aggregation, maxRows: 512 });
        for (let i = 0; i < 40; i++) {
          expect(Math.abs(result.perExample.metricClean[i]! - expected.metric.clean[i])).toBeLessThanOrEqual(1e-4);
          expect(Math.abs(result.perExample.metricPatch![i]! - expected.metric.patch[i])).toBeLessThanOrEqual(1e-4);
        }
        for (const sub of expected.submodules as string[]) {
          const e = result.effects.get(sub)!;
          const err = relMaxError(ourNodeVector(e.features, e.error, e.dSae, e.positions), refNodeVector(expected.nodes[sub]));
          expect(err, `${name}/${aggregation} ${sub}`).toBeLessThanOrEqual(1e-3);
        }
      });
    }
  }
});

describe('onnx: edges match feature-circuits (small-a, aggregation sum)', () => {
  it('every pair: reference entries, row and nonzero counts', async () => {
    const expected = ref('ig_sum');
    const options = { aggregation: 'sum' as const, nodeThreshold: expected.node_threshold, steps: expected.steps, maxRows: 512 };
    await discover(model, dictionaries, batches, options); // dictionaries build their caches on first use
    const before = backend.ops.numTensors();
    const result = await discover(model, dictionaries, batches, options);
    expect(backend.ops.numTensors(), 'tensors left alive by a second discover').toBe(before);
    let pairs = 0;
    for (const set of result.edges as EdgeSet[]) {
      const exp: Json = expected.edges[set.upstream]?.[set.downstream];
      if (set.downstream === 'y') continue;
      expect(exp, `${set.upstream} → ${set.downstream} in the reference`).toBeDefined();
      pairs++;
      const ours = new Map<string, number>();
      for (let n = 0; n < set.weight.length; n++) ours.set(`${set.down[n]},${set.up[n]}`, set.weight[n]!);
      const r = (exp.entries as number[][]).map((e) => e[2]!);
      const a = (exp.entries as number[][]).map((e) => ours.get(`${e[0]},${e[1]}`) ?? 0);
      const label = `${set.upstream} → ${set.downstream}`;
      expect(relMaxError(a, r), `${label} max|Δ|/max|ref|`).toBeLessThanOrEqual(1e-3);
      expect(set.rows.length, `${label} rows`).toBe(exp.n_rows);
      expect(set.weight.length, `${label} nnz`).toBe(exp.nnz);
    }
    const refPairs = Object.values(expected.edges as Record<string, Record<string, unknown>>)
      .reduce((n, downs) => n + Object.keys(downs).filter((d) => d !== 'y').length, 0);
    expect(pairs).toBe(refPairs);
  });
});
