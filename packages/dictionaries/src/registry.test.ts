import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, NotFoundError, type DictionaryPlugin } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { DictionaryRegistry, resolvePlugin } from './registry.js';
import { defaultDictionaryPlugins, IdentityDictionary, saelens } from './index.js';

const fake = (name: string, namespace?: string, ok = false): DictionaryPlugin => ({
  meta: { name, version: '1.0.0', ...(namespace ? { namespace } : {}) },
  detect: async () => ({ ok, reason: ok ? 'mine' : `${name} wants foo.bin` }),
  load: async (_dir, ctx) => new IdentityDictionary(ctx.ops, 4),
});

describe('DictionaryRegistry', () => {
  it('registering the same plugin object twice is a no-op', () => {
    const p = saelens();
    const r = new DictionaryRegistry([p]);
    r.register(p);
    expect(r.plugins).toHaveLength(1);
  });

  it('refuses two plugins with one namespace, naming both', () => {
    const r = new DictionaryRegistry([fake('sfc-dictionary-a', 'toy')]);
    expect(() => r.register(fake('sfc-dictionary-b', 'toy'))).toThrow(ConfigError);
    expect(() => r.register(fake('sfc-dictionary-b', 'toy'))).toThrow(/sfc-dictionary-a@1\.0\.0 and sfc-dictionary-b@1\.0\.0.*'toy'/);
    expect(() => new DictionaryRegistry([saelens(), saelens()])).toThrow(/namespace 'saelens'/);
  });

  it('refuses objects that are not plugins', () => {
    expect(() => new DictionaryRegistry().register({ meta: { name: 'x' } } as unknown as DictionaryPlugin)).toThrow(ConfigError);
  });

  it('lists what every plugin said when none matches', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfc-reg-'));
    writeFileSync(join(dir, 'weights.bin'), 'x');
    const r = new DictionaryRegistry([...defaultDictionaryPlugins(), fake('sfc-dictionary-toy')]);
    const err = await r.detect(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    const msg = (err as Error).message;
    for (const part of ['saelens: no cfg.json', 'dictionary-learning: no ae.pt', 'gemma-scope: no params.npz', 'identity: ', 'sfc-dictionary-toy: sfc-dictionary-toy wants foo.bin']) {
      expect(msg).toContain(part);
    }
  });

  it('picks the first plugin that detects the folder, and loads by name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfc-reg-'));
    const r = new DictionaryRegistry([fake('no-1'), fake('yes', undefined, true), fake('yes-too', 'other', true)]);
    expect((await r.detect(dir)).plugin.meta.name).toBe('yes');
    const d = await r.load(dir, { ops: referenceOps() }, 'yes-too');
    expect(d.dIn).toBe(4);
    const err = await r.load(dir, { ops: referenceOps() }, 'nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toBe("no dictionary loader named 'nope'");
    expect((err as NotFoundError).hint).toMatch(/registered loaders: no-1, yes, yes-too/);
  });

  it('wraps a plugin crash that is not an SfcError', async () => {
    const broken: DictionaryPlugin = { ...fake('broken', undefined, true), load: async () => { throw new TypeError('oops'); } };
    const err = await new DictionaryRegistry([broken]).load(mkdtempSync(join(tmpdir(), 'sfc-reg-')), { ops: referenceOps() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/broken@1\.0\.0 failed.*oops/);
  });

  it('counts a throwing detect as "no" with its message', async () => {
    const thrower: DictionaryPlugin = { ...fake('thrower'), detect: async () => { throw new Error('disk on fire'); } };
    const err = await new DictionaryRegistry([thrower]).detect(mkdtempSync(join(tmpdir(), 'sfc-reg-'))).catch((e: unknown) => e);
    expect((err as Error).message).toContain('thrower: detect failed: disk on fire');
  });

  it('says when the folder does not exist', async () => {
    await expect(new DictionaryRegistry(defaultDictionaryPlugins()).detect('/nonexistent/sfc')).rejects.toThrow(NotFoundError);
  });
});

describe('resolvePlugin', () => {
  it('passes plugin objects through', async () => {
    const p = saelens();
    expect(await resolvePlugin(p)).toBe(p);
  });

  it('reports a package that is not installed with the npm command', async () => {
    const err = await resolvePlugin('sfc-dictionary-does-not-exist').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).hint).toBe('npm install sfc-dictionary-does-not-exist');
  });

  it('refuses a package whose default export is not a plugin factory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfc-plugin-'));
    writeFileSync(join(dir, 'bad.mjs'), 'export default () => ({ meta: { name: "x" } });');
    await expect(resolvePlugin(join(dir, 'bad.mjs'))).rejects.toThrow(/does not default-export a dictionary plugin factory/);
  });

  it('calls the default-exported factory with the options', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfc-plugin-'));
    writeFileSync(join(dir, 'good.mjs'), `export default (o) => ({ meta: { name: 'good-' + o.tag }, detect: async () => ({ ok: false, reason: 'no' }), load: async () => { throw new Error('x'); } });`);
    const p = await resolvePlugin(join(dir, 'good.mjs'), { options: { tag: 'a' } });
    expect(p.meta.name).toBe('good-a');
  });
});
