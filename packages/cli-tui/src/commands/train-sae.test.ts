// `sfc train-sae` in-process on the small-a fixture model: a SAELens folder that the dictionary
// loaders read back, the sfc.train-sae/v1 JSON line, progress on stderr, and typed failures; and
// Gemma's optional embed submodule named by --submodule.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { listSubmodules } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { loadDictionarySet } from '@sfc/dictionaries';
import { runCli } from '../cli.js';
import { memoryIO } from '../io.js';

const SMALL_A = fileURLToPath(new URL('../../../../fixtures/small-a', import.meta.url));
const GEMMA2 = fileURLToPath(new URL('../../../../fixtures/models/gemma2-a', import.meta.url));

function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sfc-train-sae-'));
  const lines = readFileSync(join(SMALL_A, 'data.jsonl'), 'utf8').trim().split('\n')
    .flatMap((l) => { const e = JSON.parse(l); return [e.clean_prefix + e.clean_answer, e.patch_prefix + e.patch_answer]; });
  writeFileSync(join(dir, 'text.txt'), `${lines.join('\n')}\n`);
  return dir;
}

async function run(args: string[], cwd: string) {
  const io = memoryIO({ cwd });
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

const BASE = ['train-sae', '--model', SMALL_A, '--backend', 'tfjs-cpu', '--text-file', 'text.txt'];

describe('sfc train-sae', () => {
  it('trains, reports quality and writes a SAELens folder the loaders read', async () => {
    const cwd = workspace();
    const r = await run([...BASE, '--submodule', 'blocks.1.hook_resid_post', '--dict-size', '64', '--l1', '0.5', '--steps', '60',
      '--batch-size', '64', '--lr', '0.01', '--seed', '3', '--out', 'saes/resid_1', '--json'], cwd);
    expect(r.err).not.toContain('error:');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.out.trim());
    expect(summary).toMatchObject({ schema: 'sfc.train-sae/v1', submodule: 'resid_1', hook: 'blocks.1.hook_resid_post', dIn: 32, dSae: 64 });
    expect(summary.fve).toBeGreaterThan(0.5);
    expect(summary.fve).toBeLessThanOrEqual(1);
    expect(summary.l0).toBeGreaterThan(0);
    expect(summary.heldOutTokens).toBeGreaterThan(0);
    expect(r.err).toMatch(/training: \d+\/60/);
    expect(r.err).toMatch(/wrote saes\/resid_1: SAELens standard SAE, d_in 32, d_sae 64; held-out FVE/);
    expect(readdirSync(join(cwd, 'saes', 'resid_1')).sort()).toEqual(['cfg.json', 'sae_weights.safetensors', 'training.json']);
    const dicts = await loadDictionarySet(join(cwd, 'saes'), listSubmodules(2, 'gpt_neox'), { ops: referenceOps(), dIn: 32, missing: 'skip' });
    expect([...dicts.keys()]).toEqual(['resid_1']);
    expect(dicts.get('resid_1')).toMatchObject({ architecture: 'relu', dSae: 64, format: 'saelens' });
  });

  it('--submodule hook_embed on Gemma trains on its embed submodule, which only exists when asked for', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'sfc-train-sae-gemma-'));
    const data = JSON.parse(readFileSync(join(GEMMA2, 'edges', 'data.json'), 'utf8')) as { clean_text: string[]; patch_text: string[] };
    writeFileSync(join(cwd, 'text.txt'), `${[...data.clean_text, ...data.patch_text].join('\n')}\n`);
    const r = await run(['train-sae', '--model', GEMMA2, '--backend', 'tfjs-cpu', '--text-file', 'text.txt', '--submodule', 'hook_embed',
      '--dict-size', '16', '--l1', '0.5', '--steps', '5', '--batch-size', '16', '--out', 'saes/embed', '--json'], cwd);
    expect(r.err).not.toContain('error:');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out.trim())).toMatchObject({ schema: 'sfc.train-sae/v1', submodule: 'embed', hook: 'hook_embed', dIn: 32, dSae: 16 });
  });

  it('is seeded: the same flags give the same weights', async () => {
    const cwd = workspace();
    const args = [...BASE, '--submodule', 'mlp_0', '--dict-size', '32', '--l1', '1', '--steps', '10', '--batch-size', '32', '--quiet'];
    expect((await run([...args, '--out', 'a'], cwd)).code).toBe(0);
    expect((await run([...args, '--out', 'b'], cwd)).code).toBe(0);
    const w = (d: string) => readFileSync(join(cwd, d, 'sae_weights.safetensors'));
    expect(w('a').equals(w('b'))).toBe(true);
  });

  it('fails with typed errors before training', async () => {
    const cwd = workspace();
    const missing = await run([...BASE.slice(0, -1), 'nope.txt', '--submodule', 'resid_0', '--dict-size', '8', '--l1', '1', '--out', 'o'], cwd);
    expect(missing.code).toBe(3);
    expect(missing.err).toMatch(/text file nope\.txt does not exist/);
    const badSize = await run([...BASE, '--submodule', 'resid_0', '--dict-size', '0', '--l1', '1', '--out', 'o'], cwd);
    expect(badSize.code).toBe(2);
    expect(badSize.err).toMatch(/--dict-size must be an integer ≥ 1, got 0/);
    const badSub = await run([...BASE, '--submodule', 'resid_7', '--dict-size', '8', '--l1', '1', '--out', 'o'], cwd);
    expect(badSub.code).toBe(3);
    expect(badSub.err).toMatch(/unknown submodule 'resid_7'/);
    const noFlags = await run(['train-sae', '--model', SMALL_A], cwd);
    expect(noFlags.code).toBe(2);
    expect(noFlags.err).toMatch(/Missing required arguments/);
  });
});
