// Checkpoint tensors (Hugging Face names and layouts) → canonical weights (see spec.ts).
// One pass, validated against the spec's shapes; fp16/bf16 are upcast by the safetensors reader.

import type { WeightStore, WeightTensor } from '../backend.js';
import { FormatError, ShapeError } from '../errors.js';
import type { SafetensorsFile } from '../formats/safetensors.js';
import type { AttentionSegment, ModelSpec } from './spec.js';

export interface TensorSource {
  has(name: string): boolean;
  shape(name: string): readonly number[];
  get(name: string): Float32Array;
  names(): string[];
}

export function safetensorsSource(file: SafetensorsFile): TensorSource {
  return {
    has: (n) => file.has(n),
    shape: (n) => file.entries.get(n)!.shape,
    get: (n) => file.getFloat32(n),
    names: () => [...file.entries.keys()],
  };
}

/** Buffers that transformers keeps in checkpoints but that are not weights. */
const IGNORED = [/\.attention\.bias$/, /\.attention\.masked_bias$/, /\.rotary_emb\.inv_freq$/, /\.attn\.bias$/, /\.attn\.masked_bias$/];

export interface LoadedWeights { readonly store: WeightStore; readonly unused: readonly string[] }

export function canonicalWeights(spec: ModelSpec, src: TensorSource, source = 'model.safetensors'): LoadedWeights {
  const out = new Map<string, WeightTensor>();
  const used = new Set<string>();
  const { dModel: d, nHeads, headDim, nLayers } = spec.dims;
  const prefixes = spec.architecture === 'gpt2' ? ['transformer.', ''] : ['gpt_neox.', ''];
  const prefix = prefixes.find((p) => src.has(`${p}${spec.architecture === 'gpt2' ? 'wte' : 'embed_in'}.weight`));
  if (prefix === undefined) {
    throw new FormatError(`${source}: no token embedding (${spec.architecture === 'gpt2' ? 'transformer.wte.weight' : 'gpt_neox.embed_in.weight'})`,
      `is this a ${spec.architecture} checkpoint? tensors found: ${src.names().slice(0, 12).join(', ')}`);
  }
  const read = (name: string, expect: readonly number[]): Float32Array => {
    if (!src.has(name)) throw new FormatError(`${source}: missing tensor '${name}'`, 'the weights do not match config.json; use the model folder as saved by transformers');
    const shape = src.shape(name);
    if (shape.length !== expect.length || shape.some((x, i) => x !== expect[i])) {
      throw new ShapeError(`${source}: tensor '${name}' has shape [${shape.join(', ')}] but config.json implies [${expect.join(', ')}]`,
        'config.json and model.safetensors come from different models');
    }
    used.add(name);
    return src.get(name);
  };
  const put = (name: string, data: Float32Array) => {
    const shape = spec.weightShapes.get(name);
    if (!shape) throw new Error(`internal: no canonical weight '${name}'`);
    out.set(name, { shape, data });
  };
  const { vocabSize: V, maxPositions: P, dMlp: m } = spec.dims;

  if (spec.architecture === 'gpt_neox') {
    const g = (n: string) => `${prefix}${n}`;
    // attention_bias false (config.json): the spec has no q/k/v and dense biases, nor has the checkpoint.
    const attention = spec.segments.filter((s): s is AttentionSegment => s.kind === 'attention');
    put('embed.tok', read(g('embed_in.weight'), [V, d]));
    for (let l = 0; l < nLayers; l++) {
      const L = g(`layers.${l}.`);
      put(`l${l}.ln1.w`, read(`${L}input_layernorm.weight`, [d]));
      put(`l${l}.ln1.b`, read(`${L}input_layernorm.bias`, [d]));
      put(`l${l}.ln2.w`, read(`${L}post_attention_layernorm.weight`, [d]));
      put(`l${l}.ln2.b`, read(`${L}post_attention_layernorm.bias`, [d]));
      const { qkv, out } = attention[l]!;
      const { w, b } = neoxQkv(read(`${L}attention.query_key_value.weight`, [3 * d, d]),
        qkv.bias ? read(`${L}attention.query_key_value.bias`, [3 * d]) : undefined, nHeads, headDim);
      put(qkv.weight, w);
      if (qkv.bias) put(qkv.bias, b!);
      put(out.weight, transpose(read(`${L}attention.dense.weight`, [d, d]), d, d));
      if (out.bias) put(out.bias, read(`${L}attention.dense.bias`, [d]));
      put(`l${l}.fc_in.w`, transpose(read(`${L}mlp.dense_h_to_4h.weight`, [m, d]), m, d));
      put(`l${l}.fc_in.b`, read(`${L}mlp.dense_h_to_4h.bias`, [m]));
      put(`l${l}.fc_out.w`, transpose(read(`${L}mlp.dense_4h_to_h.weight`, [d, m]), d, m));
      put(`l${l}.fc_out.b`, read(`${L}mlp.dense_4h_to_h.bias`, [d]));
    }
    put('final_ln.w', read(g('final_layer_norm.weight'), [d]));
    put('final_ln.b', read(g('final_layer_norm.bias'), [d]));
    // Tied only when config.json says so (tie_word_embeddings, false by default for GPT-NeoX).
    if (!src.has('embed_out.weight') && spec.tieWordEmbeddings === false) {
      throw new FormatError(`${source}: missing tensor 'embed_out.weight' (config.json has tie_word_embeddings false, so the unembedding is not embed_in)`,
        'use the model.safetensors saved with this config.json, or set "tie_word_embeddings": true if the model really shares them');
    }
    const head = src.has('embed_out.weight') ? 'embed_out.weight' : g('embed_in.weight');
    put('unembed.w', transpose(read(head, [V, d]), V, d));
  } else {
    const g = (n: string) => `${prefix}${n}`;
    const wte = read(g('wte.weight'), [V, d]);
    put('embed.tok', wte);
    put('embed.pos', read(g('wpe.weight'), [P, d]));
    for (let l = 0; l < nLayers; l++) {
      const L = g(`h.${l}.`);
      put(`l${l}.ln1.w`, read(`${L}ln_1.weight`, [d]));
      put(`l${l}.ln1.b`, read(`${L}ln_1.bias`, [d]));
      put(`l${l}.ln2.w`, read(`${L}ln_2.weight`, [d]));
      put(`l${l}.ln2.b`, read(`${L}ln_2.bias`, [d]));
      put(`l${l}.qkv.w`, read(`${L}attn.c_attn.weight`, [d, 3 * d]));
      put(`l${l}.qkv.b`, read(`${L}attn.c_attn.bias`, [3 * d]));
      put(`l${l}.attn_out.w`, read(`${L}attn.c_proj.weight`, [d, d]));
      put(`l${l}.attn_out.b`, read(`${L}attn.c_proj.bias`, [d]));
      put(`l${l}.fc_in.w`, read(`${L}mlp.c_fc.weight`, [d, m]));
      put(`l${l}.fc_in.b`, read(`${L}mlp.c_fc.bias`, [m]));
      put(`l${l}.fc_out.w`, read(`${L}mlp.c_proj.weight`, [m, d]));
      put(`l${l}.fc_out.b`, read(`${L}mlp.c_proj.bias`, [d]));
    }
    put('final_ln.w', read(g('ln_f.weight'), [d]));
    put('final_ln.b', read(g('ln_f.bias'), [d]));
    // Tied: lm_head.weight, when present, equals wte; either way logits = x @ wteᵀ.
    if (src.has('lm_head.weight')) used.add('lm_head.weight');
    put('unembed.w', transpose(wte, V, d));
  }
  const unused = src.names().filter((n) => !used.has(n) && !IGNORED.some((re) => re.test(n)));
  return { store: out, unused };
}

