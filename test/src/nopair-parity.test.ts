// Single-prompt (feature-circuits --nopair) parity on the tools/refgen models with an independent
// PyTorch reference (fixtures/models/<name>/nopair/, written by tools/refgen/make_nopair_refs.py:
// each prompt run alone in float64, patch state zero, metric −logit[last, answer]).
// The prompts are read from the reference's cluster JSON (clusters.json: context pieces joined
// with "", file order, an entry with a two-token answer skipped) and have different token lengths,
// so sfc runs them in right-padded batches (2 prompts per batch). For every algorithm backend:
//   the selection (ids, answers, order); per-example metric values (1e-5 relative);
//   attrib and exact node effects (sum); discover (ig, sum): ig node effects, the edge pairs, the
//   downstream nodes selected per example and position, every stored edge entry
//   (|a − r| ≤ 1e-3·|r| + 1e-5, max|Δ|/max|ref| ≤ 1e-3 per pair), counts, sums, resid_last → y,
//   and the thresholded circuit.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attribute, batchExamples, discover, Model, selectExamples, type AttributionResult, type Dictionary, type PromptBatch } from '@sfc/core';
import { relMaxError } from '@sfc/core/testing';
import { loadDictionarySet } from '@sfc/dictionaries';
import { ALGORITHM_BACKENDS, type OpenBackend } from './backends.js';
import { checkCircuit, checkDownstreamNodes, checkEdgePairs, checkEdgeSets, checkLastToY } from './edge-compare.js';
import { MODELS } from './paths.js';
import { ourNodeVector, refNodeVector, type Json } from './small-a.js';

const FIXTURES = ['neox-seq-r100', 'gpt2-a'] as const;

const read = (name: string, file: string): Json => JSON.parse(readFileSync(join(MODELS, name, 'nopair', file), 'utf8'));

function checkNodes(result: AttributionResult, expected: Json): void {
  expect(result.numExamples).toBe(expected.n_examples);
  expect(result.metricPatch).toBeNull();
  expect(relMaxError(result.perExample.metricClean, expected.metric.clean), 'metric per example').toBeLessThanOrEqual(1e-5);
  for (const sub of expected.submodules as string[]) {
    const e = result.effects.get(sub)!;
    expect(relMaxError(ourNodeVector(e.features, e.error, e.dSae, e.positions), refNodeVector(expected.nodes[sub])),
      `${result.method} ${sub}: max|Δ|/max|ref|`).toBeLessThanOrEqual(1e-3);
  }
}

for (const which of ALGORITHM_BACKENDS) describe(which.name, () => {
  let opened: OpenBackend;
  beforeAll(async () => { opened = await which.open(); });
  afterAll(async () => { await opened?.close(); });

  for (const name of FIXTURES) describe(name, () => {
    const data = read(name, 'data.json');
    let model: Model;
    let dictionaries: Map<string, Dictionary>;
    let batches: PromptBatch[];
    beforeAll(async () => {
      model = await Model.load(join(MODELS, name), opened.backend);
      dictionaries = await loadDictionarySet(join(MODELS, name, 'edges', 'saes'), model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel });
      const sel = selectExamples(readFileSync(join(MODELS, name, 'nopair', 'clusters.json'), 'utf8'), model.tokenizer, { numExamples: 100, onWarning: () => {} });
      expect(sel.paired).toBe(false);
      expect(sel.skipped['answer-not-one-token']).toBe(1);
      expect(sel.examples.map((e) => e.cleanIds)).toEqual(data.ids);
      expect(sel.examples.map((e) => e.cleanAnswerId)).toEqual(data.answer);
      batches = batchExamples(sel.examples, 2);
      expect(batches.map((b) => (b.lengths ? [...b.lengths] : b.seq))).toEqual([[data.lengths[0], data.lengths[1]], [data.lengths[2], data.lengths[3]], data.lengths[4]]);
      expect(batches.every((b) => b.patch === undefined)).toBe(true);
    });
    afterAll(() => {
      for (const d of dictionaries?.values() ?? []) d.dispose();
      model?.dispose();
    });

    it('is the model and SAEs the reference was computed on', () => {
      const sha = createHash('sha256').update(readFileSync(join(MODELS, name, 'model.safetensors'))).digest('hex');
      expect(sha).toBe(data.model_safetensors_sha256);
    });

    for (const method of ['attrib', 'exact'] as const) {
      it(`${method} node effects (sum) and metric equal the reference's prompts run alone`, async () => {
        checkNodes(await attribute(model, dictionaries, batches, { method: { kind: method } }), read(name, `${method}_sum.json`));
      });
    }

    it('discover (ig, sum): nodes, edges, downstream nodes and circuit equal the reference', async () => {
      const expected = read(name, 'ig_sum.json');
      const result = await discover(model, dictionaries, batches, { nodeThreshold: expected.node_threshold, steps: expected.steps });
      checkNodes(result, expected);
      checkEdgePairs(model, result, expected);
      checkDownstreamNodes(result, expected);
      expect(checkEdgeSets(result, expected)).toBeGreaterThan(0);
      checkLastToY(result, expected);
      checkCircuit(result, expected);
    });
  });
});
