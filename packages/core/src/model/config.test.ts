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
    const attn = s.segments[1] as AttentionSegment;
    expect(attn.rotaryDims).toBe(8);
    expect(attn.rotary!.type).toBe('default');
    [0, 2, 4, 6].forEach((i, k) => expect(attn.rotary!.invFreq[k]).toBeCloseTo(1 / 500 ** (i / 8), 6));
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

const attention = (cfg: object): AttentionSegment => parseModelConfig(cfg).segments[1] as AttentionSegment;

describe('parseModelConfig: attention_bias', () => {
  it('attention_bias false drops the q/k/v and dense biases from the spec and its weights', () => {
    const s = parseModelConfig({ ...neox, attention_bias: false });
    const attn = s.segments[1] as AttentionSegment;
    expect(attn.qkv.bias).toBeUndefined();
    expect(attn.out.bias).toBeUndefined();
    expect(s.weightShapes.has('l0.qkv.b') || s.weightShapes.has('l1.attn_out.b')).toBe(false);
    expect(s.weightShapes.get('l1.fc_in.b')).toEqual([128]); // the MLP keeps its biases
    const withBias = parseModelConfig(neox);
    expect((withBias.segments[1] as AttentionSegment).qkv.bias).toBe('l0.qkv.b');
    expect(withBias.weightShapes.get('l0.attn_out.b')).toEqual([32]);
    expect(() => parseModelConfig({ ...neox, attention_bias: 'no' })).toThrow(FormatError);
  });
});

