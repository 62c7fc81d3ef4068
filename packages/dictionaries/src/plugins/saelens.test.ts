import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { encodeSafetensors, FormatError, SafetensorsFile, ShapeError } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { saelens } from './saelens.js';

const ARCHS = fileURLToPath(new URL('../../test-data/archs', import.meta.url));

function copyCase(name: string, edit?: (cfg: Record<string, unknown>) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'sfc-saelens-'));
  cpSync(join(ARCHS, name), dir, { recursive: true });
  if (edit) {
    const cfg = JSON.parse(readFileSync(join(dir, 'cfg.json'), 'utf8'));
    edit(cfg);
    writeFileSync(join(dir, 'cfg.json'), JSON.stringify(cfg));
  }
  return dir;
}

const load = (dir: string, options?: Record<string, unknown>, warn?: (m: string) => void) =>
  saelens().load(dir, { ops: referenceOps(), ...(options ? { options } : {}), ...(warn ? { warn } : {}) });

describe('saelens loader', () => {
  it('detects with the hook and declines incomplete folders with reasons', async () => {
    expect(await saelens().detect(join(ARCHS, 'saelens_topk'))).toMatchObject({ ok: true, hook: 'blocks.0.hook_attn_out' });
    const dir = copyCase('saelens_topk');
    writeFileSync(join(dir, 'cfg.json'), '{');
    expect((await saelens().detect(dir)).reason).toMatch(/not a SAELens config/);
  });

  it('refuses unknown architectures, a missing k and tensors of the wrong shape with typed errors', async () => {
    await expect(load(copyCase('saelens_standard', (c) => { c.architecture = 'transcoder'; }))).rejects.toThrow(/architecture 'transcoder' is not supported/);
    await expect(load(copyCase('saelens_topk', (c) => { delete c.k; }))).rejects.toThrow(/topk SAE without k/);
    await expect(load(copyCase('saelens_standard', (c) => { c.d_sae = 17; }))).rejects.toThrow(ShapeError);
    await expect(load(copyCase('saelens_gated', (c) => { c.architecture = 'standard'; }))).rejects.toThrow(/no tensor 'b_enc'/);
    await expect(load(copyCase('saelens_gated', (c) => { c.architecture = 'jumprelu'; }))).rejects.toThrow(/jumprelu SAE without 'threshold'/);
  });

  it('warns when expected_average_only_in has no scaling factor, and folds it when given', async () => {
    const warnings: string[] = [];
    const d = await load(join(ARCHS, 'saelens_expected_average'), undefined, (m) => warnings.push(m));
    expect(warnings.join()).toMatch(/scalingFactor/);
    expect(d.details?.scalingFactor).toBe('missing');
    const folded = await load(join(ARCHS, 'saelens_expected_average'), { scalingFactor: 2 });
    expect(folded.details?.scalingFactor).toBe(2);
    const a = await d.decoderRows().data(), b = await folded.decoderRows().data();
    expect(b[0]).toBeCloseTo(a[0]! / 2, 6);
    await expect(load(join(ARCHS, 'saelens_expected_average'), { scalingFactor: 'big' })).rejects.toThrow(/scalingFactor must be a finite number/);
  });

  it('reads a log_threshold (training checkpoints) as exp(log_threshold)', async () => {
    const dir = copyCase('saelens_jumprelu');
    const file = SafetensorsFile.parse(readFileSync(join(dir, 'sae_weights.safetensors')));
    const tensors = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    for (const [name, e] of file.entries) {
      const data = file.getFloat32(name);
      if (name === 'threshold') tensors.set('log_threshold', { shape: e.shape, data: Float32Array.from(data, Math.log) });
      else tensors.set(name, { shape: e.shape, data });
    }
    writeFileSync(join(dir, 'sae_weights.safetensors'), encodeSafetensors(tensors));
    const a = await load(join(ARCHS, 'saelens_jumprelu')), b = await load(dir);
    const x = referenceOps().tensor(Float32Array.from({ length: 16 }, (_, i) => Math.sin(i)), [2, 8]);
    expect(Array.from(await b.encode(x).data()).map((v) => +v.toFixed(5))).toEqual(Array.from(await a.encode(x).data()).map((v) => +v.toFixed(5)));
  });

  it('only ever throws typed errors on corrupted weight files', async () => {
    const good = readFileSync(join(ARCHS, 'saelens_standard', 'sae_weights.safetensors'));
    let seed = 7;
    const rand = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    for (let trial = 0; trial < 200; trial++) {
      const bytes = new Uint8Array(good);
      for (let k = 0; k < 1 + rand(4); k++) bytes[rand(Math.min(bytes.length, 400))] = rand(256);
      const dir = copyCase('saelens_standard');
      writeFileSync(join(dir, 'sae_weights.safetensors'), trial % 10 === 0 ? bytes.subarray(0, rand(bytes.length)) : bytes);
      try {
        (await load(dir)).dispose();
      } catch (e) {
        if (!(e instanceof FormatError || e instanceof ShapeError)) {
          throw new Error(`trial ${trial}: expected a FormatError or ShapeError, got ${(e as Error).name}: ${(e as Error).message}`);
        }
      }
    }
  });
});
