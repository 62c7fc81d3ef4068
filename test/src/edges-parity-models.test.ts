// Edge and node-effect parity on the tools/refgen models with an independent PyTorch reference
// (fixtures/models/<name>/edges/, written by tools/refgen/make_edge_refs.py: full-model autograd
// in float64, one backward per downstream node — not sfc's segment chain): sequential-residual
// GPT-NeoX neox-seq-r100 and GPT-2 gpt2-a (so attn_l → mlp_l edges are included) and the
// parallel BF16 GPT-NeoX neox-par-r50-bf16; SAELens and dictionary_learning SAEs; and the
// RMSNorm decoders gemma2-a, gemma3-a (no embed node; attn_l = o_proj's input, narrower or wider
// than d_model, with SAELens hook_z SAEs), llama-a, mistral-bf16, qwen2-a, qwen3-a; and gemma2-a
// with `embed` as a submodule (Model.load's embedSubmodule: embed_tokens' output before the √d
// scale, feature-circuits' include_embed=True; fixtures/models/gemma2-a/edges-embed/).
// For every backend of backends.ts:
//   attrib node effects (sum, none) and metrics; exact node effects where the fixture has them;
//   discover (ig, sum and none): the pairs, the downstream nodes selected per example and
//   position, the ig node effects, every stored edge entry (|a − r| ≤ 1e-3·|r| + 1e-5 and
//   max|Δ|/max|ref| ≤ 1e-3 per pair, no unexpected entry above the stored floor), row and
//   nonzero counts, sums, resid_last → y, and the thresholded circuit.
// The models are tiny, so even tfjs-cpu (not in ALGORITHM_BACKENDS) runs everything (~16 s of ~25 s).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attribute, discover, Model,
  type AttributionResult, type Dictionary, type DiscoveryResult, type PromptBatch,
} from '@sfc/core';
import { relMaxError } from '@sfc/core/testing';
import { loadDictionarySet } from '@sfc/dictionaries';
import { BACKENDS, type OpenBackend } from './backends.js';
import { checkCircuit, checkDownstreamNodes, checkEdgePairs, checkEdgeSets, checkLastToY } from './edge-compare.js';
import { MODELS } from './paths.js';
import { ourNodeVector, refNodeVector, type Json } from './small-a.js';

/** A model folder and its references: `edges/`, or another folder made with other Model.load options. */
interface Fixture { readonly model: string; readonly refs: string; readonly embedSubmodule?: boolean }

const FIXTURES: readonly Fixture[] = [
  ...['neox-seq-r100', 'gpt2-a', 'neox-par-r50-bf16', 'gemma2-a', 'gemma3-a', 'llama-a', 'mistral-bf16', 'qwen2-a', 'qwen3-a'].map((model) => ({ model, refs: 'edges' })),
  // Its saes/ holds only embed's SAE; the others (and the prompts) are edges/'s.
  { model: 'gemma2-a', refs: 'edges-embed', embedSubmodule: true },
];

/** Worst measured max|Δ|/max|ref| per check, printed at the end with SFC_PARITY_REPORT=1. */
const measured = new Map<string, number>();
const note = (what: string, v: number) => measured.set(what, Math.max(measured.get(what) ?? 0, v));
afterAll(() => {
  if (process.env.SFC_PARITY_REPORT) process.stdout.write(`${[...measured].map(([k, v]) => `${k} ${v.toExponential(2)}`).join('\n')}\n`);
});

function readRef(f: Fixture, file: string): Json {
  return JSON.parse(readFileSync(join(MODELS, f.model, f.refs, `${file}.json`), 'utf8'));
}

const hasRef = (f: Fixture, file: string) => existsSync(join(MODELS, f.model, f.refs, `${file}.json`));

/** data.json's prompt pairs as one batch, in file order (the reference runs them as one batch). */
function promptBatch(data: Json): PromptBatch {
  const B = data.n_examples as number;
  return {
    size: B, seq: data.seq_len, clean: Int32Array.from((data.clean_ids as number[][]).flat()), patch: Int32Array.from((data.patch_ids as number[][]).flat()),
    cleanAnswer: Int32Array.from(data.clean_answer), patchAnswer: Int32Array.from(data.patch_answer), exampleIndex: [...Array(B).keys()],
  };
}

function checkMetrics(result: AttributionResult, expected: Json): void {
  expect(result.numExamples).toBe(expected.n_examples);
  expect(result.submodules).toEqual(expected.submodules);
  expect(relMaxError(result.perExample.metricClean, expected.metric.clean), 'metric clean').toBeLessThanOrEqual(1e-5);
  expect(relMaxError(result.perExample.metricPatch!, expected.metric.patch), 'metric patch').toBeLessThanOrEqual(1e-5);
  expect(Math.abs(result.totalEffect! - expected.total_effect.mean), 'total effect').toBeLessThanOrEqual(1e-4);
}

