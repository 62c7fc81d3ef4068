// Top-activating contexts (core topActivations, sfc.top-contexts/v1, `sfc dict top`) on
// fixtures/small-a: the selection equals a brute-force scan of every token's full encode (for
// SAEs with and without encodeFeatures), contexts mark the activating token, files are tied to
// the SAE's content hash and merge across runs.

import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { contentHash, parseTopContexts, topActivations, topContextsFileName, topContextsFiles, type Dictionary } from '@sfc/core';
import { ALGORITHM_BACKENDS } from './backends.js';
import { sfc } from './cli-run.js';
import { SMALL_A } from './paths.js';
import { useSmallA } from './small-a.js';

// In small-a's vocabulary: the tokenizer refuses unknown words (fixtures/small-a/README.md).
const CORPUS = join(SMALL_A, 'corpus.txt');

/** Every token's activation of `f`, by a full forward and a full encode per row. */
async function bruteForce(s: ReturnType<typeof useSmallA>, dict: Dictionary, sub: string, f: number, tokens: Int32Array, seqLen: number): Promise<{ token: number; value: number }[]> {
  const all: { token: number; value: number }[] = [];
  for (let start = 0; start < tokens.length; start += seqLen) {
    const row = tokens.subarray(start, Math.min(start + seqLen, tokens.length));
    let acts = new Float32Array(0);
    await s.model.ops.scope(async () => {
      const { values } = await s.model.forward(s.model.ops.intTensor(row, [1, row.length]), { logits: false });
      const x = values.get(sub)!;
      acts = Float32Array.from(await dict.encode(s.model.ops.reshape(x, [row.length, x.shape[2]!])).data());
      return 0;
    });
    for (let p = 0; p < row.length; p++) all.push({ token: start + p, value: acts[p * dict.dSae + f]! });
  }
  return all.filter((a) => a.value > 0).sort((a, b) => b.value - a.value);
}

describe.each(ALGORITHM_BACKENDS.filter((b) => b.name === 'tfjs-wasm'))('top activations on $name', (backend) => {
  const s = useSmallA(backend);

  it('keeps the k largest activations of each feature, as a full scan finds them', async () => {
    const text = readFileSync(CORPUS, 'utf8').slice(0, 6000);
    const tokens = Int32Array.from(s.model.tokenizer.encode(text));
    const seqLen = 24;
    const features = new Map([['resid_1', Int32Array.from([8, 3])], ['attn_0', Int32Array.from([5])]]);
    const res = await topActivations(s.model, s.dictionaries, tokens, { features, k: 5, seqLen, batchSize: 4 });
    expect(res.seqLen).toBe(seqLen);
    for (const [sub, feats] of features) {
      for (const f of feats) {
        const want = (await bruteForce(s, s.dictionaries.get(sub)!, sub, f, tokens, seqLen)).slice(0, 5);
        expect(want.length, `${sub}/${f} fires in the corpus`).toBe(5);
        const got = res.features.get(sub)!.get(f)!;
        expect(got.map((g) => g.token)).toEqual(want.map((w) => w.token));
        got.forEach((g, i) => expect(g.value).toBeCloseTo(want[i]!.value, 4));
      }
    }
    // The same with a dictionary that has no encodeFeatures (full encode, then a gather).
    const plain = new Map([...s.dictionaries].map(([k, d]) => [k, Object.assign(Object.create(Object.getPrototypeOf(d) as object) as Dictionary, d, { encodeFeatures: undefined })]));
    const res2 = await topActivations(s.model, plain, tokens, { features, k: 5, seqLen, batchSize: 4 });
    expect(res2.features.get('resid_1')!.get(8)).toEqual(res.features.get('resid_1')!.get(8));
    // Contexts: the activating token is marked and lies in its own row.
    const [file] = topContextsFiles(res, tokens, (ids) => s.model.tokenizer.decode(ids), () => ({ sae: { path: 'x', hash: 'h' }, model: {}, corpus: { path: 'c', hash: 'c', tokens: tokens.length }, k: 5, before: 3, after: 2 }));
    const first = file!.features['8']![0]!;
    const top = res.features.get('resid_1')!.get(8)![0]!;
    expect(first.tokens[first.at]!.trim()).toBe(s.model.tokenizer.decode([tokens[top.token]!]).trim());
    expect(first.tokens.join("")).toBe(s.model.tokenizer.decode(Array.from(tokens.subarray(top.token - first.at, top.token - first.at + first.tokens.length)))); // pieces read as the text
    expect(first.at).toBeLessThanOrEqual(3);
  });
});

describe('sfc dict top', () => {
  it('writes one file per SAE named by its content hash, and merges a second run', async () => {
    const out = mkdtempSync(join(tmpdir(), 'sfc-top-'));
    const common = ['--corpus', CORPUS, '--model', SMALL_A, '--dictionaries', join(SMALL_A, 'dictionaries'), '--top-contexts', out, '--backend', 'tfjs-wasm', '-k', '3'];
    const r = await sfc(['dict', 'top', '--features', 'resid_1/8', ...common]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/resid_1\/8 {2}\d/);
    expect(r.stdout).toContain('⟦');
    const hash = await contentHash(join(SMALL_A, 'dictionaries', 'resid_out_layer1'));
    const path = join(out, topContextsFileName(hash));
    expect(existsSync(path)).toBe(true);
    const r2 = await sfc(['dict', 'top', '--features', 'resid_1/3', ...common]);
    expect(r2.code, r2.stderr).toBe(0);
    const file = parseTopContexts(readFileSync(path, 'utf8'), path);
    expect(file.sae.hash).toBe(hash);
    expect(Object.keys(file.features).sort()).toEqual(['3', '8']);
    expect(file.features['8']!.length).toBe(3);
  }, 120_000);

  it('refuses error nodes and a missing corpus', async () => {
    const r = await sfc(['dict', 'top', '--features', 'resid_1/err', '--corpus', CORPUS, '--model', SMALL_A, '--dictionaries', join(SMALL_A, 'dictionaries')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not a feature id/);
    const r2 = await sfc(['dict', 'top', '--features', 'resid_1/8', '--corpus', '/nonexistent.txt', '--model', SMALL_A]);
    expect(r2.stderr).toMatch(/corpus file .* does not exist/);
  }, 60_000);
});
