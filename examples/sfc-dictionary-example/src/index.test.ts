import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError } from '@sfc/core';
import { referenceOps, runDictionaryPluginConformance } from '@sfc/core/testing';
import toyDictionaryPlugin, { writeToyDictionary } from './index.js';

function randomToy(dIn: number, dSae: number, seed: number) {
  let s = seed;
  const r = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 - 0.5; };
  const vec = (n: number) => Float32Array.from({ length: n }, r);
  return { dIn, dSae, W_enc: vec(dIn * dSae), b_enc: vec(dSae), W_dec: vec(dSae * dIn), b_dec: vec(dIn), hook: 'blocks.0.hook_resid_post' };
}

const dir = mkdtempSync(join(tmpdir(), 'toy-sae-'));
writeToyDictionary(dir, randomToy(6, 10, 7));

runDictionaryPluginConformance(toyDictionaryPlugin(), { dir, ops: referenceOps(), describe, it, context: { dIn: 6 } });

describe('toy format', () => {
  it('refuses a truncated weights file with a FormatError', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'toy-sae-'));
    writeToyDictionary(bad, randomToy(4, 5, 1));
    writeFileSync(join(bad, 'weights.f32'), new Uint8Array(12));
    await expect(toyDictionaryPlugin().load(bad, { ops: referenceOps() })).rejects.toThrow(FormatError);
  });

  it('reports the hook from toy.json when detecting', async () => {
    expect(await toyDictionaryPlugin().detect(dir)).toMatchObject({ ok: true, hook: 'blocks.0.hook_resid_post' });
  });
});
