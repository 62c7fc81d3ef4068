// Edge and node-effect parity on the tools/refgen models with an independent PyTorch reference
// (fixtures/models/<name>/edges/, written by tools/refgen/make_edge_refs.py: full-model autograd
// in float64, one backward per downstream node — not sfc's segment chain): sequential-residual
// GPT-NeoX neox-seq-r100 and GPT-2 gpt2-a (so attn_l → mlp_l edges are included) and the
// parallel BF16 GPT-NeoX neox-par-r50-bf16; SAELens and dictionary_learning SAEs.
// For every backend of backends.ts:
//   attrib node effects (sum, none) and metrics;
//   discover (ig, sum and none): the pairs, the downstream nodes selected per example and
//   position, the ig node effects, every stored edge entry (|a − r| ≤ 1e-3·|r| + 1e-5 and
//   max|Δ|/max|ref| ≤ 1e-3 per pair, no unexpected entry above the stored floor), row and
//   nonzero counts, sums, resid_last → y, and the thresholded circuit.
// The models are tiny, so even tfjs-cpu (not in ALGORITHM_BACKENDS) runs everything (~16 s of ~25 s).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attribute, buildCircuit, discover, edgePairs, Model,
  type AttributionResult, type Dictionary, type DiscoveryResult, type EdgeSet, type PromptBatch,
} from '@sfc/core';
import { relMaxError } from '@sfc/core/testing';
import { loadDictionarySet } from '@sfc/dictionaries';
import { BACKENDS, type OpenBackend } from './backends.js';
import { MODELS } from './paths.js';
import { ourNodeVector, refNodeVector, type Json } from './small-a.js';

const FIXTURES = ['neox-seq-r100', 'gpt2-a', 'neox-par-r50-bf16'] as const;
const TOL = (r: number) => 1e-3 * Math.abs(r) + 1e-5;

/** Worst measured max|Δ|/max|ref| per check, printed at the end with SFC_PARITY_REPORT=1. */
const measured = new Map<string, number>();
const note = (what: string, v: number) => measured.set(what, Math.max(measured.get(what) ?? 0, v));
afterAll(() => {
  if (process.env.SFC_PARITY_REPORT) process.stdout.write(`${[...measured].map(([k, v]) => `${k} ${v.toExponential(2)}`).join('\n')}\n`);
});

function readRef(name: string, file: string): Json {
  return JSON.parse(readFileSync(join(MODELS, name, 'edges', `${file}.json`), 'utf8'));
}

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

function entryKey(set: EdgeSet, down: number, up: number): string {
  if (set.positions === null) return `${down},${up}`;
  return `${Math.floor(down / set.downNodes)},${down % set.downNodes},${Math.floor(up / set.upNodes)},${up % set.upNodes}`;
}

/** One pair against the reference: stored entries, nothing unexpected above the floor, counts and sums. */
function checkPair(set: EdgeSet, expected: Json, floor: number, label0: string): void {
  const label = `${set.upstream} → ${set.downstream}`;
  const ours = new Map<string, number>();
  for (let n = 0; n < set.weight.length; n++) ours.set(entryKey(set, set.down[n]!, set.up[n]!), set.weight[n]!);
  const refEntries = new Map<string, number>((expected.entries as number[][]).map((e) => [e.slice(0, -1).join(','), e[e.length - 1]!]));
  const a: number[] = [], r: number[] = [];
  for (const [k, w] of refEntries) {
    const got = ours.get(k) ?? 0;
    expect(Math.abs(got - w), `${label} entry ${k}: ${got} vs ${w}`).toBeLessThanOrEqual(TOL(w));
    a.push(got); r.push(w);
  }
  for (const [k, w] of ours) {
    if (Math.abs(w) > floor + 1e-5) expect(refEntries.has(k), `${label}: extra entry ${k} = ${w}`).toBe(true);
  }
  if (r.length) {
    note(`${label0} edges`, relMaxError(a, r));
    expect(relMaxError(a, r), `${label} max|Δ|/max|ref|`).toBeLessThanOrEqual(1e-3);
  }
  expect(set.rows.length, `${label} n_rows`).toBe(expected.n_rows);
  expect(set.weight.length, `${label} nnz`).toBe(expected.nnz);
  const sum = set.weight.reduce((x, w) => x + w, 0);
  const abs = set.weight.reduce((x, w) => x + Math.abs(w), 0);
  expect(Math.abs(sum - expected.sum), `${label} sum`).toBeLessThanOrEqual(1e-3 * expected.abs_sum + 1e-5);
  expect(Math.abs(abs - expected.abs_sum), `${label} abs_sum`).toBeLessThanOrEqual(1e-3 * expected.abs_sum + 1e-5);
}

