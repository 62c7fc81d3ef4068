import { describe, expect, it } from 'vitest';
import { encodeSafetensors } from '../formats/safetensors.js';
import { firstDifference, parsePartial, parseShard, serializePartial, shardBatchIndices, type PartialFile } from './partial.js';

describe('shards', () => {
  it('parses i/n and refuses anything else', () => {
    expect(parseShard('2/8')).toEqual({ index: 2, count: 8 });
    expect(parseShard(' 0 / 1 ')).toEqual({ index: 0, count: 1 });
    for (const bad of ['8/8', '1/0', '-1/3', '1', 'a/b', '1/2/3', '1.5/3']) expect(() => parseShard(bad), bad).toThrow(/--shard/);
  });

  it('shard i of n runs batches b ≡ i (mod n): every batch exactly once', () => {
    expect(shardBatchIndices(10, { index: 1, count: 4 })).toEqual([1, 5, 9]);
    expect(shardBatchIndices(2, { index: 3, count: 4 })).toEqual([]);
    const all = [0, 1, 2].flatMap((index) => shardBatchIndices(11, { index, count: 3 })).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 11 }, (_, i) => i));
  });

  it('names the first difference between two JSON values', () => {
    expect(firstDifference({ a: 1, b: [1, 2] }, { a: 1, b: [1, 2] })).toBeUndefined();
    expect(firstDifference({ a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [1, 3] } })).toEqual({ path: 'b.c[1]', a: 2, b: 3 });
    expect(firstDifference({ a: 1 }, { a: 1, z: null })).toEqual({ path: 'z', a: undefined, b: null });
  });

  it('round-trips through its safetensors container; parsing refuses files that are not partials, naming the field', () => {
    const base = { schema: 'sfc.partial/v1', kind: 'discover', shard: { index: 1, count: 2 }, identity: {}, meta: {}, batchSizes: [3, 3, 2], batches: [1], numExamples: 3, sums: null };
    const file = (o: object) => serializePartial(o as PartialFile);
    expect(parsePartial(file({ ...base, batches: [], numExamples: 0, shard: { index: 1, count: 4 }, batchSizes: [3] }), 'p')).toMatchObject({ numExamples: 0, sums: null });
    expect(() => parsePartial(new TextEncoder().encode('{"schema": "sfc.partial/v1"}'), 'p.json')).toThrow(/p.json is not an sfc partial file/);
    expect(() => parsePartial(encodeSafetensors(new Map(), { other: '{}' }), 'p.st')).toThrow(/without "sfc.partial" metadata/);
    expect(() => parsePartial(file({ ...base, schema: 'sfc.circuit/v1' }), 'p.json')).toThrow(/p.json: schema must be "sfc.partial\/v1"/);
    expect(() => parsePartial(file({ ...base, batches: [0] }), 'p.json')).toThrow(/batches must be 1 for shard 1\/2 of 3 batches/);
    expect(() => parsePartial(file(base), 'p.json')).toThrow(/sums is missing/);
    expect(() => parsePartial(file({ ...base, shard: { index: 2, count: 2 } }), 'p.json')).toThrow(/shard.index must be < shard.count/);
  });

  it('keeps edge lists as typed arrays and refuses unsorted ones', () => {
    const edge = { upstream: 'resid_0', downstream: 'resid_1', positions: null, downNodes: 4, upNodes: 4, down: Int32Array.of(0, 2, 1), up: Int32Array.of(1, 0, 3), weight: Float64Array.of(0.5, 1e-300, -2), rows: Int32Array.of(0, 1, 2) };
    const sums = {
      method: 'ig', steps: 2, aggregation: 'sum', seqLen: 3, submodules: ['resid_0'], metric: 'logit-diff',
      effects: { resid_0: { dSae: 3, positions: null, features: { idx: Int32Array.of(2), val: Float64Array.of(0.25) }, error: Float64Array.of(1) } },
      exampleIndex: [0], metricClean: [1.5], metricPatch: [2.5], nodeThreshold: 0.1, nodesOnly: false, edges: [edge], downstreamNodes: { resid_0: 1 },
    };
    const base = { schema: 'sfc.partial/v1', kind: 'discover', shard: { index: 0, count: 1 }, identity: {}, meta: {}, batchSizes: [1], batches: [0], numExamples: 1 };
    expect(() => parsePartial(serializePartial({ ...base, sums } as unknown as PartialFile), 'p')).toThrow(/p: sums.edges\[0\] must be sorted by \(down, up\)/);
    const sorted = { ...edge, down: Int32Array.of(0, 1, 2), up: Int32Array.of(1, 3, 0) };
    // As readFile may return it: a Buffer viewing a larger buffer at an odd offset.
    const bytes = serializePartial({ ...base, sums: { ...sums, edges: [sorted] } } as unknown as PartialFile);
    const view = Buffer.concat([Buffer.alloc(3, 7), bytes]).subarray(3);
    const back = parsePartial(view, 'p');
    const e = (back.sums as unknown as { edges: typeof edge[] }).edges[0]!;
    expect(e.weight).toBeInstanceOf(Float64Array);
    expect(Array.from(e.weight)).toEqual([0.5, 1e-300, -2]);
    expect(Array.from(e.up)).toEqual([1, 3, 0]);
  });
});
