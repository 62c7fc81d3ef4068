// Sharded runs (core/src/circuit/partial.ts) on fixtures/small-a: attribute, discover and evaluate
// over the shards' batches, written as partials, parsed back and merged, equal the single-process
// run to 1e-6 relative — for 3 shards and for more shards than batches (empty shards) — and
// partials of different runs, or an incomplete set, refuse to merge naming the difference.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  attribute, attributionPartial, batchExamples, discover, discoveryPartial, emptyPartial, evaluate, evaluationPartial, mergePartials,
  parsePartial, selectExamples, serializePartial, shardBatchIndices,
  type AttributionResult, type DiscoveryResult, type EvaluationResult, type NamedPartial, type PartialFile, type PartialKind, type PromptBatch, type Shard,
} from '@sfc/core';
import { testBackend } from './backends.js';
import { SMALL_A } from './paths.js';
import { useSmallA } from './small-a.js';

const s = useSmallA(testBackend('onnx'));
/** The 40 examples in batches of 7 (6 batches, the last of 5): shards see uneven batches. */
const batches = (): PromptBatch[] => {
  const sel = selectExamples(readFileSync(join(SMALL_A, 'data.jsonl'), 'utf8'), s.model.tokenizer, { numExamples: 40, seed: 12 });
  return batchExamples(sel.examples, 7);
};
const META = { model: { path: 'small-a' }, data: { path: 'data.jsonl' } };

function close(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  expect(a.length, what).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i]! - b[i]!) / (Math.abs(b[i]!) + 1e-12);
    if (Math.abs(a[i]! - b[i]!) > 1e-12) worst = Math.max(worst, err);
  }
  expect(worst, what).toBeLessThanOrEqual(1e-6);
}

/** Runs every shard of `count` through `run`, round-trips the partials through JSON, merges them. */
async function sharded<R>(kind: PartialKind, all: PromptBatch[], count: number, run: (subset: PromptBatch[], indices: number[]) => Promise<R>,
  toPartial: (r: R, ctx: Parameters<typeof emptyPartial>[1]) => PartialFile, identity: Record<string, unknown> = {}): Promise<NamedPartial[]> {
  const parts: NamedPartial[] = [];
  for (let index = 0; index < count; index++) {
    const shard: Shard = { index, count };
    const indices = shardBatchIndices(all.length, shard);
    const ctx = { shard, identity: { kind, ...identity }, meta: META, batchSizes: all.map((b) => b.size), batches: indices };
    const file = indices.length === 0 ? emptyPartial(kind, ctx) : toPartial(await run(indices.map((b) => all[b]!), indices), ctx);
    parts.push({ file: parsePartial(serializePartial(file), `part-${index}.json`), source: `part-${index}.json` });
  }
  return parts;
}

function sameNodes(merged: AttributionResult, single: AttributionResult): void {
  expect(merged.numExamples).toBe(single.numExamples);
  expect(merged.submodules).toEqual(single.submodules);
  expect(merged.seqLen).toBe(single.seqLen);
  for (const name of single.submodules) {
    close(merged.effects.get(name)!.features, single.effects.get(name)!.features, `${name} features`);
    close(merged.effects.get(name)!.error, single.effects.get(name)!.error, `${name} error`);
  }
  expect(merged.perExample.exampleIndex).toEqual(single.perExample.exampleIndex);
  close([merged.metricClean, merged.metricPatch!, merged.totalEffect!], [single.metricClean, single.metricPatch!, single.totalEffect!], 'metric means');
}

