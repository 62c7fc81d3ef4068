// config.json → ModelSpec for the RMSNorm decoders: Gemma 2, Gemma 3 (text), Llama, Mistral,
// Qwen 2, Qwen 3, with transformers' defaults for every key a config may leave out and its
// choice of sliding-window layers. The chains they become are described in docs/architecture.md
// ("The segment contract") and docs/models.md.

import { ConfigError, FormatError } from '../errors.js';
import { showValue } from '../quote.js';
import { checkConfigBounds } from './config-bounds.js';
import { activation, bool, num, posInt, ropeConfig, ropeParams, type Json } from './config-fields.js';
import { ropeContextLength, rotarySpec, type RopeParams } from './rope.js';
import type { Activation, AttentionSegment, LinearSpec, ModelDims, ModelSpec, NormSpec, RmsNormSpec, RotarySpec, SegmentSpec } from './spec.js';

export const DECODER_MODEL_TYPES = ['gemma2', 'gemma3', 'gemma3_text', 'llama', 'mistral', 'qwen2', 'qwen3'] as const;
export type DecoderModelType = typeof DECODER_MODEL_TYPES[number];

export function isDecoderModelType(t: unknown): t is DecoderModelType {
  return (DECODER_MODEL_TYPES as readonly unknown[]).includes(t);
}

/** transformers' defaults (configuration_*.py) for the keys a config.json may omit. */
interface Defaults {
  readonly vocab: number; readonly hidden: number; readonly intermediate: number; readonly layers: number;
  readonly heads: number; readonly kvHeads?: number; readonly headDim?: number; readonly act: string;
  readonly maxPositions: number; readonly tie: boolean; readonly ropeTheta: number;
  /** sliding_window when the key is absent (null when the architecture has none by default). */
  readonly slidingWindow: number | null;
}

const DEFAULTS: Record<DecoderArch, Defaults> = {
  llama: { vocab: 32000, hidden: 4096, intermediate: 11008, layers: 32, heads: 32, act: 'silu', maxPositions: 2048, tie: false, ropeTheta: 10000, slidingWindow: null },
  mistral: { vocab: 32000, hidden: 4096, intermediate: 14336, layers: 32, heads: 32, kvHeads: 8, act: 'silu', maxPositions: 4096 * 32, tie: false, ropeTheta: 10000, slidingWindow: 4096 },
  qwen2: { vocab: 151936, hidden: 4096, intermediate: 22016, layers: 32, heads: 32, kvHeads: 32, act: 'silu', maxPositions: 32768, tie: false, ropeTheta: 10000, slidingWindow: 4096 },
  qwen3: { vocab: 151936, hidden: 4096, intermediate: 22016, layers: 32, heads: 32, kvHeads: 32, headDim: 128, act: 'silu', maxPositions: 32768, tie: false, ropeTheta: 10000, slidingWindow: 4096 },
  gemma2: { vocab: 256000, hidden: 2304, intermediate: 9216, layers: 26, heads: 8, kvHeads: 4, headDim: 256, act: 'gelu_pytorch_tanh', maxPositions: 8192, tie: true, ropeTheta: 10000, slidingWindow: 4096 },
  gemma3: { vocab: 262208, hidden: 2304, intermediate: 9216, layers: 26, heads: 8, kvHeads: 4, headDim: 256, act: 'gelu_pytorch_tanh', maxPositions: 131072, tie: true, ropeTheta: 1_000_000, slidingWindow: 4096 },
};

type DecoderArch = 'gemma2' | 'gemma3' | 'llama' | 'mistral' | 'qwen2' | 'qwen3';

export function decoderSpec(type: DecoderModelType, cfg: Json): ModelSpec {
  let c = cfg;
  if (type === 'gemma3') {
    // The multimodal config: the text model's keys sit in text_config (sfc runs the text model).
    const t = cfg.text_config;
    if (t !== undefined && t !== null) {
      if (typeof t !== 'object' || Array.isArray(t)) throw new FormatError(`config.json: 'text_config' must be an object, got ${showValue(t)}`);
      c = t as Json;
    }
    // The top-level tie_word_embeddings of a gemma3 config applies to the language model.
    if (c.tie_word_embeddings === undefined && cfg.tie_word_embeddings !== undefined) c = { ...c, tie_word_embeddings: cfg.tie_word_embeddings };
  }
  const arch: DecoderArch = type === 'gemma3_text' ? 'gemma3' : type;
  return build(arch, c, DEFAULTS[arch]);
}

const isGemmaArch = (a: DecoderArch) => a === 'gemma2' || a === 'gemma3';

