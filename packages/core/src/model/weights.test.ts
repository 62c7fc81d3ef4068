// Checkpoint → canonical weights for GPT-NeoX with attention_bias false (fixtures/models/neox-nobias):
// no q/k/v or dense biases are read or expected, and a checkpoint that has them anyway reports
// them as unused instead of silently adding them.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.js';
import { SafetensorsFile } from '../formats/safetensors.js';
import { parseModelConfig } from './config.js';
import { canonicalWeights, neoxQkv, safetensorsSource, type TensorSource } from './weights.js';

const DIR = fileURLToPath(new URL('../../../../fixtures/models/neox-nobias', import.meta.url));
const config = JSON.parse(readFileSync(`${DIR}/config.json`, 'utf8')) as Record<string, unknown>;
const file = SafetensorsFile.parse(readFileSync(`${DIR}/model.safetensors`));

/** `src` plus extra tensors. */
function withExtra(src: TensorSource, extra: Record<string, { shape: number[]; data: Float32Array }>): TensorSource {
  return {
    has: (n) => n in extra || src.has(n),
    shape: (n) => extra[n]?.shape ?? src.shape(n),
    get: (n) => extra[n]?.data ?? src.get(n),
    names: () => [...src.names(), ...Object.keys(extra)],
  };
}

describe('canonicalWeights: attention_bias false', () => {
  it('loads a checkpoint without attention biases; every tensor is used', () => {
    expect(config.attention_bias).toBe(false);
    const spec = parseModelConfig(config);
    const src = safetensorsSource(file);
    expect(src.names().some((n) => n.endsWith('attention.dense.bias') || n.endsWith('query_key_value.bias'))).toBe(false);
    const { store, unused } = canonicalWeights(spec, src);
    expect(unused).toEqual([]);
    expect([...store.keys()].sort()).toEqual([...spec.weightShapes.keys()].sort());
    expect(store.has('l0.qkv.b') || store.has('l0.attn_out.b')).toBe(false);
  });

  it('reports attention biases the config says are absent as unused', () => {
    const spec = parseModelConfig(config);
    const d = 32;
    const extra = { 'gpt_neox.layers.0.attention.dense.bias': { shape: [d], data: new Float32Array(d).fill(1) } };
    const { store, unused } = canonicalWeights(spec, withExtra(safetensorsSource(file), extra));
    expect(unused).toEqual(['gpt_neox.layers.0.attention.dense.bias']);
    expect(store.has('l0.attn_out.b')).toBe(false);
  });

  it('with attention_bias true the same checkpoint misses its biases (FormatError)', () => {
    const spec = parseModelConfig({ ...config, attention_bias: true });
    expect(() => canonicalWeights(spec, safetensorsSource(file))).toThrow(FormatError);
  });

  it('neoxQkv permutes the weight alone when there is no bias', () => {
    const w = Float32Array.from({ length: 3 * 4 * 4 }, (_, i) => i);
    const withBias = neoxQkv(w, Float32Array.from({ length: 12 }, (_, i) => i), 2, 2);
    const without = neoxQkv(w, undefined, 2, 2);
    expect(without.b).toBeUndefined();
    expect(Array.from(without.w)).toEqual(Array.from(withBias.w));
  });
});

describe('canonicalWeights: tied and untied unembedding (issue 16)', () => {
  /** The checkpoint without embed_out. */
  const withoutHead = (src: TensorSource): TensorSource => ({
    has: (n) => n !== 'embed_out.weight' && src.has(n),
    shape: (n) => src.shape(n),
    get: (n) => src.get(n),
    names: () => src.names().filter((n) => n !== 'embed_out.weight'),
  });

  it('refuses a missing embed_out when config.json has tie_word_embeddings false', () => {
    expect(config.tie_word_embeddings).toBe(false);
    expect(() => canonicalWeights(parseModelConfig(config), withoutHead(safetensorsSource(file))))
      .toThrow(/missing tensor 'embed_out.weight' \(config.json has tie_word_embeddings false/);
    const { tie_word_embeddings: _, ...unset } = config;
    expect(() => canonicalWeights(parseModelConfig(unset), withoutHead(safetensorsSource(file)))).toThrow(FormatError);
  });

  it('ties the unembedding to embed_in when config.json says so', () => {
    const src = withoutHead(safetensorsSource(file));
    const { store } = canonicalWeights(parseModelConfig({ ...config, tie_word_embeddings: true }), src);
    const [V, d] = src.shape('gpt_neox.embed_in.weight') as [number, number];
    const emb = src.get('gpt_neox.embed_in.weight');
    expect(store.get('unembed.w')!.data[1 * V + 3]).toBe(emb[3 * d + 1]);
  });
});