describe('sharded runs merge to the single-process result', () => {
  it('attribute (ig, aggregation none): 3 shards and 8 shards (2 empty)', async () => {
    const all = batches();
    expect(all.length).toBe(6);
    const options = { method: { kind: 'ig', steps: 4 }, aggregation: 'none' } as const;
    const single = await attribute(s.model, s.dictionaries, all, options);
    for (const count of [3, 8]) {
      const parts = await sharded('attribute', all, count, (b) => attribute(s.model, s.dictionaries, b, options), attributionPartial);
      const merged = mergePartials(parts);
      expect(merged.kind).toBe('attribute');
      sameNodes(merged.result as AttributionResult, single);
    }
  });

  it('discover: node effects, edges (sparse, summed), downstream counts', async () => {
    const all = batches();
    const options = { steps: 3, nodeThreshold: 0.05 };
    const single = await discover(s.model, s.dictionaries, all, options);
    const merged = mergePartials(await sharded('discover', all, 4, (b) => discover(s.model, s.dictionaries, b, options), discoveryPartial)).result as DiscoveryResult;
    sameNodes(merged, single);
    expect([...merged.downstreamNodes]).toEqual([...single.downstreamNodes]);
    expect(merged.edges.map((e) => `${e.upstream}>${e.downstream}`)).toEqual(single.edges.map((e) => `${e.upstream}>${e.downstream}`));
    let nnz = 0;
    merged.edges.forEach((e, k) => {
      const r = single.edges[k]!;
      expect(Array.from(e.rows)).toEqual(Array.from(r.rows));
      // Same coordinates; a sum that cancels to exactly 0 on one side only is a rounding artefact.
      const key = (x: typeof e) => new Map(Array.from(x.down, (d, i) => [`${d}:${x.up[i]}`, x.weight[i]!]));
      const a = key(e), b = key(r);
      for (const [k2, w] of b) close([a.get(k2) ?? 0], [w], `edge ${e.upstream} → ${e.downstream} ${k2}`);
      for (const [k2, w] of a) if (!b.has(k2)) expect(Math.abs(w), `extra edge ${k2}`).toBeLessThan(1e-9);
      nnz += b.size;
    });
    expect(nnz).toBeGreaterThan(100);
  });

  it('discover on single prompts of mixed lengths (right-padded batches): 3 shards', async () => {
    const lines = readFileSync(join(SMALL_A, 'data.jsonl'), 'utf8').trim().split('\n').slice(0, 18).map((l, i) => {
      const p = JSON.parse(l) as { clean_prefix: string; clean_answer: string };
      // Every third prompt loses its first word: lengths differ within batches.
      return JSON.stringify({ clean_prefix: i % 3 === 0 ? p.clean_prefix.split(' ').slice(1).join(' ') : p.clean_prefix, clean_answer: p.clean_answer });
    });
    const sel = selectExamples(lines.join('\n'), s.model.tokenizer, { numExamples: 18, seed: null, minLengthOnly: false });
    const all = batchExamples(sel.examples, 4);
    expect(all.some((b) => b.lengths !== undefined)).toBe(true);
    const options = { steps: 2, nodeThreshold: 0.05 };
    const single = await discover(s.model, s.dictionaries, all, options);
    expect(single.metricPatch).toBeNull();
    const merged = mergePartials(await sharded('discover', all, 3, (b) => discover(s.model, s.dictionaries, b, options), discoveryPartial)).result as DiscoveryResult;
    expect(merged.metricPatch).toBeNull();
    expect(merged.seqLen).toBe(single.seqLen);
    for (const name of single.submodules) close(merged.effects.get(name)!.features, single.effects.get(name)!.features, `${name} features`);
    close(merged.perExample.metricClean, single.perExample.metricClean, 'per-example metric');
    merged.edges.forEach((e, k) => close(e.weight, single.edges[k]!.weight, `edges ${e.upstream} → ${e.downstream}`));
  });

  for (const ablation of [{ kind: 'mean' }, { kind: 'resample', seed: 3 }] as const) {
    it(`evaluate (${ablation.kind} ablation from every batch): per-threshold metrics, faithfulness, completeness`, async () => {
      const all = batches();
      const effects = (await attribute(s.model, s.dictionaries, all, { method: { kind: 'attrib' } })).effects;
      const options = { effects, thresholds: [0.01, 0.1, 1], ablation };
      const single = await evaluate(s.model, s.dictionaries, all, options);
      const parts = await sharded('evaluate', all, 4, (_b, idx) => evaluate(s.model, s.dictionaries, all, { ...options, onlyBatches: idx }), evaluationPartial);
      const merged = mergePartials(parts).result as EvaluationResult;
      expect(merged.numExamples).toBe(40);
      single.rows.forEach((r, t) => {
        const m = merged.rows[t]!;
        expect(m.nodes).toBe(r.nodes);
        close([m.mFull, m.mEmpty, m.mCircuit, m.mComplement, m.faithfulness!, m.completeness!],
          [r.mFull, r.mEmpty, r.mCircuit, r.mComplement, r.faithfulness!, r.completeness!], `threshold ${r.threshold}`);
      });
    });
  }

  it('refuses incomplete, duplicated and mismatched partials, naming the difference', async () => {
    const all = batches().slice(0, 2);
    const options = { method: { kind: 'attrib' } } as const;
    const run = (b: PromptBatch[]) => attribute(s.model, s.dictionaries, b, options);
    const parts = await sharded('attribute', all, 2, run, attributionPartial, { steps: null });
    expect(() => mergePartials([parts[0]!])).toThrow(/missing shard 1 of 2/);
    expect(() => mergePartials([parts[0]!, { ...parts[0]!, source: 'copy.json' }])).toThrow(/part-0.json and copy.json are both shard 0\/2/);
    const other = await sharded('attribute', all, 2, run, attributionPartial, { steps: 10 });
    expect(() => mergePartials([parts[0]!, other[1]!])).toThrow(/part-0.json and part-1.json are partials of different runs: identity steps is null in part-0.json but 10 in part-1.json/);
    const moved = { ...other[1]!, file: { ...parts[1]!.file, meta: { ...META, model: { path: 'pythia-70m' } } } };
    expect(() => mergePartials([parts[0]!, moved])).toThrow(/meta model.path is "small-a" in part-0.json but "pythia-70m"/);
    // The provenance record (content hashes of the model and SAEs) is part of meta: same folder, other weights.
    const hashed = (p: typeof parts[number], hash: string) => ({ ...p, file: { ...p.file, meta: { ...META, model: { path: 'small-a', hash } } } });
    expect(() => mergePartials([hashed(parts[0]!, 'sha256:aa'), hashed(parts[1]!, 'sha256:bb')])).toThrow(/meta model.hash is "sha256:aa" in part-0.json but "sha256:bb"/);
    expect(() => parsePartial(serializePartial({ ...parts[0]!.file, numExamples: 3 }), 'bad.json')).toThrow(/bad.json: numExamples must be 7/);
    const sums = parts[0]!.file.sums as unknown as Record<string, unknown>;
    expect(() => parsePartial(serializePartial({ ...parts[0]!.file, sums: { ...sums, metricClean: [1] } } as PartialFile), 'bad.json'))
      .toThrow(/bad.json: sums.metricClean must have 7 entries, got 1/);
  });
});