/** The reference circuit as node ids (`resid_1/7`, `attn_0/err@3`) and `source>target` edge keys. */
function refCircuit(expected: Json): { nodes: Map<string, number>; edges: Map<string, number> } {
  const id = (sub: string, idx: number[]): string => {
    if (sub === 'y') return 'y';
    const k = idx[idx.length - 1]!;
    const base = `${sub}/${k === expected.d_sae[sub] ? 'err' : k}`;
    return idx.length === 2 ? `${base}@${idx[0]}` : base;
  };
  const nodes = new Map<string, number>();
  for (const [sub, list] of Object.entries(expected.circuit.nodes as Record<string, number[][]>)) {
    for (const n of list) nodes.set(id(sub, n.slice(0, -1)), n[n.length - 1]!);
  }
  const edges = new Map<string, number>();
  for (const [up, ui, down, di, w] of expected.circuit.edges as [string, number[], string, number[], number][]) edges.set(`${id(up, ui)}>${id(down, di)}`, w);
  return { nodes, edges };
}

for (const which of BACKENDS) describe(which.name, () => {
  let opened: OpenBackend;
  beforeAll(async () => { opened = await which.open(); });
  afterAll(async () => { await opened?.close(); });

  for (const name of FIXTURES) describe(name, () => {
    const data = readRef(name, 'data');
    const batches = [promptBatch(data)];
    let model: Model;
    let dictionaries: Map<string, Dictionary>;
    beforeAll(async () => {
      model = await Model.load(join(MODELS, name), opened.backend);
      dictionaries = await loadDictionarySet(join(MODELS, name, 'edges', 'saes'), model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel });
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
        const expected = readRef(name, `attrib_${aggregation}`);
        const result = await attribute(model, dictionaries, batches, { method: { kind: 'attrib' }, aggregation });
        checkMetrics(result, expected);
        checkNodes(result, expected, `${which.name} ${name}`);
      });

      describe(`discover (ig), aggregation ${aggregation}`, () => {
        const expected = readRef(name, `ig_${aggregation}`);
        let result: DiscoveryResult;
        beforeAll(async () => {
          result = await discover(model, dictionaries, batches, { aggregation, nodeThreshold: expected.node_threshold, steps: expected.steps });
        });

        it('has the pairs of get_circuit (attn_l → mlp_l for sequential models)', () => {
          expect(expected.parallel_residual).toBe(model.spec.parallelResidual);
          const pairs = edgePairs(model, result.submodules).map((p) => `${p.upstream}>${p.downstream}`).sort();
          const refPairs = Object.entries(expected.edges as Record<string, Record<string, unknown>>)
            .flatMap(([up, downs]) => Object.keys(downs).filter((d) => d !== 'y').map((d) => `${up}>${d}`)).sort();
          expect(pairs).toEqual(refPairs);
          expect(pairs).toHaveLength((expected.parallel_residual ? 5 : 6) * model.spec.dims.nLayers);
        });

        it('ig node effects, metrics and the downstream nodes selected per example and position', () => {
          checkMetrics(result, expected);
          checkNodes(result, expected, `${which.name} ${name}`);
          for (const [sub, n] of Object.entries(expected.downstream_nodes_above_threshold as Record<string, number>)) {
            expect(result.downstreamNodes.get(sub), sub).toBe(n);
          }
        });

        it('every edge entry, count and sum', () => {
          let checked = 0;
          for (const set of result.edges) {
            if (set.downstream === 'y') continue;
            const e = expected.edges[set.upstream]?.[set.downstream];
            expect(e, `${set.upstream} → ${set.downstream} in the reference`).toBeDefined();
            checkPair(set, e, expected.edges_entry_floor, `${which.name} ${name} ${aggregation}`);
            checked += e.entries.length;
          }
          expect(checked).toBeGreaterThan(1000);
        });

        it('resid_last → y is the ig node effect of the last resid', () => {
          const last = result.submodules[result.submodules.length - 1]!;
          const y = result.edges.find((e) => e.downstream === 'y')!;
          expect(y.upstream).toBe(last);
          const dense = expected.edges[last].y.dense as number[] | number[][];
          const flat = aggregation === 'sum' ? dense as number[] : (dense as number[][]).flat();
          const ours = new Array<number>(flat.length).fill(0);
          for (let n = 0; n < y.weight.length; n++) ours[y.up[n]!] = y.weight[n]!;
          expect(relMaxError(ours, flat)).toBeLessThanOrEqual(1e-3);
        });

        it('thresholds to the same circuit', () => {
          const c = buildCircuit(result, { nodeThreshold: expected.node_threshold, edgeThreshold: expected.edge_threshold });
          const want = refCircuit(expected);
          const nodes = new Map(c.nodes.filter((n) => n.id !== 'y').map((n) => [n.id, n.effect!]));
          expect([...nodes.keys()].sort()).toEqual([...want.nodes.keys()].sort());
          for (const [k, w] of want.nodes) expect(Math.abs(nodes.get(k)! - w), k).toBeLessThanOrEqual(TOL(w));
          const edges = new Map(c.edges.map((e) => [`${e.source}>${e.target}`, e.weight]));
          expect([...edges.keys()].sort()).toEqual([...want.edges.keys()].sort());
          for (const [k, w] of want.edges) expect(Math.abs(edges.get(k)! - w), k).toBeLessThanOrEqual(TOL(w));
          expect(want.edges.size).toBeGreaterThan(10);
        });
      });
    }
  });
});
