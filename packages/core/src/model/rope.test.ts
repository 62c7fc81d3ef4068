// RoPE frequencies and tables against transformers' formulas, computed by the independent PyTorch
// generator (tools/refgen/make_models.py → fixtures/models/rope-cases/rope-cases.json): every
// supported rope type and spelling, dynamic NTK at lengths below, at and past max_position_embeddings.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from './config.js';
import { rotaryInverseFrequencies, rotaryTables } from './rope.js';
import type { AttentionSegment, RotarySpec } from './spec.js';

interface RopeCase {
  name: string;
  type: string;
  rotary_dims: number;
  config: object;
  lengths: { length: number; inv_freq: number[]; attention_factor: number; cos?: number[]; sin?: number[] }[];
}

const CASES = (JSON.parse(readFileSync(fileURLToPath(new URL('../../../../fixtures/models/rope-cases/rope-cases.json', import.meta.url)), 'utf8')) as { cases: RopeCase[] }).cases;

const rotaryOf = (config: object): AttentionSegment => parseModelConfig(config).segments[1] as AttentionSegment;

/** Largest |a − b| / |b| over the entries. */
function relErr(a: ArrayLike<number>, b: readonly number[]): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(Math.abs(b[i]!), 1e-30));
  return worst;
}

describe('rope frequencies match transformers (PyTorch reference)', () => {
  it('covers every supported type', () => {
    expect(new Set(CASES.map((c) => c.type))).toEqual(new Set(['default', 'linear', 'dynamic', 'yarn', 'llama3']));
  });

  describe.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    it('inv_freq per forward length (≤ 1 float32 ulp) and the attention factor', () => {
      const attn = rotaryOf(c.config);
      expect(attn.rotaryDims).toBe(c.rotary_dims);
      const rotary = attn.rotary!;
      expect(rotary.type).toBe(c.type);
      for (const l of c.lengths) {
        // Bit-exact on this machine; one float32 ulp of slack for another libm's pow.
        expect(relErr(rotaryInverseFrequencies(rotary, l.length), l.inv_freq), `length ${l.length}`).toBeLessThanOrEqual(1.2e-7);
        expect(rotary.attentionFactor).toBeCloseTo(l.attention_factor, 12);
      }
    });

    if (c.lengths.some((l) => l.cos)) it('cos/sin tables of positions 0 … length − 1', () => {
      const rotary = rotaryOf(c.config).rotary!;
      for (const l of c.lengths.filter((x) => x.cos)) {
        const t = rotaryTables(rotary, 0, l.length);
        let worst = 0;
        for (let i = 0; i < l.cos!.length; i++) worst = Math.max(worst, Math.abs(t.cos[i]! - l.cos![i]!), Math.abs(t.sin[i]! - l.sin![i]!));
        // Same float32 angles; torch's float32 cos/sin are within an ulp of the rounded exact values.
        expect(worst, `length ${l.length}`).toBeLessThanOrEqual(3e-7);
      }
    });
  });
});

describe('rotaryTables', () => {
  const spec = (extra: object): RotarySpec => rotaryOf({
    model_type: 'gpt_neox', hidden_size: 8, num_attention_heads: 1, num_hidden_layers: 1, vocab_size: 4, max_position_embeddings: 8, rotary_pct: 1, ...extra,
  }).rotary!;

  it('a window of positions equals the same rows of the full table (static types)', () => {
    const r = spec({ rope_scaling: { rope_type: 'yarn', factor: 4 } });
    const full = rotaryTables(r, 0, 8), part = rotaryTables(r, 3, 4);
    expect(Array.from(part.cos)).toEqual(Array.from(full.cos.slice(3 * 8, 7 * 8)));
    expect(Array.from(part.sin)).toEqual(Array.from(full.sin.slice(3 * 8, 7 * 8)));
  });

  it('dynamic NTK: the frequencies follow offset + seq past max_position_embeddings', () => {
    const r = spec({ rope_scaling: { type: 'dynamic', factor: 2 } });
    expect(rotaryInverseFrequencies(r, 8)).toBe(r.invFreq);
    const longer = rotaryInverseFrequencies(r, 12);
    expect(longer[0]).toBe(1); // base^0
    for (let i = 1; i < longer.length; i++) expect(longer[i]!).toBeLessThan(r.invFreq[i]!); // a larger base
    // The same position gets another angle when the forward is longer (a cached step at 11 vs a prefix of 8).
    const step = rotaryTables(r, 11, 1), prefix = rotaryTables(r, 0, 8);
    const whole = rotaryTables(r, 0, 12);
    expect(Array.from(step.cos)).toEqual(Array.from(whole.cos.slice(11 * 8)));
    expect(Array.from(prefix.cos.slice(5 * 8, 6 * 8))).not.toEqual(Array.from(whole.cos.slice(5 * 8, 6 * 8)));
  });

  it('the attention factor scales cos and sin', () => {
    const plain = spec({}), scaled = spec({ rope_scaling: { rope_type: 'yarn', factor: 1, attention_factor: 0.5 } });
    const a = rotaryTables(plain, 2, 3), b = rotaryTables(scaled, 2, 3);
    a.cos.forEach((x, i) => expect(b.cos[i]).toBe(Math.fround(x * 0.5)));
    a.sin.forEach((x, i) => expect(b.sin[i]).toBe(Math.fround(x * 0.5)));
  });
});