/** Everything a decoder's chain depends on, read from config.json. */
interface DecoderSettings {
  readonly arch: DecoderArch;
  readonly gemma: boolean;
  readonly dims: ModelDims;
  readonly eps: number;
  readonly act: Activation;
  readonly ropes: LayerRopes;
  /** Per layer: does it use the sliding window. */
  readonly sliding: readonly boolean[];
  readonly window?: number;
  readonly attnBias: 'none' | 'qkv' | 'all';
  readonly mlpBias: boolean;
  readonly scale: number;
  readonly attnSoftcap?: number;
  readonly finalSoftcap?: number;
  readonly tie: boolean;
  readonly qkNorm: boolean;
}

function build(arch: DecoderArch, c: Json, def: Defaults): ModelSpec {
  return assemble(readSettings(arch, c, def));
}

function readSettings(arch: DecoderArch, c: Json, def: Defaults): DecoderSettings {
  const gemma = isGemmaArch(arch);
  const d = posInt(c, ['hidden_size'], 'model width', def.hidden);
  const nHeads = posInt(c, ['num_attention_heads'], 'attention heads', def.heads);
  const nKvHeads = posInt(c, ['num_key_value_heads'], 'key/value heads', def.kvHeads ?? nHeads);
  if (nHeads % nKvHeads !== 0) throw new FormatError(`config.json: num_attention_heads ${nHeads} is not a multiple of num_key_value_heads ${nKvHeads}`);
  const headDim = posInt(c, ['head_dim'], 'head width', def.headDim ?? defaultHeadDim(d, nHeads));
  const nLayers = posInt(c, ['num_hidden_layers'], 'layers', def.layers);
  const maxPos = posInt(c, ['max_position_embeddings'], 'context length', def.maxPositions);
  const ropes = layerRopes(arch, c, def, headDim, maxPos); // the parameters; no tables yet
  const dims: ModelDims = {
    dModel: d, nLayers, nHeads, nKvHeads, headDim,
    dMlp: posInt(c, ['intermediate_size'], 'MLP width', def.intermediate),
    vocabSize: posInt(c, ['vocab_size'], 'vocabulary size', def.vocab),
    maxPositions: ropeContextLength(ropes.global.params, maxPos),
  };
  const softcap = (key: string, fallback: number | null): number | undefined => {
    const v = c[key] === undefined ? fallback : c[key];
    if (v === null || v === undefined) return undefined;
    if (typeof v !== 'number' || !(v > 0)) throw new FormatError(`config.json: '${key}' must be a positive number or null, got ${showValue(v)}`);
    return v;
  };
  const window = slidingWindow(arch, c, def);
  const attnSoftcap = softcap('attn_logit_softcapping', arch === 'gemma2' ? 50 : null);
  const finalSoftcap = softcap('final_logit_softcapping', arch === 'gemma2' ? 30 : null);
  const eps = num(c, ['rms_norm_eps'], 'RMSNorm epsilon', 1e-6);
  checkConfigBounds(dims, eps); // before the rotary tables and the layer lists, whose sizes follow it
  return {
    arch, gemma, dims, ropes: withRotaryTables(ropes, maxPos), eps,
    act: activation(c[gemma ? 'hidden_activation' : 'hidden_act'] ?? c.hidden_act ?? def.act),
    sliding: slidingLayers(arch, c, nLayers),
    ...(window !== undefined ? { window } : {}),
    attnBias: arch === 'qwen2' ? 'qkv' : bool(c, 'attention_bias', false) ? 'all' : 'none',
    mlpBias: bool(c, 'mlp_bias', false),
    scale: gemma ? Math.pow(num(c, ['query_pre_attn_scalar'], 'query scale', 256), -0.5) : 1 / Math.sqrt(headDim),
    ...(attnSoftcap !== undefined ? { attnSoftcap } : {}),
    ...(finalSoftcap !== undefined ? { finalSoftcap } : {}),
    tie: bool(c, 'tie_word_embeddings', def.tie),
    qkNorm: arch === 'qwen3' || arch === 'gemma3',
  };
}

/** Canonical weight names and shapes, recorded as the chain names them. */
class ShapeBook {
  readonly shapes = new Map<string, number[]>();
  constructor(private readonly s: DecoderSettings) {}

  rms(name: string, width = this.s.dims.dModel): RmsNormSpec {
    this.shapes.set(`${name}.w`, [width]);
    return { kind: 'rmsnorm', weight: `${name}.w`, eps: this.s.eps, offset: this.s.gemma ? 1 : 0 };
  }

  linear(name: string, rows: number, cols: number, bias: boolean): LinearSpec {
    this.shapes.set(`${name}.w`, [rows, cols]);
    if (bias) this.shapes.set(`${name}.b`, [cols]);
    return { weight: `${name}.w`, ...(bias ? { bias: `${name}.b` } : {}) };
  }
}

