// A trained SAE written by writeSaeLensFolder loads back through the SAELens plugin and the set
// loader (folder named after the sfc submodule) with the same math as the host weights.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { listSubmodules, PythonRandom } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { host } from '../host-weights.js';
import { loadDictionarySet } from '../load-set.js';
import { saelens } from '../plugins/saelens.js';
import { writeSaeLensFolder } from './saelens-writer.js';
import type { ReluSaeWeights } from './relu-sae-trainer.js';

const d = 6, F = 10;
function weights(seed: number): ReluSaeWeights {
  const rng = new PythonRandom(seed);
  const r = (n: number) => Float32Array.from({ length: n }, () => rng.random() * 2 - 1);
  return { W_enc: host([d, F], r(d * F)), b_enc: host([F], r(F)), W_dec: host([F, d], r(F * d)), b_dec: host([d], r(d)) };
}

/** relu((x − b_dec) W_enc + b_enc) W_dec + b_dec in float64. */
function reconstruct(w: ReluSaeWeights, x: Float32Array): Float64Array {
  const out = new Float64Array(d);
  const f = new Float64Array(F);
  for (let j = 0; j < F; j++) {
    let p = w.b_enc.data[j]!;
    for (let i = 0; i < d; i++) p += (x[i]! - w.b_dec.data[i]!) * w.W_enc.data[i * F + j]!;
    f[j] = Math.max(0, p);
  }
  for (let i = 0; i < d; i++) {
    out[i] = w.b_dec.data[i]!;
    for (let j = 0; j < F; j++) out[i]! += f[j]! * w.W_dec.data[j * d + i]!;
  }
  return out;
}

describe('writeSaeLensFolder', () => {
  it('writes a SAELens 6 standard SAE that the plugin and the set loader read back', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sfc-saelens-w-'));
    const w = weights(1);
    await writeSaeLensFolder(join(root, 'resid_1'), w, { hookName: 'blocks.1.hook_resid_post', modelName: 'tiny', contextSize: 16 }, { steps: 5 });
    expect(readdirSync(join(root, 'resid_1')).sort()).toEqual(['cfg.json', 'sae_weights.safetensors', 'training.json']);
    const cfg = JSON.parse(readFileSync(join(root, 'resid_1', 'cfg.json'), 'utf8'));
    expect(cfg).toMatchObject({ architecture: 'standard', d_in: d, d_sae: F, apply_b_dec_to_input: true, normalize_activations: 'none' });
    expect(cfg.metadata).toMatchObject({ hook_name: 'blocks.1.hook_resid_post', model_name: 'tiny', context_size: 16 });

    const ops = referenceOps();
    const det = await saelens().detect(join(root, 'resid_1'));
    expect(det).toMatchObject({ ok: true, hook: 'blocks.1.hook_resid_post' });
    const set = await loadDictionarySet(root, listSubmodules(2, 'gpt_neox'), { ops, dIn: d, missing: 'skip' });
    expect([...set.keys()]).toEqual(['resid_1']);
    const dict = set.get('resid_1')!;
    expect(dict).toMatchObject({ architecture: 'relu', dIn: d, dSae: F, hook: 'blocks.1.hook_resid_post', format: 'saelens' });
    const x = Float32Array.from({ length: d }, (_, i) => Math.cos(i) * 2);
    const xHat = await dict.decode(dict.encode(ops.tensor(x, [1, d]))).data();
    const ref = reconstruct(w, x);
    xHat.forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 5));
    dict.dispose();
  });

  it('refuses inconsistent shapes', async () => {
    const w = weights(2);
    const bad = { ...w, b_dec: host([d + 1], new Float32Array(d + 1)) };
    await expect(writeSaeLensFolder(mkdtempSync(join(tmpdir(), 'sfc-saelens-w-')), bad, { hookName: 'hook_embed' })).rejects.toMatchObject({ code: 'SHAPE' });
  });

  it('under a file-size limit (as on a full disk): a typed error, no partial weights, no temp file', () => {
    const root = mkdtempSync(join(tmpdir(), 'sfc-saelens-w-'));
    const url = (p: string) => JSON.stringify(pathToFileURL(fileURLToPath(new URL(p, import.meta.url))).href);
    const script = join(root, 'write.mts');
    // 2 × 6 × 1000 float32 = 48 KB of weights against an 8 KiB limit.
    writeFileSync(script, `import { writeSaeLensFolder } from ${url('./saelens-writer.ts')};
import { host } from ${url('../host-weights.ts')};
const F = 1000, d = 6;
const w = { W_enc: host([d, F], new Float32Array(d * F)), b_enc: host([F], new Float32Array(F)), W_dec: host([F, d], new Float32Array(F * d)), b_dec: host([d], new Float32Array(d)) };
try { await writeSaeLensFolder(${JSON.stringify(join(root, 'sae'))}, w, { hookName: 'hook_embed' }); console.log('ok'); }
catch (e) { console.log(e.code); }`);
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const r = spawnSync('bash', ['-c', `ulimit -f 8; exec "${process.execPath}" --conditions=@sfc/source --import ${tsx} "${script}"`], { encoding: 'utf8' });
    expect(r.stdout.trim(), r.stderr).toBe('IO');
    expect(readdirSync(join(root, 'sae'))).toEqual([]);
  });
});
