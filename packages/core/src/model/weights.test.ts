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
import { transposedTiedUnembed } from './spec.js';

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

const fixture = (name: string) => {
  const dir = fileURLToPath(new URL(`../../../../fixtures/models/${name}`, import.meta.url));
  return { spec: parseModelConfig(JSON.parse(readFileSync(`${dir}/config.json`, 'utf8'))), src: safetensorsSource(SafetensorsFile.parse(readFileSync(`${dir}/model.safetensors`))) };
};

/** `src` with every name mapped by `rename` (and only the names it keeps). */
function renamed(src: TensorSource, rename: (n: string) => string | undefined): TensorSource {
  const back = new Map(src.names().flatMap((n) => { const r = rename(n); return r === undefined ? [] : [[r, n] as const]; }));
  return { has: (n) => back.has(n), shape: (n) => src.shape(back.get(n)!), get: (n) => src.get(back.get(n)!), names: () => [...back.keys()] };
}

describe('canonicalWeights: Gemma and the Llama family', () => {
  it('fuses q | k | v (GQA widths) into [d, (H + 2·Hkv)·hd] and transposes every linear; every tensor is used', () => {
    const { spec, src } = fixture('qwen2-a');
    const { store, unused } = canonicalWeights(spec, src);
    expect(unused).toEqual([]);
    const { dModel: d, nHeads: H, nKvHeads: Hkv, headDim: hd } = spec.dims;
    const qkv = store.get('l1.qkv.w')!.data, cols = (H + 2 * Hkv) * hd;
    const k = src.get('model.layers.1.self_attn.k_proj.weight'); // [Hkv·hd, d]
    // Column H·hd + r of the fused weight is row r of k_proj.
    for (const [r, i] of [[0, 0], [5, 3], [Hkv * hd - 1, d - 1]] as const) expect(qkv[i * cols + H * hd + r]).toBe(k[r * d + i]);
    const bias = store.get('l1.qkv.b')!.data;
    expect(bias.slice(H * hd + Hkv * hd)).toEqual(src.get('model.layers.1.self_attn.v_proj.bias'));
  });

  it('Gemma 3 multimodal prefixes (model.language_model., language_model.model.) load the same weights; vision tensors are unused', () => {
    const { spec, src } = fixture('gemma3-a');
    const plain = canonicalWeights(spec, src).store;
    for (const prefix of ['model.language_model.', 'language_model.model.']) {
      const src2 = withExtra(renamed(src, (n) => n.replace(/^model\./, prefix)), { 'vision_tower.x.weight': { shape: [2], data: new Float32Array(2) } });
      const { store, unused } = canonicalWeights(spec, src2);
      expect(unused).toEqual(['vision_tower.x.weight']);
      for (const [name, w] of plain) expect(store.get(name)!.data, name).toEqual(w.data);
    }
  });

  it('untied heads need lm_head.weight; tied ones use the embedding even when lm_head is stored', () => {
    const llama = fixture('llama-a');
    expect(() => canonicalWeights(llama.spec, renamed(llama.src, (n) => (n === 'lm_head.weight' ? undefined : n)))).toThrow(/lm_head.weight/);
    const gemma = fixture('gemma2-a');
    const V = gemma.spec.dims.vocabSize, d = gemma.spec.dims.dModel;
    const { store, unused } = canonicalWeights(gemma.spec, withExtra(gemma.src, { 'lm_head.weight': { shape: [V, d], data: new Float32Array(V * d) } }));
    expect(unused).toEqual([]);
    const emb = gemma.src.get('model.embed_tokens.weight');
    expect(store.get('unembed.w')!.data[1 * V + 7]).toBe(emb[7 * d + 1]);
  });

  it('for a backend with transposedUnembed, a tied spec reads embed.tok transposed: no copy in the store', () => {
    const { spec, src } = fixture('qwen2-a');
    const t = transposedTiedUnembed(spec);
    expect(t.segments[t.segments.length - 1]).toMatchObject({ kind: 'unembed', weight: { weight: 'embed.tok' }, transposed: true });
    expect(t.weightShapes.has('unembed.w')).toBe(false);
    expect(spec.weightShapes.has('unembed.w')).toBe(true); // the parsed spec is unchanged
    const { store, unused } = canonicalWeights(t, src);
    expect(store.has('unembed.w')).toBe(false);
    expect(unused).toEqual([]);
    const llama = fixture('llama-a').spec; // untied: returned as it is
    expect(transposedTiedUnembed(llama)).toBe(llama);
  });

  it('names the missing tensor (Gemma post-norms) and a wrong shape', () => {
    const { spec, src } = fixture('gemma2-a');
    expect(() => canonicalWeights(spec, renamed(src, (n) => (n.endsWith('layers.1.post_feedforward_layernorm.weight') ? undefined : n))))
      .toThrow(/model.layers.1.post_feedforward_layernorm.weight/);
    const other = fixture('llama-a');
    expect(() => canonicalWeights(spec, other.src)).toThrow();
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

  it('tied: a stored embed_out is ignored (transformers ties it to embed_in), and not reported unused', () => {
    const src = safetensorsSource(file);
    expect(src.has('embed_out.weight')).toBe(true);
    const spec = parseModelConfig({ ...config, tie_word_embeddings: true });
    expect(spec.tiedEmbeddings).toBe(true);
    const { store, unused } = canonicalWeights(spec, src);
    const [V, d] = src.shape('gpt_neox.embed_in.weight') as [number, number];
    expect(store.get('unembed.w')!.data[2 * V + 5]).toBe(src.get('gpt_neox.embed_in.weight')[5 * d + 2]);
    expect(unused).not.toContain('embed_out.weight');
    // A backend reading the embedding transposed gets no copy (the same path as the tied decoders).
    expect(canonicalWeights(transposedTiedUnembed(spec), src).store.has('unembed.w')).toBe(false);
  });
});