describe('parseModelConfig: rope scaling', () => {
  const max = { ...neox, max_position_embeddings: 64 };

  it('rope_scaling null, {type: default} and rope_parameters {rope_type: default} are plain RoPE', () => {
    for (const extra of [{ rope_scaling: null }, { rope_scaling: { type: 'default' } }, { rope_parameters: { rope_type: 'default', rope_theta: 10000 } }]) {
      const attn = attention({ ...max, ...extra });
      expect(attn.rotary!.type).toBe('default');
      expect(attn.rotary!.attentionFactor).toBe(1);
      expect(attn.rotary!.dynamic).toBeUndefined();
      expect(parseModelConfig({ ...max, ...extra }).dims.maxPositions).toBe(64);
    }
  });

  it('reads the v4 spellings (type, rope_type) and the v5 rope_parameters alike', () => {
    const v4 = attention({ ...max, rope_scaling: { type: 'linear', factor: 2 } });
    const v4b = attention({ ...max, rope_scaling: { rope_type: 'linear', factor: 2 } });
    const v5 = attention({ ...max, rotary_pct: undefined, rope_parameters: { rope_type: 'linear', factor: 2, rope_theta: 10000, partial_rotary_factor: 0.5 } });
    expect(v4.rotary!.type).toBe('linear');
    expect(Array.from(v4b.rotary!.invFreq)).toEqual(Array.from(v4.rotary!.invFreq));
    expect(Array.from(v5.rotary!.invFreq)).toEqual(Array.from(v4.rotary!.invFreq));
    // linear: every frequency halved (positions / factor)
    const plain = attention(max).rotary!.invFreq;
    v4.rotary!.invFreq.forEach((x, i) => expect(x).toBe(Math.fround(plain[i]! / 2)));
    // rope_type wins over type; rope_scaling wins over rope_parameters (as transformers v5)
    expect(attention({ ...max, rope_scaling: { type: 'dynamic', rope_type: 'linear', factor: 2 } }).rotary!.type).toBe('linear');
    expect(attention({ ...max, rope_scaling: { type: 'linear', factor: 2 }, rope_parameters: { rope_type: 'default' } }).rotary!.type).toBe('linear');
  });

  it('the rope dict wins for rope_theta and partial_rotary_factor; top-level rotary_pct over partial_rotary_factor', () => {
    const a = attention({ ...max, rotary_emb_base: 500, rope_parameters: { rope_type: 'default', rope_theta: 1000, partial_rotary_factor: 1 } });
    expect(a.rotaryDims).toBe(8);
    expect(a.rotary!.invFreq[1]).toBeCloseTo(1 / 1000 ** (2 / 8), 6);
    expect(attention({ ...max, rotary_pct: 0.25, partial_rotary_factor: 1 }).rotaryDims).toBe(2);
  });

  it('stretches the context: factor × max_position_embeddings (linear, dynamic), factor × original (yarn, llama3)', () => {
    expect(parseModelConfig({ ...max, rope_scaling: { type: 'linear', factor: 2.5 } }).dims.maxPositions).toBe(160);
    expect(parseModelConfig({ ...max, rope_scaling: { type: 'dynamic', factor: 2 } }).dims.maxPositions).toBe(128);
    expect(parseModelConfig({ ...max, rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32 } }).dims.maxPositions).toBe(128);
    expect(parseModelConfig({ ...max, max_position_embeddings: 4096, rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32 } }).dims.maxPositions).toBe(4096);
    const llama3 = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 };
    expect(parseModelConfig({ ...max, rope_scaling: llama3 }).dims.maxPositions).toBe(128);
  });

  it('dynamic keeps max_position_embeddings as its threshold; yarn carries its attention factor', () => {
    const dyn = attention({ ...max, rope_scaling: { type: 'dynamic', factor: 3 } }).rotary!;
    expect(dyn.dynamic).toEqual({ base: 10000, factor: 3, maxPositions: 64 });
    const yarn = attention({ ...max, rope_scaling: { rope_type: 'yarn', factor: 4 } }).rotary!;
    expect(yarn.attentionFactor).toBeCloseTo(0.1 * Math.log(4) + 1, 12);
    expect(attention({ ...max, rope_scaling: { rope_type: 'yarn', factor: 4, attention_factor: 0.5 } }).rotary!.attentionFactor).toBe(0.5);
    // mscale / mscale_all_dim (DeepSeek): the ratio of the two mscales
    const ds = attention({ ...max, rope_scaling: { rope_type: 'yarn', factor: 40, mscale: 1, mscale_all_dim: 0.5 } }).rotary!;
    expect(ds.attentionFactor).toBeCloseTo((0.1 * Math.log(40) + 1) / (0.05 * Math.log(40) + 1), 12);
    // v5: a null factor is max_position_embeddings / original_max_position_embeddings
    const derived = attention({ ...max, rope_parameters: { rope_type: 'yarn', factor: null, original_max_position_embeddings: 16 } }).rotary!;
    expect(derived.attentionFactor).toBeCloseTo(0.1 * Math.log(4) + 1, 12);
  });

  it('refuses unknown rope types with a ConfigError naming the supported ones', () => {
    for (const t of ['longrope', 'su', 'dynamic_yarn', 42]) {
      let err: unknown;
      try { parseModelConfig({ ...max, rope_scaling: { rope_type: t, factor: 2, short_factor: [1], long_factor: [1] } }); } catch (e) { err = e; }
      expect(err, String(t)).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toContain(JSON.stringify(t));
      expect((err as ConfigError).hint).toContain('default, linear, dynamic, yarn, llama3');
    }
  });

  it('refuses a missing or bad factor and missing llama3 fields with a FormatError naming the key', () => {
    expect(() => parseModelConfig({ ...max, rope_scaling: { type: 'linear' } })).toThrow(/missing 'rope_scaling.factor'/);
    expect(() => parseModelConfig({ ...max, rope_parameters: { rope_type: 'dynamic' } })).toThrow(/missing 'rope_parameters.factor'/);
    expect(() => parseModelConfig({ ...max, rope_scaling: { type: 'yarn' } })).toThrow(FormatError);
    for (const factor of [0.5, 0, -2, 'two', Number.NaN, null]) {
      expect(() => parseModelConfig({ ...max, rope_scaling: { type: 'linear', factor } }), String(factor)).toThrow(FormatError);
    }
    expect(() => parseModelConfig({ ...max, rope_scaling: { rope_type: 'llama3', factor: 8, high_freq_factor: 4 } })).toThrow(/low_freq_factor/);
    expect(() => parseModelConfig({ ...max, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 4, high_freq_factor: 4 } })).toThrow(/0 < low < high/);
    expect(() => parseModelConfig({ ...max, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 1.5 } }))
      .toThrow(/original_max_position_embeddings/);
    expect(() => parseModelConfig({ ...max, rope_scaling: { rope_type: 'yarn', factor: 2, attention_factor: -1 } })).toThrow(/attention_factor/);
    expect(() => parseModelConfig({ ...max, rope_scaling: { rope_type: 'yarn', factor: 2, truncate: 'yes' } })).toThrow(/truncate/);
    expect(() => parseModelConfig({ ...max, rope_scaling: { rope_type: 'yarn', factor: 2, beta_fast: '32' } })).toThrow(/beta_fast/);
    expect(() => parseModelConfig({ ...max, rope_scaling: 'linear' })).toThrow(FormatError);
    expect(() => parseModelConfig({ ...max, rope_scaling: [2] })).toThrow(FormatError);
  });

  it('refuses dynamic scaling with 2 rotary dims (transformers divides by dims − 2)', () => {
    expect(() => parseModelConfig({ ...max, rotary_pct: 0.25, rope_scaling: { type: 'dynamic', factor: 2 } })).toThrow(ConfigError);
    expect(attention({ ...max, rotary_pct: 0.5, rope_scaling: { type: 'dynamic', factor: 2 } }).rotaryDims).toBe(4);
  });

  it('GPT-2 has no rotary and ignores rope keys', () => {
    const s = parseModelConfig({ model_type: 'gpt2', n_embd: 32, n_head: 4, n_layer: 1, vocab_size: 50, rope_scaling: { rope_type: 'longrope' } });
    const attn = s.segments[1] as AttentionSegment;
    expect(attn.rotaryDims).toBe(0);
    expect(attn.rotary).toBeUndefined();
    expect(attn.qkv.bias).toBe('l0.qkv.b');
  });
});