function assemble(s: DecoderSettings): ModelSpec {
  const { dims, gemma, tie } = s;
  const book = new ShapeBook(s);
  book.shapes.set('embed.tok', [dims.vocabSize, dims.dModel]);
  const segments: SegmentSpec[] = [{
    kind: 'embed', name: 'embed', inputs: [], tokenEmbedding: 'embed.tok',
    // transformers: hidden * torch.tensor(hidden_size ** 0.5, dtype=hidden.dtype), float32 here.
    ...(gemma ? { scale: Math.fround(Math.sqrt(dims.dModel)) } : {}),
  }];
  let prev = 'embed';
  for (let l = 0; l < dims.nLayers; l++) {
    segments.push(...layerSegments(s, book, l, prev));
    prev = `resid_${l}`;
  }
  // Tied: weights.ts fills unembed.w with the transposed embedding; backends that read it
  // transposed get the spec without the copy (transposedTiedUnembed, applied by Model.load).
  book.shapes.set('unembed.w', [dims.dModel, dims.vocabSize]);
  segments.push({
    kind: 'unembed', name: 'unembed', inputs: [prev], ln: book.rms('final_ln'), weight: { weight: 'unembed.w' },
    ...(s.finalSoftcap !== undefined ? { softcap: s.finalSoftcap } : {}),
  });
  return {
    architecture: s.arch, dims, parallelResidual: false, segments, weightShapes: book.shapes,
    embedSubmodule: !gemma, tiedEmbeddings: tie,
  };
}

/** Layer l, reading `prev`: attention (+ Gemma's projection), MLP and the residual sum. */
function layerSegments(s: DecoderSettings, book: ShapeBook, l: number, prev: string): SegmentSpec[] {
  const { dModel: d, nHeads, nKvHeads, headDim, dMlp: m } = s.dims;
  const p = `l${l}`;
  const rope = s.sliding[l] && s.ropes.local ? s.ropes.local : s.ropes.global;
  const out = book.linear(`${p}.attn_out`, nHeads * headDim, d, s.attnBias === 'all');
  const attn: AttentionSegment = {
    kind: 'attention', name: `attn_${l}`, layer: l, inputs: [prev], ln: book.rms(`${p}.ln1`),
    qkv: book.linear(`${p}.qkv`, d, (nHeads + 2 * nKvHeads) * headDim, s.attnBias !== 'none'),
    ...(s.gemma ? {} : { out }),
    nHeads, nKvHeads, headDim,
    ...(s.qkNorm ? { qNorm: book.rms(`${p}.q_norm`, headDim), kNorm: book.rms(`${p}.k_norm`, headDim) } : {}),
    rotaryDims: s.ropes.rotaryDims, ...(rope.spec ? { rotary: rope.spec } : {}), scale: s.scale,
    ...(s.attnSoftcap !== undefined ? { softcap: s.attnSoftcap } : {}),
    ...(s.sliding[l] && s.window !== undefined ? { slidingWindow: s.window } : {}),
  };
  const segs: SegmentSpec[] = [attn];
  let attnOut = attn.name;
  if (s.gemma) {
    // attn_l is the concatenated heads (hook_z); o_proj and post_attention_layernorm follow.
    attnOut = `${attn.name}.out`;
    segs.push({ kind: 'project', name: attnOut, layer: l, inputs: [attn.name], linear: out, postNorm: book.rms(`${p}.ln_post_attn`) });
  }
  const postNorm: NormSpec | undefined = s.gemma ? book.rms(`${p}.ln_post_mlp`) : undefined;
  segs.push({
    kind: 'mlp', name: `mlp_${l}`, layer: l, inputs: [prev, attnOut], ln: book.rms(`${p}.ln2`),
    gate: book.linear(`${p}.gate`, d, m, s.mlpBias), fcIn: book.linear(`${p}.fc_in`, d, m, s.mlpBias), fcOut: book.linear(`${p}.fc_out`, m, d, s.mlpBias),
    activation: s.act, ...(postNorm ? { postNorm } : {}),
  });
  segs.push({ kind: 'sum', name: `resid_${l}`, layer: l, inputs: [prev, attnOut, `mlp_${l}`] });
  return segs;
}

function defaultHeadDim(d: number, nHeads: number): number {
  if (d % nHeads !== 0) throw new FormatError(`config.json: hidden_size ${d} is not divisible by num_attention_heads ${nHeads} and there is no head_dim`);
  return d / nHeads;
}

