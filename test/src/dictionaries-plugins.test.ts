// A third-party dictionary plugin, named in an sfc.config.json-like object, is resolved by
// package name (dynamic import), registered next to sfc's own loaders, auto-detected and used.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listSubmodules, NotFoundError } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { defaultDictionaryPlugins, describeDictionary, DictionaryRegistry, loadDictionarySet, resolvePlugin } from '@sfc/dictionaries';
import { writeToyDictionary } from 'sfc-dictionary-example';

const config = JSON.parse('{"dictionaries": {"plugins": ["sfc-dictionary-example"]}}') as { dictionaries: { plugins: string[] } };

async function registryFromConfig(): Promise<DictionaryRegistry> {
  const registry = new DictionaryRegistry(defaultDictionaryPlugins());
  for (const name of config.dictionaries.plugins) registry.register(await resolvePlugin(name));
  return registry;
}

function toy(dir: string, hook: string, seed: number): void {
  let s = seed;
  const r = () => { s = (s * 69069 + 1) % 4294967296; return s / 4294967296 - 0.5; };
  const v = (n: number) => Float32Array.from({ length: n }, r);
  writeToyDictionary(dir, { dIn: 32, dSae: 12, W_enc: v(32 * 12), b_enc: v(12), W_dec: v(12 * 32), b_dec: v(32), hook });
}

describe('third-party dictionary plugins from config', () => {
  it('resolves sfc-dictionary-example by name and auto-detects its format', async () => {
    const registry = await registryFromConfig();
    expect(registry.plugins.map((p) => p.meta.name)).toContain('sfc-dictionary-example');
    const dir = mkdtempSync(join(tmpdir(), 'sfc-e2e-toy-'));
    toy(dir, 'blocks.1.hook_resid_post', 3);
    const ops = referenceOps();
    const dict = await registry.load(dir, { ops, dIn: 32 });
    expect(describeDictionary(dict)).toMatchObject({ format: 'toy-sae', architecture: 'relu', dIn: 32, dSae: 12, hook: 'blocks.1.hook_resid_post' });
    const x = ops.tensor(Float32Array.from({ length: 64 }, (_, i) => Math.cos(i)), [2, 32]);
    expect(dict.encode(x).shape).toEqual([2, 12]);
    dict.dispose();
  });

  it('loads a set of toy dictionaries attached by hook name', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sfc-e2e-toyset-'));
    const subs = listSubmodules(2, 'gpt_neox');
    subs.forEach((s, i) => { mkdirSync(join(root, `toy${i}`)); toy(join(root, `toy${i}`), s.hook, i + 1); });
    const set = await loadDictionarySet(root, subs, { ops: referenceOps(), dIn: 32, plugins: await registryFromConfig() });
    expect([...set.keys()]).toEqual(subs.map((s) => s.name));
    expect([...set.values()].every((d) => d.format === 'toy-sae')).toBe(true);
  });

  it('without the plugin the folder is not recognised, and the error lists every loader', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfc-e2e-toy-'));
    toy(dir, 'hook_embed', 1);
    const err = await new DictionaryRegistry(defaultDictionaryPlugins()).load(dir, { ops: referenceOps() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toMatch(/saelens: .*dictionary-learning: .*gemma-scope: .*identity: /);
  });
});
