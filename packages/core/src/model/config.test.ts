import { describe, expect, it } from 'vitest';
import { parseModelConfig } from './config.js';
import { ConfigError, FormatError } from '../errors.js';
import type { AttentionSegment, MlpSegment } from './spec.js';

const neox = { model_type: 'gpt_neox', hidden_size: 32, num_attention_heads: 4, num_hidden_layers: 2, intermediate_size: 128, vocab_size: 64, rotary_pct: 0.5 };

describe('parseModelConfig', () => {
  it('builds the NeoX chain (parallel by default)', () => {
    const s = parseModelConfig(neox);
    expect(s.segments.map((x) => x.name)).toEqual(['embed', 'attn_0', 'mlp_0', 'resid_0', 'attn_1', 'mlp_1', 'resid_1', 'unembed']);
    const attn = s.segments[1] as AttentionSegment;
    expect(attn.rotaryDims).toBe(4);
    expect(attn.scale).toBeCloseTo(1 / Math.sqrt(8));
    expect((s.segments[2] as MlpSegment).inputs).toEqual(['embed']);
    expect(s.segments[3]!.inputs).toEqual(['embed', 'attn_0', 'mlp_0']);
  });
  it('sequential NeoX feeds attn into mlp; defaults rotary 0.25', () => {
    const s = parseModelConfig({ ...neox, use_parallel_residual: false, rotary_pct: undefined });
    expect((s.segments[2] as MlpSegment).inputs).toEqual(['embed', 'attn_0']);
    expect((s.segments[1] as AttentionSegment).rotaryDims).toBe(2);
  });
  it('reads transformers v5 rope_parameters', () => {
    const s = parseModelConfig({ ...neox, rotary_pct: undefined, rope_parameters: { partial_rotary_factor: 1, rope_theta: 500 } });
    expect((s.segments[1] as AttentionSegment).rotaryDims).toBe(8);
    expect((s.segments[1] as AttentionSegment).rotaryBase).toBe(500);
  });
  it('GPT-2: positions, gelu_new, inverse-layer scaling', () => {
    const s = parseModelConfig({ model_type: 'gpt2', n_embd: 32, n_head: 4, n_layer: 2, vocab_size: 50, n_positions: 16, scale_attn_by_inverse_layer_idx: true });
    expect(s.weightShapes.get('embed.pos')).toEqual([16, 32]);
    expect((s.segments[4] as AttentionSegment).scale).toBeCloseTo(1 / Math.sqrt(8) / 2);
    expect((s.segments[2] as MlpSegment).activation).toBe('gelu_new');
  });
  it('refuses unknown model types and bad values with typed errors', () => {
    expect(() => parseModelConfig({ model_type: 'llama' })).toThrow(ConfigError);
    expect(() => parseModelConfig({ ...neox, hidden_size: 30 })).toThrow(FormatError);
    expect(() => parseModelConfig({ ...neox, num_hidden_layers: 'two' })).toThrow(/must be a number/);
    expect(() => parseModelConfig([])).toThrow(FormatError);
  });
});
