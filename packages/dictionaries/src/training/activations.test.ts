// collectActivations on the small-a fixture model: every collected row is the forward value of
// one token of one line, the token budget and context size are honoured, and bad lines name
// their line number.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Model } from '@sfc/core';
import { tfjsBackend } from '@sfc/backend-tfjs';
import { collectActivations, textLines } from './activations.js';

const SMALL_A = fileURLToPath(new URL('../../../../fixtures/small-a', import.meta.url));
const backend = await tfjsBackend({ flavor: 'cpu' });
const model = await Model.load(SMALL_A, backend);
afterAll(async () => { model.dispose(); await backend.dispose(); });

const lines = readFileSync(join(SMALL_A, 'data.jsonl'), 'utf8').trim().split('\n').slice(0, 12)
  .flatMap((l) => { const e = JSON.parse(l); return [e.clean_prefix as string, e.patch_prefix as string]; });

/** Every token's row of one submodule, via a direct forward of each line. */
async function direct(text: string, sub: string): Promise<Float32Array[]> {
  const ids = model.tokenizer.encode(text);
  const t = await model.ops.scope(async () => (await model.forward(model.tokens(Int32Array.from(ids), 1, ids.length), { logits: false })).values.get(sub)!);
  const data = await t.data() as Float32Array;
  t.dispose();
  return ids.map((_, p) => data.slice(p * 32, (p + 1) * 32));
}

describe('collectActivations', () => {
  it('collects every token of every line at the requested submodules', async () => {
    const before = model.ops.numTensors();
    const got = await collectActivations(model, lines, { submodules: ['embed', 'blocks.1.hook_resid_post'], batchSize: 5, seed: 3 });
    expect(model.ops.numTensors()).toBe(before);
    const total = lines.reduce((s, l) => s + model.tokenizer.encode(l).length, 0);
    expect(got.tokens).toBe(total);
    expect(got.sequences).toBe(lines.length);
    expect([...got.sets.keys()]).toEqual(['embed', 'resid_1']);
    for (const sub of ['embed', 'resid_1']) {
      const set = got.sets.get(sub)!;
      expect(set).toMatchObject({ rows: total, dIn: 32 });
      // Row order is the collector's own; compare as multisets of rows (rounded keys).
      const key = (r: ArrayLike<number>) => Array.from(r, (v) => v.toFixed(4)).join(',');
      const rowsByLine: Float32Array[][] = [];
      for (const l of lines) rowsByLine.push(await direct(l, sub)); // scopes must not interleave
      const expected = rowsByLine.flat().map(key).sort();
      const actual = Array.from({ length: total }, (_, i) => key(set.data.subarray(i * 32, (i + 1) * 32))).sort();
      expect(actual).toEqual(expected);
    }
  });

  it('honours the token budget and the context size', async () => {
    const got = await collectActivations(model, lines, { submodules: ['mlp_0'], maxTokens: 23, contextSize: 3 });
    expect(got.tokens).toBe(23);
    expect(got.sequences).toBe(8); // 7 lines of 3 tokens, then 2 tokens of the eighth
    expect(got.sets.get('mlp_0')!.data.length).toBe(23 * 32);
  });

  it('rejects a text without tokens and unknown submodules', async () => {
    await expect(collectActivations(model, ['', ''], { submodules: ['embed'], source: 'x.txt' }))
      .rejects.toMatchObject({ code: 'INPUT', message: 'x.txt has no tokens' });
    await expect(collectActivations(model, lines, { submodules: ['resid_9'] })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('textLines drops empty lines and trailing whitespace', () => {
    expect(textLines('a b \r\n\n  \nc\n')).toEqual(['a b', 'c']);
  });

  it("uses each submodule's own width: Gemma's attn_l is z (heads × head_dim), not d_model", async () => {
    const gemma = await Model.load(fileURLToPath(new URL('../../../../fixtures/models/gemma2-a', import.meta.url)), backend);
    try {
      const text = ['one two three', 'four five'].map((_, i) => gemma.tokenizer.decode([3 + i, 7 + i, 11 + i]));
      const got = await collectActivations(gemma, text, { submodules: ['attn_1', 'resid_1'], batchSize: 2, seed: 1 });
      const z = got.sets.get('attn_1')!;
      expect(z.dIn).toBe(gemma.submodule('attn_1').width);
      expect(z.dIn).not.toBe(gemma.spec.dims.dModel);
      expect(z.data.length).toBe(z.rows * z.dIn);
      expect(got.sets.get('resid_1')!.dIn).toBe(gemma.spec.dims.dModel);
      expect(z.data.some((v) => v !== 0)).toBe(true);
    } finally {
      gemma.dispose();
    }
  });
});
