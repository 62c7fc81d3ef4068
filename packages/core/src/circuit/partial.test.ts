import { describe, expect, it } from 'vitest';
import { firstDifference, parsePartial, parseShard, shardBatchIndices } from './partial.js';

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

  it('parsing refuses files that are not partials, naming the field', () => {
    const base = { schema: 'sfc.partial/v1', kind: 'discover', shard: { index: 1, count: 2 }, identity: {}, meta: {}, batchSizes: [3, 3, 2], batches: [1], numExamples: 3, sums: null };
    expect(() => parsePartial('{', 'p.json')).toThrow(/p.json is not valid JSON/);
    expect(() => parsePartial(JSON.stringify({ ...base, schema: 'sfc.circuit/v1' }), 'p.json')).toThrow(/p.json: schema must be "sfc.partial\/v1"/);
    expect(() => parsePartial(JSON.stringify({ ...base, batches: [0] }), 'p.json')).toThrow(/batches must be 1 for shard 1\/2 of 3 batches/);
    expect(() => parsePartial(JSON.stringify(base), 'p.json')).toThrow(/sums is missing/);
    expect(() => parsePartial(JSON.stringify({ ...base, shard: { index: 2, count: 2 } }), 'p.json')).toThrow(/shard.index must be < shard.count/);
  });
});