function checkNodes(result: AttributionResult, expected: Json, label: string): void {
  for (const sub of expected.submodules as string[]) {
    const e = result.effects.get(sub)!;
    const err = relMaxError(ourNodeVector(e.features, e.error, e.dSae, e.positions), refNodeVector(expected.nodes[sub]));
    note(`${label} ${result.method}/${result.aggregation} nodes`, err);
    expect(err, `${result.method}/${result.aggregation} ${sub}: max|Δ|/max|ref|`).toBeLessThanOrEqual(1e-3);
  }
}

for (const which of BACKENDS) describe(which.name, () => {
  let opened: OpenBackend;
  beforeAll(async () => { opened = await which.open(); });
  afterAll(async () => { await opened?.close(); });

  for (const fx of FIXTURES) describe(`${fx.model} (${fx.refs})`, () => {
    const name = fx.model;
    const data = readRef(fx, 'data');
    const batches = [promptBatch(data)];
    let model: Model;
    let dictionaries: Map<string, Dictionary>;
    beforeAll(async () => {
      model = await Model.load(join(MODELS, name), opened.backend, { embedSubmodule: !!fx.embedSubmodule });
      dictionaries = await loadDictionarySet(join(MODELS, name, 'edges', 'saes'), model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel, missing: fx.refs === 'edges' ? 'error' : 'skip' });
      if (fx.refs !== 'edges') {
        const own = await loadDictionarySet(join(MODELS, name, fx.refs, 'saes'), model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel, missing: 'skip' });
        for (const [k, d] of own) dictionaries.set(k, d);
      }
    });
    afterAll(() => {
      for (const d of dictionaries?.values() ?? []) d.dispose();
      model?.dispose();
    });

    it('the model folder holds the weights the reference was made from', () => {
      const sha = createHash('sha256').update(readFileSync(join(MODELS, name, 'model.safetensors'))).digest('hex');
      expect(sha, `${name}/model.safetensors changed: re-run python3 tools/refgen/make_edge_refs.py`).toBe(data.model_safetensors_sha256);
    });

    for (const aggregation of ['sum', 'none'] as const) {
      it(`attrib node effects and metrics, aggregation ${aggregation}`, async () => {
        const expected = readRef(fx, `attrib_${aggregation}`);
        const result = await attribute(model, dictionaries, batches, { method: { kind: 'attrib' }, aggregation });
        checkMetrics(result, expected);
        checkNodes(result, expected, `${which.name} ${name}`);
      });

      if (hasRef(fx, `exact_${aggregation}`)) {
        it(`exact node effects, aggregation ${aggregation}`, async () => {
          const expected = readRef(fx, `exact_${aggregation}`);
          const result = await attribute(model, dictionaries, batches, { method: { kind: 'exact' }, aggregation });
          checkMetrics(result, expected);
          checkNodes(result, expected, `${which.name} ${name}`);
        });
      }

      if (hasRef(fx, `ig_${aggregation}`)) describe(`discover (ig), aggregation ${aggregation}`, () => {
        const expected = readRef(fx, `ig_${aggregation}`);
        let result: DiscoveryResult;
        beforeAll(async () => {
          result = await discover(model, dictionaries, batches, { aggregation, nodeThreshold: expected.node_threshold, steps: expected.steps });
        });

        it('has the pairs of get_circuit (attn_l → mlp_l for sequential models)', () => {
          expect(expected.parallel_residual).toBe(model.spec.parallelResidual);
          const pairs = checkEdgePairs(model, result, expected);
          // Without an embed node (Gemma) layer 0 has no upstream resid: 3 pairs fewer.
          const noEmbed = !model.submodules.some((s) => s.name === 'embed');
          expect(pairs).toHaveLength((expected.parallel_residual ? 5 : 6) * model.spec.dims.nLayers - (noEmbed ? 3 : 0));
        });

        it('ig node effects, metrics and the downstream nodes selected per example and position', () => {
          checkMetrics(result, expected);
          checkNodes(result, expected, `${which.name} ${name}`);
          checkDownstreamNodes(result, expected);
        });

        it('every edge entry, count and sum', () => {
          const checked = checkEdgeSets(result, expected, (rel) => note(`${which.name} ${name} ${aggregation} edges`, rel));
          expect(checked).toBeGreaterThan(1000);
        });

        it('resid_last → y is the ig node effect of the last resid', () => {
          checkLastToY(result, expected);
        });

        it('thresholds to the same circuit', () => {
          const want = checkCircuit(result, expected);
          expect(want.edges.size).toBeGreaterThan(10);
        });
      });
    }
  });
});