describe('parseModelConfig: size bounds (issue 16)', () => {
  const neox = { model_type: 'gpt_neox', hidden_size: 64, num_attention_heads: 4, num_hidden_layers: 2, vocab_size: 100 };
  const gpt2 = { model_type: 'gpt2', n_embd: 64, n_head: 4, n_layer: 2, vocab_size: 100 };
  const refuse = (cfg: Record<string, unknown>, message: RegExp) => {
    let err: unknown;
    try { parseModelConfig(cfg); } catch (e) { err = e; }
    expect(err, JSON.stringify(cfg)).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(message);
  };

  it('refuses sizes beyond every released model before building anything', () => {
    refuse({ ...neox, num_hidden_layers: 1e9 }, /number of layers is 1000000000, beyond the supported 1 … 1024/);
    refuse({ ...gpt2, n_layer: 1e9 }, /number of layers is 1000000000/);
    refuse({ ...neox, hidden_size: 2 ** 40, num_attention_heads: 1 }, /model width is 1099511627776/);
    refuse({ ...neox, vocab_size: 2 ** 30 }, /vocabulary size is 1073741824/);
    refuse({ ...neox, intermediate_size: 2 ** 30 }, /MLP width is 1073741824/);
    refuse({ ...neox, max_position_embeddings: 2 ** 40 }, /context length \(after rope scaling\) is 1099511627776/);
    refuse({ ...neox, rope_scaling: { type: 'linear', factor: 1e300 } }, /context length/);
  });

  it('refuses a weight the safetensors reader could not hold', () => {
    refuse({ ...neox, hidden_size: 65536, num_attention_heads: 4, vocab_size: 65536 }, /token embedding would be \[65536, 65536\], more than 2147483647 elements/);
  });

  it('refuses a layer norm epsilon that is not a small positive number', () => {
    for (const eps of [-1, 0, 2]) refuse({ ...neox, layer_norm_eps: eps }, /layer norm epsilon is .*must be a small positive number/);
    refuse({ ...gpt2, layer_norm_epsilon: -1 }, /layer norm epsilon is -1/);
  });

  it('shows 1e999 as Infinity, not as JSON null', () => {
    refuse({ ...neox, rope_scaling: { type: 'linear', factor: Infinity } }, /'rope_scaling.factor' must be a number, got Infinity/);
  });
});
