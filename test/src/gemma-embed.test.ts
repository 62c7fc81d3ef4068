// Gemma's optional `embed` submodule (Model.load's embedSubmodule; feature-circuits'
// include_embed=True), on every backend: without it a Gemma model is as before (no embed
// submodule, no scale segment); with it the chain computes exactly what the default chain does
// (logits and every shared value bit for bit), Gemma 2's `embed` being embed_tokens' output before
// the √d scale and Gemma 3's the scaled one (its embed_tokens scales itself); KV-cached forwards
// with an edit at embed match the full forward. Node effects and edges with embed are checked
// against PyTorch in edges-parity-models.test.ts (gemma2-a, edges-embed).

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type EmbedSegment, type Tensor } from '@sfc/core';
import { PARITY_BACKENDS, type OpenBackend } from './backends.js';
import { MODELS } from './paths.js';

const IDS = [46, 22, 38, 63, 11, 14, 46, 35, 4];

async function values(model: Model) {
  const { values: v, logits } = await model.forward(model.tokens(Int32Array.from(IDS), 1, IDS.length));
  const data = new Map<string, Float32Array>();
  for (const [k, t] of v) data.set(k, (await t.data()) as Float32Array);
  return { data, logits: (await logits!.data()) as Float32Array };
}

for (const which of PARITY_BACKENDS) describe(which.name, () => {
  let opened: OpenBackend;
  beforeAll(async () => { opened = await which.open(); });
  afterAll(async () => { await opened?.close(); });

  for (const name of ['gemma2-a', 'gemma3-a']) describe(name, () => {
    let plain: Model;
    let withEmbed: Model;
    beforeAll(async () => {
      plain = await Model.load(join(MODELS, name), opened.backend);
      withEmbed = await Model.load(join(MODELS, name), opened.backend, { embedSubmodule: true });
    });
    afterAll(() => { plain?.dispose(); withEmbed?.dispose(); });

    it('by default has no embed submodule and no scale segment (feature-circuits\' include_embed=False)', () => {
      expect(plain.submodules[0]!.name).toBe('attn_0');
      for (const n of ['embed', 'hook_embed']) expect(() => plain.submodule(n)).toThrow(/names embed, which this gemma[23] model has only when asked for/);
      expect(() => plain.submodule('resid_9')).toThrow(/unknown submodule 'resid_9'/);
      expect(plain.spec.segments.some((s) => s.kind === 'scale')).toBe(false);
      expect((plain.spec.segments[0] as EmbedSegment).scale).toBe(Math.fround(Math.sqrt(plain.spec.dims.dModel)));
      expect(plain.inputsOf('attn_0')).toEqual([]);
    });

    it('with embedSubmodule: embed is the first submodule (hook_embed, embed_tokens) and feeds attn_0, mlp_0, resid_0', () => {
      expect(withEmbed.submodules.map((s) => s.name).slice(0, 2)).toEqual(['embed', 'attn_0']);
      expect(withEmbed.submodule('hook_embed').name).toBe('embed');
      expect(withEmbed.submodule('model.embed_tokens').name).toBe('embed');
      expect(withEmbed.inputsOf('attn_0')).toEqual(['embed']);
      expect(withEmbed.inputsOf('mlp_0')).toEqual(['embed', 'attn_0']);
      expect(withEmbed.inputsOf('resid_0')).toEqual(['embed', 'attn_0', 'mlp_0']);
    });

    it('computes the default chain\'s logits and values bit for bit; embed is unscaled on Gemma 2, scaled on Gemma 3', async () => {
      const a = await values(plain);
      const b = await values(withEmbed);
      expect(b.logits).toEqual(a.logits);
      for (const s of plain.submodules) expect(b.data.get(s.name), s.name).toEqual(a.data.get(s.name));
      const scaled = a.data.get('embed')!; // the default chain's embed value: embed_tokens(ids) · √d
      const factor = Math.fround(Math.sqrt(plain.spec.dims.dModel));
      if (name === 'gemma2-a') {
        expect(b.data.get('embed.out')).toEqual(scaled);
        expect(b.data.get('embed')!.map((x) => Math.fround(x * factor))).toEqual(scaled);
      } else {
        expect(withEmbed.spec.segments.some((s) => s.kind === 'scale')).toBe(false);
        expect(b.data.get('embed')).toEqual(scaled);
      }
    });

    it('with a KV cache (prompt, then one token at a time) gives the full forward\'s logits, an edit at embed included', async () => {
      expect(withEmbed.supportsKvCache).toBe(true);
      const edits = new Map([['embed', (x: Tensor) => withEmbed.ops.scale(x, 1.5)]]);
      const full = (await (await withEmbed.forward(withEmbed.tokens(Int32Array.from(IDS), 1, IDS.length), { edits })).logits!.data()) as Float32Array;
      const V = withEmbed.spec.dims.vocabSize;
      const cache = await withEmbed.createKvCache({ batch: 1, maxLength: IDS.length });
      try {
        const pieces = [IDS.slice(0, 6), ...IDS.slice(6).map((t) => [t])];
        let at = 0;
        for (const piece of pieces) {
          const { logits } = await withEmbed.forward(withEmbed.tokens(Int32Array.from(piece), 1, piece.length), { cache, edits });
          const got = (await logits!.data()) as Float32Array;
          const want = full.slice(at * V, (at + piece.length) * V);
          expect(Math.max(...got.map((v, i) => Math.abs(v - want[i]!)))).toBeLessThan(1e-4);
          at += piece.length;
        }
      } finally {
        cache.dispose();
      }
    });

    it('an edit at embed reaches the logits (the scale follows it on Gemma 2)', async () => {
      const tokens = withEmbed.tokens(Int32Array.from(IDS), 1, IDS.length);
      const clean = await withEmbed.forward(tokens);
      const doubled = await withEmbed.forward(tokens, { edits: new Map([['embed', (x) => withEmbed.ops.scale(x, 2)]]) });
      const l0 = (await clean.logits!.data()) as Float32Array;
      const l1 = (await doubled.logits!.data()) as Float32Array;
      expect(l1.some((v, i) => Math.abs(v - l0[i]!) > 1e-3)).toBe(true);
      if (name === 'gemma2-a') {
        const e = (await clean.values.get('embed.out')!.data()) as Float32Array;
        expect((await doubled.values.get('embed.out')!.data()) as Float32Array).toEqual(e.map((x) => 2 * x));
      }
    });
  });
});
