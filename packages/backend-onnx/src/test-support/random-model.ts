// Small random models for tests: a Hugging Face config → core's spec + canonical weights.

import { parseModelConfig, type ModelSpec, type WeightStore, type WeightTensor } from '@sfc/core';
import { randn } from './reference-math.js';

export function randomModel(config: Record<string, unknown>, seed = 1): { spec: ModelSpec; weights: WeightStore } {
  const spec = parseModelConfig(config);
  const weights = new Map<string, WeightTensor>();
  let k = seed * 1000;
  for (const [name, shape] of spec.weightShapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isLnWeight = /ln\d?\.w$|ln_post_(attn|mlp)\.w$|[qk]_norm\.w$|final_ln\.w$/.test(name);
    const r = randn(k++, n, isLnWeight ? 0.2 : 0.5);
    weights.set(name, { shape, data: Float32Array.from(r, (x) => (isLnWeight ? 1 + x : x)) });
  }
  return { spec, weights };
}

export const TINY_CONFIGS: Record<string, Record<string, unknown>> = {
  'neox parallel, rotary 1/2': {
    model_type: 'gpt_neox', hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 1, intermediate_size: 12,
    vocab_size: 11, max_position_embeddings: 16, rotary_pct: 0.5, rotary_emb_base: 100, use_parallel_residual: true, hidden_act: 'gelu',
  },
  'neox sequential, full rotary': {
    model_type: 'gpt_neox', hidden_size: 8, num_attention_heads: 2, num_hidden_layers: 1, intermediate_size: 12,
    vocab_size: 11, max_position_embeddings: 16, rotary_pct: 1, use_parallel_residual: false, hidden_act: 'gelu', layer_norm_eps: 1e-3,
  },
  'gpt2, gelu_new, learned positions': {
    model_type: 'gpt2', n_embd: 8, n_head: 2, n_layer: 1, n_inner: 12, vocab_size: 11, n_positions: 16, activation_function: 'gelu_new',
  },
  'gpt2, relu, scaled by layer': {
    model_type: 'gpt2', n_embd: 8, n_head: 4, n_layer: 2, n_inner: 12, vocab_size: 11, n_positions: 16, activation_function: 'relu',
    scale_attn_by_inverse_layer_idx: true,
  },
  // The RMSNorm decoders: grouped-query attention, head_dim ≠ d / heads, q/k norms, qkv bias,
  // sliding windows shorter than the test sequence, soft-caps small enough to bend the logits.
  'llama, GQA 4/2, llama3 rope': {
    model_type: 'llama', hidden_size: 8, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 1, intermediate_size: 12,
    vocab_size: 11, max_position_embeddings: 16, rope_theta: 100,
    rope_scaling: { rope_type: 'llama3', factor: 2, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8 },
  },
  'mistral, sliding window 2, MQA': {
    model_type: 'mistral', hidden_size: 8, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 6, num_hidden_layers: 1,
    intermediate_size: 12, vocab_size: 11, max_position_embeddings: 16, sliding_window: 2, rope_theta: 100,
  },
  'qwen2, qkv bias': {
    model_type: 'qwen2', hidden_size: 8, num_attention_heads: 2, num_key_value_heads: 1, num_hidden_layers: 1, intermediate_size: 12,
    vocab_size: 11, max_position_embeddings: 16, rope_theta: 100, tie_word_embeddings: true,
  },
  'qwen3, q/k norm, head_dim 6': {
    model_type: 'qwen3', hidden_size: 8, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 6, num_hidden_layers: 1,
    intermediate_size: 12, vocab_size: 11, max_position_embeddings: 16, rope_theta: 100,
  },
  'gemma2, soft-caps, sliding window 3, z submodule': {
    model_type: 'gemma2', hidden_size: 8, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 6, num_hidden_layers: 2,
    intermediate_size: 12, vocab_size: 11, max_position_embeddings: 16, sliding_window: 3, query_pre_attn_scalar: 5,
    attn_logit_softcapping: 1.5, final_logit_softcapping: 2, rope_theta: 100,
  },
  'gemma3, local/global rope, q/k norm': {
    model_type: 'gemma3_text', hidden_size: 8, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 6, num_hidden_layers: 2,
    intermediate_size: 12, vocab_size: 11, max_position_embeddings: 16, sliding_window: 2, sliding_window_pattern: 2,
    query_pre_attn_scalar: 6, rope_theta: 1000, rope_local_base_freq: 100, rope_scaling: { rope_type: 'linear', factor: 2 },
  },
};
