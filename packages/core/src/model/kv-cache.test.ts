// LayerKvCache bookkeeping on a two-layer spec: lengths, entry release, the checks each cached
// call passes, a forward racing another, ownership and disposal; left padding (options, per-row
// positions, key mask, rotary tables).

import { describe, expect, it } from 'vitest';
import { InputError, ShapeError } from '../errors.js';
import { parseModelConfig } from './config.js';
import { LayerKvCache, paddedKeyMask, paddedPositions } from './kv-cache.js';
import { paddedRotaryTables, rotaryTables } from './rope.js';

const spec = parseModelConfig({ model_type: 'gpt_neox', hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 2, intermediate_size: 16, vocab_size: 10, max_position_embeddings: 12, rotary_pct: 0.5 });

function make(maxLength = 6, batch = 1) {
  const released: string[] = [];
  const disposed: unknown[] = [];
  const owner = {};
  const cache = LayerKvCache.create<string>(owner, spec, { batch, maxLength }, (e) => released.push(e), (c) => disposed.push(c));
  return { cache, owner, released, disposed };
}

describe('LayerKvCache', () => {
  it('length is what every attention segment holds; replaced entries are released, reused ones not', () => {
    const { cache, released } = make();
    expect(cache.length).toBe(0);
    expect(cache.begin('attn_0', 1, 0, 3)).toEqual({ entry: undefined, length: 0 });
    cache.commit('attn_0', 0, 3, () => 'a0');
    expect(cache.length).toBe(0); // attn_1 holds nothing yet
    cache.commit('attn_1', 0, 3, () => 'b0');
    expect(cache.length).toBe(3);
    expect(cache.begin('attn_0', 1, 3, 1)).toEqual({ entry: 'a0', length: 3 });
    cache.commit('attn_0', 3, 4, () => 'a1');
    cache.commit('attn_1', 3, 4, (prev) => prev!);
    expect(cache.length).toBe(4);
    expect(released).toEqual(['a0']);
  });

  it('each call is checked: start position, batch, room; a racing forward is refused', () => {
    const { cache } = make(4);
    cache.commit('attn_0', 0, 2, () => 'a');
    expect(() => cache.begin('attn_0', 1, 1, 1)).toThrow(/holds 2 positions, but the forward starts at position 1/);
    expect(() => cache.begin('attn_0', 2, 2, 1)).toThrow(ShapeError);
    expect(() => cache.begin('attn_0', 1, 2, 3)).toThrow(/at most 4 positions/);
    expect(() => cache.begin('mlp_0', 1, 2, 1)).toThrow(/internal/);
    // Two forwards began at 2; the second to commit finds the segment changed.
    cache.begin('attn_0', 1, 2, 1);
    cache.commit('attn_0', 2, 3, () => 'b');
    expect(() => cache.commit('attn_0', 2, 3, () => 'c')).toThrow(/changed during the forward/);
  });

  it('belongs to its owner; options are checked; dispose releases every entry once', () => {
    const { cache, owner, released, disposed } = make();
    expect(LayerKvCache.of(cache, owner)).toBe(cache);
    expect(() => LayerKvCache.of(cache, {})).toThrow(InputError);
    expect(() => LayerKvCache.of({ batch: 1, maxLength: 2, length: 0, isDisposed: false, dispose() {} }, owner)).toThrow(/another model/);
    expect(() => LayerKvCache.create({}, spec, { batch: 1, maxLength: 13 }, () => undefined)).toThrow(/exceeds the model's 12 positions/);
    expect(() => LayerKvCache.create({}, spec, { batch: 0, maxLength: 2 }, () => undefined)).toThrow(InputError);
    cache.commit('attn_0', 0, 1, () => 'x');
    cache.commit('attn_1', 0, 1, () => 'y');
    cache.dispose();
    cache.dispose();
    expect([released, disposed.length, cache.isDisposed, cache.length]).toEqual([['x', 'y'], 1, true, 0]);
    expect(() => cache.begin('attn_0', 1, 0, 1)).toThrow(/disposed/);
    expect(() => cache.commit('attn_0', 0, 1, () => 'z')).toThrow(/disposed/);
  });
});

describe('left-padded KV caches', () => {
  const owner = {};
  const create = (padding: readonly number[], batch = padding.length) => LayerKvCache.create<string>(owner, spec, { batch, maxLength: 6, padding }, () => undefined);

  it('padding is one count per row in 0…maxLength−1; all zeros is the unpadded cache', () => {
    expect(create([2, 0, 1]).padding).toEqual([2, 0, 1]);
    expect(create([0, 0]).padding).toBeUndefined();
    expect(() => create([1], 2)).toThrow(ShapeError);
    for (const bad of [[6, 0], [-1, 0], [0.5, 0]]) expect(() => create(bad)).toThrow(InputError);
  });

  it('slot t of row r is position t − padding[r] (pads clamped to 0); pad slots are masked keys', () => {
    expect([...paddedPositions([2, 0], 0, 4)]).toEqual([0, 0, 0, 1, 0, 1, 2, 3]);
    expect([...paddedPositions([2, 0], 4, 1)]).toEqual([2, 4]);
    expect([...paddedKeyMask([2, 0, 5], 4)]).toEqual([0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
  });

  it('rotary tables per row are those of the row alone, at its own positions', () => {
    const rotary = spec.segments.find((s) => s.kind === 'attention' && s.rotary)!;
    if (rotary.kind !== 'attention' || !rotary.rotary) throw new Error('no rotary');
    const r = rotary.rotaryDims, padding = [3, 0];
    const { cos, sin } = paddedRotaryTables(rotary.rotary, padding, 4, 2);
    padding.forEach((p, row) => {
      const alone = rotaryTables(rotary.rotary!, 4 - p, 2);
      expect([...cos.subarray(row * 2 * r, (row + 1) * 2 * r)]).toEqual([...alone.cos]);
      expect([...sin.subarray(row * 2 * r, (row + 1) * 2 * r)]).toEqual([...alone.sin]);
    });
  });
});
