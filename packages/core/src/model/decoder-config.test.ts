// config.json → spec for Gemma 2/3 and the Llama family: transformers' defaults, which layers
// slide, per-layer rope (Gemma 3 local/global, transformers v5 rope_parameters by layer type), the
// chain each architecture becomes, and typed errors for bad values.

import { describe, expect, it } from 'vitest';
import { ConfigError, FormatError } from '../errors.js';
import { parseModelConfig } from './config.js';
import { transposedTiedUnembed, withEmbedSubmodule } from './spec.js';
import type { AttentionSegment, EmbedSegment, MlpSegment, ModelSpec, ProjectSegment, ScaleSegment, UnembedSegment } from './spec.js';

const base = { hidden_size: 32, num_attention_heads: 4, num_hidden_layers: 4, intermediate_size: 64, vocab_size: 100 };
const attn = (s: ModelSpec) => s.segments.filter((x): x is AttentionSegment => x.kind === 'attention');
const windows = (s: ModelSpec) => attn(s).map((a) => a.slidingWindow ?? null);
const unembed = (s: ModelSpec) => s.segments[s.segments.length - 1] as UnembedSegment;

describe('decoder configs', () => {
  it('llama: RMSNorm (w), SwiGLU, GQA, head_dim^-1/2, untied by default, full rotary', () => {
    const s = parseModelConfig({ model_type: 'llama', ...base, num_key_value_heads: 2 });
    expect(s.segments.map((x) => x.name).slice(0, 5)).toEqual(['embed', 'attn_0', 'mlp_0', 'resid_0', 'attn_1']);
    const a = attn(s)[0]!;
    expect(a).toMatchObject({ nHeads: 4, nKvHeads: 2, headDim: 8, rotaryDims: 8, scale: 1 / Math.sqrt(8) });
    expect(a.ln).toEqual({ kind: 'rmsnorm', weight: 'l0.ln1.w', eps: 1e-6, offset: 0 });
    expect(a.out).toBeDefined();
    expect(a.qkv.bias).toBeUndefined();
    expect(s.weightShapes.get('l0.qkv.w')).toEqual([32, (4 + 2 * 2) * 8]);
    const m = s.segments[2] as MlpSegment;
    expect(m).toMatchObject({ activation: 'silu', inputs: ['embed', 'attn_0'] });
    expect(m.gate).toBeDefined();
    expect(s.tiedEmbeddings).toBe(false);
    expect(s.embedSubmodule).toBe(true);
    expect((s.segments[0] as EmbedSegment).scale).toBeUndefined();
    expect(windows(s)).toEqual([null, null, null, null]);
  });

  it('llama: rope_theta and llama3 scaling (v4 rope_scaling and v5 rope_parameters alike)', () => {
    const rope = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 256 };
    const v4 = parseModelConfig({ model_type: 'llama', ...base, rope_theta: 500000, max_position_embeddings: 2048, rope_scaling: rope });
    const v5 = parseModelConfig({ model_type: 'llama', ...base, max_position_embeddings: 2048, rope_parameters: { ...rope, rope_theta: 500000 } });
    expect(attn(v4)[0]!.rotary!.type).toBe('llama3');
    expect([...attn(v4)[0]!.rotary!.invFreq]).toEqual([...attn(v5)[0]!.rotary!.invFreq]);
    expect(v4.dims.maxPositions).toBe(2048);
  });

  it('mistral: sliding window on every layer (default 4096; null: none), defaults 8 kv heads', () => {
    expect(windows(parseModelConfig({ model_type: 'mistral', ...base, num_key_value_heads: 2, sliding_window: 7 }))).toEqual([7, 7, 7, 7]);
    expect(windows(parseModelConfig({ model_type: 'mistral', ...base, num_key_value_heads: 2, sliding_window: null }))).toEqual([null, null, null, null]);
    expect(windows(parseModelConfig({ model_type: 'mistral', ...base, num_key_value_heads: 2 }))).toEqual([4096, 4096, 4096, 4096]);
    expect(() => parseModelConfig({ model_type: 'mistral', ...base })).toThrow(/multiple of num_key_value_heads 8/);
  });

  it('qwen2: q/k/v biases, no o_proj bias; sliding window only with use_sliding_window, from max_window_layers on', () => {
    const s = parseModelConfig({ model_type: 'qwen2', ...base, num_key_value_heads: 4 });
    expect(attn(s)[0]!.qkv.bias).toBe('l0.qkv.b');
    expect(attn(s)[0]!.out!.bias).toBeUndefined();
    expect(windows(s)).toEqual([null, null, null, null]);
    const w = parseModelConfig({ model_type: 'qwen2', ...base, num_key_value_heads: 4, use_sliding_window: true, sliding_window: 5, max_window_layers: 2 });
    expect(windows(w)).toEqual([null, null, 5, 5]);
  });

  it('qwen3: per-head q/k norms, head_dim default 128', () => {
    const s = parseModelConfig({ model_type: 'qwen3', ...base, num_key_value_heads: 2 });
    const a = attn(s)[0]!;
    expect(a.headDim).toBe(128);
    expect(a.qNorm).toEqual({ kind: 'rmsnorm', weight: 'l0.q_norm.w', eps: 1e-6, offset: 0 });
    expect(s.weightShapes.get('l0.k_norm.w')).toEqual([128]);
  });

  it('gemma2: (1 + w) norms, embed scale, z as attn_l with a project segment, soft-caps, even layers slide', () => {
    const s = parseModelConfig({ model_type: 'gemma2', ...base, num_key_value_heads: 2, head_dim: 12, query_pre_attn_scalar: 16, sliding_window: 5 });
    expect(s.embedSubmodule).toBe(false);
    expect(s.tiedEmbeddings).toBe(true);
    expect((s.segments[0] as EmbedSegment).scale).toBe(Math.fround(Math.sqrt(32)));
    expect(s.segments.map((x) => x.name).slice(0, 6)).toEqual(['embed', 'attn_0', 'attn_0.out', 'mlp_0', 'resid_0', 'attn_1']);
    const a = attn(s)[0]!;
    expect(a.out).toBeUndefined();
    expect(a).toMatchObject({ scale: 0.25, softcap: 50, headDim: 12 });
    expect((a.ln as { offset: number }).offset).toBe(1);
    const p = s.segments[2] as ProjectSegment;
    expect(p).toMatchObject({ kind: 'project', inputs: ['attn_0'], linear: { weight: 'l0.attn_out.w' }, postNorm: { weight: 'l0.ln_post_attn.w', offset: 1 } });
    expect(s.weightShapes.get('l0.attn_out.w')).toEqual([48, 32]);
    const m = s.segments[3] as MlpSegment;
    expect(m).toMatchObject({ inputs: ['embed', 'attn_0.out'], activation: 'gelu_new', postNorm: { weight: 'l0.ln_post_mlp.w' } });
    expect(s.segments[4]!.inputs).toEqual(['embed', 'attn_0.out', 'mlp_0']);
    expect(unembed(s).softcap).toBe(30);
    expect(windows(s)).toEqual([5, null, 5, null]);
    const off = parseModelConfig({ model_type: 'gemma2', ...base, num_key_value_heads: 2, attn_logit_softcapping: null, final_logit_softcapping: null });
    expect(attn(off)[0]!.softcap).toBeUndefined();
    expect(unembed(off).softcap).toBeUndefined();
  });

  it('withEmbedSubmodule: Gemma 2\'s embed is embed_tokens\' output, scaled by √d in `embed.out` that layer 0 reads', () => {
    const s = parseModelConfig({ model_type: 'gemma2', ...base, num_key_value_heads: 2, head_dim: 12 });
    const e = withEmbedSubmodule(s);
    expect(e.embedSubmodule).toBe(true);
    expect((e.segments[0] as EmbedSegment).scale).toBeUndefined();
    expect(e.segments[1] as ScaleSegment).toEqual({ kind: 'scale', name: 'embed.out', inputs: ['embed'], factor: Math.fround(Math.sqrt(32)) });
    expect(e.segments.map((x) => x.name).slice(0, 7)).toEqual(['embed', 'embed.out', 'attn_0', 'attn_0.out', 'mlp_0', 'resid_0', 'attn_1']);
    expect(e.segments.filter((x) => x.inputs.includes('embed')).map((x) => x.name)).toEqual(['embed.out']);
    expect(e.segments.filter((x) => x.inputs.includes('embed.out')).map((x) => x.name)).toEqual(['attn_0', 'mlp_0', 'resid_0']);
    // Everything else is the default chain's, untouched; the default chain keeps the scale in embed.
    expect(e.segments.slice(2)).toEqual(s.segments.slice(1).map((x) => (x.inputs.includes('embed') ? { ...x, inputs: x.inputs.map((n) => (n === 'embed' ? 'embed.out' : n)) } : x)));
    expect(e.weightShapes).toBe(s.weightShapes);
    expect(withEmbedSubmodule(e)).toBe(e);
    // Tying reads the embedding table whatever segment scales it.
    expect(unembed(transposedTiedUnembed(e))).toMatchObject({ weight: { weight: 'embed.tok' }, transposed: true });
  });

  it('withEmbedSubmodule: Gemma 3\'s embed_tokens scales itself, so embed is the scaled embedding and the chain is unchanged; others have embed already', () => {
    const g3 = parseModelConfig({ model_type: 'gemma3_text', ...base, num_key_value_heads: 2, head_dim: 8 });
    const e = withEmbedSubmodule(g3);
    expect(e.embedSubmodule).toBe(true);
    expect(e.segments).toBe(g3.segments);
    expect((e.segments[0] as EmbedSegment).scale).toBe(Math.fround(Math.sqrt(32)));
    const llama = parseModelConfig({ model_type: 'llama', ...base });
    expect(withEmbedSubmodule(llama)).toBe(llama);
  });

  it('gemma2: layer_types wins over the alternating rule', () => {
    const types = ['full_attention', 'sliding_attention', 'sliding_attention', 'full_attention'];
    expect(windows(parseModelConfig({ model_type: 'gemma2', ...base, num_key_value_heads: 2, sliding_window: 3, layer_types: types }))).toEqual([null, 3, 3, null]);
    expect(() => parseModelConfig({ model_type: 'gemma2', ...base, num_key_value_heads: 2, layer_types: ['x'] })).toThrow(FormatError);
  });

  it('gemma3: q/k norms, no soft-caps, sliding_window_pattern, local rope base for sliding layers', () => {
    const s = parseModelConfig({
      model_type: 'gemma3_text', ...base, num_key_value_heads: 1, head_dim: 8, sliding_window: 3, sliding_window_pattern: 2,
      rope_theta: 1e6, rope_local_base_freq: 100, rope_scaling: { rope_type: 'linear', factor: 4 },
    });
    const a = attn(s);
    expect(windows(s)).toEqual([3, null, 3, null]);
    expect(a[0]!.softcap).toBeUndefined();
    expect(unembed(s).softcap).toBeUndefined();
    expect(a[0]!.qNorm).toMatchObject({ offset: 1, weight: 'l0.q_norm.w' });
    expect(a[0]!.rotary!.type).toBe('default');
    expect(a[0]!.rotary!.invFreq[1]).toBeCloseTo(1 / 100 ** (2 / 8), 6);
    expect(a[1]!.rotary!.type).toBe('linear');
    expect(a[1]!.rotary!.invFreq[1]).toBeCloseTo(1 / 1e6 ** (2 / 8) / 4, 8);
    expect(s.architecture).toBe('gemma3');
  });

  it('gemma3: the multimodal config reads text_config; v5 rope_parameters by layer type', () => {
    const text = { ...base, num_key_value_heads: 1, head_dim: 8, sliding_window_pattern: 2 };
    const s = parseModelConfig({ model_type: 'gemma3', text_config: text, vision_config: {} });
    expect(s.dims).toMatchObject({ dModel: 32, nLayers: 4, nKvHeads: 1 });
    const v5 = parseModelConfig({
      model_type: 'gemma3_text', ...text,
      rope_parameters: { full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1e6 }, sliding_attention: { rope_type: 'default', rope_theta: 1e4 } },
    });
    expect(attn(v5)[0]!.rotary!.invFreq[1]).toBeCloseTo(1 / 1e4 ** (2 / 8), 6);
    expect(attn(v5)[1]!.rotary!.type).toBe('linear');
  });

  it('refuses bad values with typed errors naming the key', () => {
    expect(() => parseModelConfig({ model_type: 'llama', ...base, hidden_size: 30 })).toThrow(/no head_dim/);
    expect(() => parseModelConfig({ model_type: 'gemma2', ...base, num_key_value_heads: 2, final_logit_softcapping: 0 })).toThrow(/final_logit_softcapping/);
    expect(() => parseModelConfig({ model_type: 'mistral', ...base, num_key_value_heads: 2, sliding_window: 2.5 })).toThrow(/sliding_window/);
    expect(() => parseModelConfig({ model_type: 'llama', ...base, hidden_act: 'mish' })).toThrow(ConfigError);
    expect(() => parseModelConfig({ model_type: 'llama', ...base, rope_scaling: { rope_type: 'longrope' } })).toThrow(ConfigError);
    expect(() => parseModelConfig({ model_type: 'gemma3', text_config: 3 })).toThrow(FormatError);
  });

  // Parameters: a tied unembedding read from the embedding is not counted twice.
  const params = (s: ModelSpec) => [...transposedTiedUnembed(s).weightShapes.values()].reduce((n, sh) => n + sh.reduce((a, b) => a * b, 1), 0);

  it('google/gemma-2-2b config.json: 2,614,341,888 parameters, windows on even layers, caps 50 / 30, scale 1/16', () => {
    const s = parseModelConfig({
      architectures: ['Gemma2ForCausalLM'], attention_bias: false, attention_dropout: 0.0, attn_logit_softcapping: 50.0, bos_token_id: 2,
      cache_implementation: 'hybrid', eos_token_id: 1, final_logit_softcapping: 30.0, head_dim: 256, hidden_act: 'gelu_pytorch_tanh',
      hidden_activation: 'gelu_pytorch_tanh', hidden_size: 2304, initializer_range: 0.02, intermediate_size: 9216, max_position_embeddings: 8192,
      model_type: 'gemma2', num_attention_heads: 8, num_hidden_layers: 26, num_key_value_heads: 4, pad_token_id: 0, query_pre_attn_scalar: 256,
      rms_norm_eps: 1e-06, rope_theta: 10000.0, sliding_window: 4096, torch_dtype: 'float32', use_cache: true, vocab_size: 256000,
    });
    expect(params(s)).toBe(2_614_341_888);
    expect(windows(s).slice(0, 4)).toEqual([4096, null, 4096, null]);
    expect(attn(s)[0]).toMatchObject({ scale: 1 / 16, softcap: 50, nKvHeads: 4, headDim: 256 });
    expect(unembed(s).softcap).toBe(30);
    expect(s.dims.maxPositions).toBe(8192);
  });

  it('meta-llama/Llama-3.2-1B config.json: 1,235,814,400 parameters (tied), llama3 rope', () => {
    const s = parseModelConfig({
      architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: 128000, eos_token_id: 128001, head_dim: 64,
      hidden_act: 'silu', hidden_size: 2048, initializer_range: 0.02, intermediate_size: 8192, max_position_embeddings: 131072, mlp_bias: false,
      model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 16, num_key_value_heads: 8, pretraining_tp: 1, rms_norm_eps: 1e-05,
      rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
      rope_theta: 500000.0, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_cache: true, vocab_size: 128256,
    });
    expect(params(s)).toBe(1_235_814_400);
    expect(s.tiedEmbeddings).toBe(true);
    expect(attn(s)[0]!.rotary!.type).toBe('llama3');
    expect(windows(s).every((w) => w === null)).toBe(true);
  });
});