/** [rows, cols] → [cols, rows]. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  const B = 32; // blocked for cache locality on big matrices
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[j * rows + i] = a[i * cols + j]!;
    }
  }
  return out;
}

/**
 * NeoX fuses q, k, v per head: output row (h, t, i) = h·3·hd + t·hd + i with t ∈ {q, k, v}.
 * Canonical: column t·d + h·hd + i of a [d, 3d] matrix. `b` is absent for attention_bias false.
 */
export function neoxQkv<B extends Float32Array | undefined>(w: Float32Array, b: B, nHeads: number, headDim: number): { w: Float32Array; b: B } {
  const d = nHeads * headDim;
  const perm = new Int32Array(3 * d); // canonical column → checkpoint row
  for (let h = 0; h < nHeads; h++) for (let t = 0; t < 3; t++) for (let i = 0; i < headDim; i++) perm[t * d + h * headDim + i] = h * 3 * headDim + t * headDim + i;
  const outW = new Float32Array(d * 3 * d);
  const outB = b ? new Float32Array(3 * d) : undefined;
  for (let c = 0; c < 3 * d; c++) {
    const r = perm[c]!;
    if (outB) outB[c] = b![r]!;
    for (let k = 0; k < d; k++) outW[k * 3 * d + c] = w[r * d + k]!;
  }
  return { w: outW, b: outB as B };
}