/** Which layers use sliding-window attention: `layer_types` when present, else transformers' rule. */
function slidingLayers(arch: DecoderArch, c: Json, nLayers: number): boolean[] {
  const types = c.layer_types;
  if (types !== undefined && types !== null) {
    if (!Array.isArray(types) || types.length !== nLayers || types.some((t) => t !== 'sliding_attention' && t !== 'full_attention')) {
      throw new FormatError(`config.json: 'layer_types' must list 'sliding_attention' or 'full_attention' for each of the ${nLayers} layers`);
    }
    return types.map((t) => t === 'sliding_attention');
  }
  const layers = [...Array(nLayers).keys()];
  switch (arch) {
    case 'gemma2': return layers.map((i) => (i + 1) % 2 !== 0);
    case 'gemma3': {
      const pattern = posInt(c, ['sliding_window_pattern'], 'sliding-window pattern', 6);
      return layers.map((i) => (i + 1) % pattern !== 0);
    }
    case 'mistral': return layers.map(() => true);
    case 'qwen2': case 'qwen3': {
      if (!bool(c, 'use_sliding_window', false)) return layers.map(() => false);
      const from = num(c, ['max_window_layers'], 'first sliding-window layer', 28);
      return layers.map((i) => i >= from);
    }
    case 'llama': return layers.map(() => false);
  }
}

function slidingWindow(arch: DecoderArch, c: Json, def: Defaults): number | undefined {
  if ((arch === 'qwen2' || arch === 'qwen3') && !bool(c, 'use_sliding_window', false)) return undefined;
  const v = c.sliding_window === undefined ? def.slidingWindow : c.sliding_window;
  if (v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new FormatError(`config.json: 'sliding_window' must be a positive integer or null, got ${showValue(v)}`);
  return v;
}

interface LayerRope { readonly params: RopeParams; readonly base: number; readonly spec?: RotarySpec }

/**
 * The rotary of global layers (rope_scaling / rope_parameters, rope_theta) and, for Gemma 3, of
 * sliding layers (default rope at rope_local_base_freq; transformers v5: rope_parameters keyed by
 * layer type).
 */
interface LayerRopes { readonly global: LayerRope; readonly local?: LayerRope; readonly rotaryDims: number }

function layerRopes(arch: DecoderArch, c: Json, def: Defaults, headDim: number, maxPos: number): LayerRopes {
  const byType = c.rope_parameters as Json | undefined;
  const perType = byType !== null && typeof byType === 'object' && !Array.isArray(byType)
    && (typeof byType.full_attention === 'object' || typeof byType.sliding_attention === 'object');
  const dictOf = (key: string): Json => {
    const v = (byType as Json)[key];
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw new FormatError(`config.json: 'rope_parameters.${key}' must be an object`);
    return v as Json;
  };
  const globalRope = perType ? { key: 'rope_parameters.full_attention', dict: dictOf('full_attention') } : ropeConfig(c);
  const factor = num(globalRope.dict, ['partial_rotary_factor'], 'rotary fraction', num(c, ['partial_rotary_factor'], 'rotary fraction', 1));
  if (!(factor > 0 && factor <= 1)) throw new FormatError(`config.json: partial_rotary_factor must be in (0, 1], got ${factor}`);
  const rotaryDims = Math.floor(headDim * factor);
  if (rotaryDims % 2 !== 0) throw new FormatError(`config.json: rotary dims ${rotaryDims} (head_dim × partial_rotary_factor) must be even`);
  const make = (rope: { readonly key: string; readonly dict: Json }, base: number): LayerRope => {
    if (!(base > 1)) throw new FormatError(`config.json: the rotary base (rope_theta) must be > 1, got ${base}`);
    const params = ropeParams(rope, c, maxPos);
    if (params.type === 'dynamic' && rotaryDims <= 2) {
      throw new ConfigError(`config.json: dynamic rope scaling needs more than 2 rotary dims per head, got ${rotaryDims}`, 'use another rope type');
    }
    return { params, base };
  };
  const global = make(globalRope, num(globalRope.dict, ['rope_theta'], 'rotary base', num(c, ['rope_theta'], 'rotary base', def.ropeTheta)));
  if (arch !== 'gemma3') return { global, rotaryDims };
  const localRope = perType ? { key: 'rope_parameters.sliding_attention', dict: dictOf('sliding_attention') } : { key: 'rope_local_base_freq', dict: {} };
  const localBase = num(localRope.dict, ['rope_theta'], 'local rotary base', num(c, ['rope_local_base_freq'], 'local rotary base', 10000));
  return { global, local: make(localRope, localBase), rotaryDims };
}

/** `ropes` with their rotary tables (sized by the head width: built after checkConfigBounds). */
function withRotaryTables(ropes: LayerRopes, maxPos: number): LayerRopes {
  const tables = (r: LayerRope): LayerRope => ({ ...r, spec: rotarySpec(r.params, ropes.rotaryDims, r.base, maxPos) });
  return { ...ropes, global: tables(ropes.global), ...(ropes.local ? { local: tables(ropes.local) } : {}) };
}
