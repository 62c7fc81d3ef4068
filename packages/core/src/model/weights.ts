// Checkpoint tensors (Hugging Face names and layouts) → canonical weights (see spec.ts).
// One pass, validated against the spec's shapes. fp16/bf16 are upcast by the safetensors reader,
// except that with `keep16` a decoder's 16-bit tensors stay 16-bit where that is exact
// (half-weights.ts): the words are transposed and fused as they are, then converted.

import type { StoredWeight, WeightStore } from '../backend.js';
import { FormatError, ShapeError } from '../errors.js';
import { quoteName } from '../quote.js';
import { bf16ToF32, f16ToF32, type SafetensorsFile } from '../formats/safetensors.js';
import type { RawTensor } from './checkpoint.js';
import { storedWeight } from './half-weights.js';
import { transpose } from './transpose.js';
import type { AttentionSegment, ModelSpec } from './spec.js';

export { transpose };

export interface TensorSource {
  has(name: string): boolean;
  shape(name: string): readonly number[];
  get(name: string): Float32Array;
  names(): string[];
  /** The tensor as stored (F32, BF16, F16 words), for `keep16`; absent: `get` is used. */
  getRaw?(name: string): RawTensor;
}

export interface CanonicalWeightOptions {
  /**
   * Keep BF16/F16 tensors of GPT-NeoX, Llama-family and Gemma checkpoints in 16 bits
   * (HalfWeightTensor) where exact; others are widened to float32. GPT-2 weights are always float32.
   */
  readonly keep16?: boolean;
  /** Called before a BF16 tensor fp16 cannot hold exactly is widened to float32 instead (keep16). */
  readonly beforeWiden?: (name: string, bytes: number) => void;
  /** With keep16: store 16-bit linear weights transposed (Backend capabilities.halfWeightsTransposed). */
  readonly transposeLinears?: boolean;
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

export function canonicalWeights(spec: ModelSpec, src: TensorSource, source = 'model.safetensors', options: CanonicalWeightOptions = {}): LoadedWeights {
  if (spec.architecture === 'gpt2') return gpt2Weights(spec, src, source);
  if (spec.architecture === 'gpt_neox') return neoxWeights(spec, src, source, options);
  return decoderWeights(spec, src, source, options);
}

/** The first of `prefixes` under which `name` is in the checkpoint, or a FormatError. */
function modulePrefix(spec: ModelSpec, src: TensorSource, source: string, prefixes: readonly string[], name: string): string {
  const prefix = prefixes.find((p) => src.has(`${p}${name}`));
  if (prefix === undefined) {
    throw new FormatError(`${source}: no token embedding (${prefixes[0]}${name})`,
      `is this a ${spec.architecture} checkpoint? tensors found: ${src.names().slice(0, 12).map((n) => quoteName(n)).join(', ')}`);
  }
  return prefix;
}

/**
 * GPT-NeoX (Pythia): q/k/v un-interleaved per head into qkv, every linear [in, out]. With keep16
 * its 16-bit tensors stay 16-bit, and linears are held as the checkpoint has them when asked
 * (transposeLinears), as for the other decoders.
 */
function neoxWeights(spec: ModelSpec, src: TensorSource, source: string, options: CanonicalWeightOptions): LoadedWeights {
  const io = weightIo(spec, src, source, options);
  const { readRaw: read, putRaw: put, putLinear, done } = io;
  const { dModel: d, nHeads, headDim, nLayers, vocabSize: V, dMlp: m } = spec.dims;
  const prefix = modulePrefix(spec, src, source, ['gpt_neox.', ''], 'embed_in.weight');
  const g = (n: string) => `${prefix}${n}`;
  // attention_bias false (config.json): the spec has no q/k/v and dense biases, nor has the checkpoint.
  const attention = spec.segments.filter((s): s is AttentionSegment => s.kind === 'attention');
  const embed = read(g('embed_in.weight'), [V, d]);
  put('embed.tok', embed, tiedHeadCopy(spec));
  const order = neoxQkvRows(nHeads, headDim);
  for (let l = 0; l < nLayers; l++) {
    const L = g(`layers.${l}.`);
    put(`l${l}.ln1.w`, read(`${L}input_layernorm.weight`, [d]));
    put(`l${l}.ln1.b`, read(`${L}input_layernorm.bias`, [d]));
    put(`l${l}.ln2.w`, read(`${L}post_attention_layernorm.weight`, [d]));
    put(`l${l}.ln2.b`, read(`${L}post_attention_layernorm.bias`, [d]));
    const { qkv, out } = attention[l]!;
    putLinear(qkv.weight, takeRows(read(`${L}attention.query_key_value.weight`, [3 * d, d]), order, d));
    if (qkv.bias) put(qkv.bias, takeRows(read(`${L}attention.query_key_value.bias`, [3 * d]), order, 1));
    putLinear(out!.weight, read(`${L}attention.dense.weight`, [d, d]));
    if (out!.bias) put(out!.bias, read(`${L}attention.dense.bias`, [d]));
    putLinear(`l${l}.fc_in.w`, read(`${L}mlp.dense_h_to_4h.weight`, [m, d]));
    put(`l${l}.fc_in.b`, read(`${L}mlp.dense_h_to_4h.bias`, [m]));
    putLinear(`l${l}.fc_out.w`, read(`${L}mlp.dense_4h_to_h.weight`, [d, m]));
    put(`l${l}.fc_out.b`, read(`${L}mlp.dense_4h_to_h.bias`, [d]));
  }
  put('final_ln.w', read(g('final_layer_norm.weight'), [d]));
  put('final_ln.b', read(g('final_layer_norm.bias'), [d]));
  unembedding(spec, src, io, embed, ['embed_out.weight'], source);
  return done();
}

/** GPT-2: Conv1D weights are already [in, out]; the unembedding is the transposed wte. Always float32. */
function gpt2Weights(spec: ModelSpec, src: TensorSource, source: string): LoadedWeights {
  const io = weightIo(spec, src, source, {});
  const { read, put, used, done } = io;
  const { dModel: d, nLayers, vocabSize: V, maxPositions: P, dMlp: m } = spec.dims;
  const prefix = modulePrefix(spec, src, source, ['transformer.', ''], 'wte.weight');
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
  return done();
}

/**
 * NeoX fuses q, k, v per head: checkpoint row (h, t, i) = h·3·hd + t·hd + i with t ∈ {q, k, v}.
 * The canonical order is t·d + h·hd + i (q | k | v, head-major): entry c is the checkpoint row of
 * canonical row c of the [3d, d] matrix (column c of the canonical [d, 3d]).
 */
function neoxQkvRows(nHeads: number, headDim: number): Int32Array {
  const d = nHeads * headDim;
  const order = new Int32Array(3 * d);
  for (let h = 0; h < nHeads; h++) for (let t = 0; t < 3; t++) for (let i = 0; i < headDim; i++) order[t * d + h * headDim + i] = h * 3 * headDim + t * headDim + i;
  return order;
}

/** Rows `order` of a raw [rows, width] tensor, in that order (words as they are). */
function takeRows(raw: RawTensor, order: Int32Array, width: number): RawTensor {
  const take = <A extends Float32Array | Uint16Array>(a: A): A => {
    const out = new (a.constructor as { new (n: number): A })(order.length * width);
    order.forEach((r, i) => out.set(a.subarray(r * width, (r + 1) * width), i * width));
    return out;
  };
  return raw.dtype === 'F32' ? { dtype: 'F32', data: take(raw.data) } : { dtype: raw.dtype, data: take(raw.data) };
}

/** Reads checked tensors from a source and stores canonical ones checked against the spec. */
function weightIo(spec: ModelSpec, src: TensorSource, source: string, options: CanonicalWeightOptions) {
  const keep16 = !!options.keep16;
  const out = new Map<string, StoredWeight>();
  const used = new Set<string>();
  const check = (name: string, expect: readonly number[]): void => {
    if (!src.has(name)) throw new FormatError(`${source}: missing tensor '${name}'`, 'the weights do not match config.json; use the model folder as saved by transformers');
    const shape = src.shape(name);
    if (shape.length !== expect.length || shape.some((x, i) => x !== expect[i])) {
      throw new ShapeError(`${source}: tensor '${name}' has shape [${shape.join(', ')}] but config.json implies [${expect.join(', ')}]`,
        'config.json and model.safetensors come from different models');
    }
    used.add(name);
  };
  const read = (name: string, expect: readonly number[]): Float32Array => {
    check(name, expect);
    return src.get(name);
  };
  const readRaw = (name: string, expect: readonly number[]): RawTensor => {
    check(name, expect);
    return keep16 && src.getRaw ? src.getRaw(name) : { dtype: 'F32', data: src.get(name) };
  };
  const shapeOf = (name: string): readonly number[] => {
    const shape = spec.weightShapes.get(name);
    if (!shape) throw new Error(`internal: no canonical weight '${name}'`);
    return shape;
  };
  const put = (name: string, data: Float32Array) => { out.set(name, { shape: shapeOf(name), data }); };
  // A raw tensor handed to putLinear/putRaw is the store's from then on: its BF16 words are
  // converted in place (half-weights.ts), so loading leaves no second copy of the model behind.
  // `reread`: the caller still reads the raw words afterwards (a tied head made from the embedding).
  /** `hf`: the [out, in] weight of a linear map as the checkpoint stores it (canonical: its transpose). */
  const putLinear = (name: string, hf: RawTensor) => {
    const shape = shapeOf(name);
    if (hf.dtype === 'F32' || !options.transposeLinears) { putRaw(name, transposeRaw(hf, shape[1]!, shape[0]!)); return; }
    out.set(name, storedWeight(shape, hf.dtype, hf.data, (bytes) => options.beforeWiden?.(name, bytes), { transposed: true, inPlace: true }));
  };
  const putRaw = (name: string, raw: RawTensor, reread = false) => {
    out.set(name, raw.dtype === 'F32' ? { shape: shapeOf(name), data: raw.data }
      : storedWeight(shapeOf(name), raw.dtype, raw.data, (bytes) => options.beforeWiden?.(name, bytes), { inPlace: !reread }));
  };
  const done = (): LoadedWeights => ({ store: out, unused: src.names().filter((n) => !used.has(n) && !IGNORED.some((re) => re.test(n))) });
  return { read, readRaw, put, putRaw, putLinear, used, done };
}

/** [rows, cols] → [cols, rows] of a raw tensor, words as they are. */
function transposeRaw(raw: RawTensor, rows: number, cols: number): RawTensor {
  return raw.dtype === 'F32' ? { dtype: 'F32', data: transpose(raw.data, rows, cols) } : { dtype: raw.dtype, data: transpose(raw.data, rows, cols) };
}

function widenRaw(raw: RawTensor): Float32Array {
  return raw.dtype === 'F32' ? raw.data : raw.dtype === 'BF16' ? bf16ToF32(raw.data) : f16ToF32(raw.data);
}

/** Raw tensors concatenated (flat): their words when all share one 16-bit dtype, else widened to float32. */
function concatRaw(parts: readonly RawTensor[]): RawTensor {
  const n = parts.reduce((a, p) => a + p.data.length, 0);
  const first = parts[0]!.dtype;
  if (first !== 'F32' && parts.every((p) => p.dtype === first)) {
    const data = new Uint16Array(n);
    let o = 0;
    for (const p of parts) { data.set(p.data as Uint16Array, o); o += p.data.length; }
    return { dtype: first, data };
  }
  const data = new Float32Array(n);
  let o = 0;
  for (const p of parts) { data.set(widenRaw(p), o); o += p.data.length; }
  return { dtype: 'F32', data };
}

/**
 * Where a decoder's modules sit: `model.` (…ForCausalLM), Gemma 3's multimodal
 * `model.language_model.` (transformers ≥ 4.52) or `language_model.model.` (earlier), or no prefix
 * (a bare …Model); the output head is `lm_head` or `language_model.lm_head`.
 */
const DECODER_PREFIXES = ['model.', 'model.language_model.', 'language_model.model.', ''];

/** Llama family and Gemma: q/k/v fused into qkv, every linear transposed to [in, out]. */
function decoderWeights(spec: ModelSpec, src: TensorSource, source: string, options: CanonicalWeightOptions): LoadedWeights {
  const io = weightIo(spec, src, source, options);
  const { readRaw: read, putRaw: put, used, done } = io;
  const { dModel: d, nHeads: H, headDim: hd, nLayers, vocabSize: V, dMlp: m } = spec.dims;
  const prefix = DECODER_PREFIXES.find((p) => src.has(`${p}embed_tokens.weight`));
  if (prefix === undefined) {
    throw new FormatError(`${source}: no token embedding (model.embed_tokens.weight)`,
      `is this a ${spec.architecture} checkpoint? tensors found: ${src.names().slice(0, 12).map((n) => quoteName(n)).join(', ')}`);
  }
  const gemma = spec.architecture === 'gemma2' || spec.architecture === 'gemma3';
  const embed = read(`${prefix}embed_tokens.weight`, [V, d]);
  put('embed.tok', embed, tiedHeadCopy(spec));
  const attention = spec.segments.filter((s): s is AttentionSegment => s.kind === 'attention');
  const optional = (name: string | undefined, hf: string, shape: readonly number[]) => { if (name) put(name, read(hf, shape)); };
  const linear = (w: string, b: string | undefined, hf: string, rows: number, cols: number) => {
    io.putLinear(w, read(`${hf}.weight`, [rows, cols]));
    optional(b, `${hf}.bias`, [rows]);
  };
  for (let l = 0; l < nLayers; l++) {
    const L = `${prefix}layers.${l}.`, p = `l${l}`;
    const seg = attention[l]!;
    put(`${p}.ln1.w`, read(`${L}input_layernorm.weight`, [d]));
    fusedQkv(io, seg, `${L}self_attn.`, spec.dims);
    optional(seg.qNorm?.weight, `${L}self_attn.q_norm.weight`, [hd]);
    optional(seg.kNorm?.weight, `${L}self_attn.k_norm.weight`, [hd]);
    linear(`${p}.attn_out.w`, spec.weightShapes.has(`${p}.attn_out.b`) ? `${p}.attn_out.b` : undefined, `${L}self_attn.o_proj`, d, H * hd);
    if (gemma) {
      put(`${p}.ln_post_attn.w`, read(`${L}post_attention_layernorm.weight`, [d]));
      put(`${p}.ln2.w`, read(`${L}pre_feedforward_layernorm.weight`, [d]));
      put(`${p}.ln_post_mlp.w`, read(`${L}post_feedforward_layernorm.weight`, [d]));
    } else {
      put(`${p}.ln2.w`, read(`${L}post_attention_layernorm.weight`, [d]));
    }
    const bias = (n: string) => (spec.weightShapes.has(`${p}.${n}.b`) ? `${p}.${n}.b` : undefined);
    linear(`${p}.gate.w`, bias('gate'), `${L}mlp.gate_proj`, m, d);
    linear(`${p}.fc_in.w`, bias('fc_in'), `${L}mlp.up_proj`, m, d);
    linear(`${p}.fc_out.w`, bias('fc_out'), `${L}mlp.down_proj`, d, m);
  }
  put('final_ln.w', read(`${prefix}norm.weight`, [d]));
  unembedding(spec, src, io, embed, ['lm_head.weight', 'language_model.lm_head.weight'], source);
  return done();
}

/** Whether unembedding() builds the head from the embedding's raw words (so they must stay as read). */
function tiedHeadCopy(spec: ModelSpec): boolean {
  return !!spec.tiedEmbeddings && spec.weightShapes.has('unembed.w');
}

/**
 * The output head `unembed.w` [d, V]. Tied (spec.tiedEmbeddings, config.json's
 * tie_word_embeddings): transformers uses the token embedding whatever a stored head holds, so it
 * is a transposed copy of `embed`, or nothing when the spec reads embed.tok transposed
 * (transposedTiedUnembed). Untied: the checkpoint must hold the head (the first of `heads` found).
 */
function unembedding(spec: ModelSpec, src: TensorSource, io: Pick<ReturnType<typeof weightIo>, 'readRaw' | 'putRaw' | 'putLinear' | 'used'>,
  embed: RawTensor, heads: readonly string[], source: string): void {
  const { vocabSize: V, dModel: d } = spec.dims;
  const head = heads.find((n) => src.has(n));
  if (spec.tiedEmbeddings) {
    if (head) io.used.add(head);
    if (spec.weightShapes.has('unembed.w')) io.putRaw('unembed.w', transposeRaw(embed, V, d));
    return;
  }
  if (!head) {
    throw new FormatError(`${source}: missing tensor ${quoteName(heads[0]!)} (config.json has tie_word_embeddings false, so the unembedding is not the token embedding)`,
      'use the weights saved with this config.json, or set "tie_word_embeddings": true if the model really shares them');
  }
  io.putLinear('unembed.w', io.readRaw(head, [V, d]));
}

/**
 * q_proj | k_proj | v_proj ([heads·hd, d] each, HF rows = outputs) → the canonical fused qkv
 * [d, (H + 2·Hkv)·hd] (columns q | k | v), and their biases concatenated the same way (Qwen 2).
 */
function fusedQkv(io: WeightIo, seg: AttentionSegment, at: string, dims: ModelSpec['dims']): void {
  const { dModel: d, nHeads: H, nKvHeads: Hkv, headDim: hd } = dims;
  const parts = [['q_proj', H], ['k_proj', Hkv], ['v_proj', Hkv]] as const;
  const width = (H + 2 * Hkv) * hd;
  io.putLinear(seg.qkv.weight, concatRaw(parts.map(([n, heads]) => io.readRaw(`${at}${n}.weight`, [heads * hd, d]))));
  if (!seg.qkv.bias) return;
  io.putRaw(seg.qkv.bias, concatRaw(parts.map(([n, heads]) => io.readRaw(`${at}${n}.bias`, [heads * hd]))));
}

type WeightIo = ReturnType<typeof weightIo>;


/** NeoX's fused q/k/v weight [3d, d] (and bias) → the canonical qkv [d, 3d] (neoxQkvRows, transposed). */
export function neoxQkv<B extends Float32Array | undefined>(w: Float32Array, b: B, nHeads: number, headDim: number): { w: Float32Array; b: B } {
  const d = nHeads * headDim;
  const order = neoxQkvRows(nHeads, headDim);
  const rows = takeRows({ dtype: 'F32', data: w }, order, d).data as Float32Array;
  return { w: transpose(rows, 3 * d, d), b: (b ? takeRows({ dtype: 'F32', data: b }, order, 1).data : undefined) as B };
}
