import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BackendError, CapabilityError, ConfigError, NotFoundError, type Backend } from '@sfc/core';
import { createBackend, onnxSettings, selectBackend } from './backends.js';
import { resolveConfig, type FlagValue } from './config/config.js';

const fake = (name: string): Backend => ({
  name, capabilities: { grad: true, devices: ['cpu'], dtypes: ['float32'] }, ops: {} as Backend['ops'],
  describe: () => `${name} fake`, loadModel: async () => { throw new Error('unused'); }, dispose: async () => undefined,
});

describe('selectBackend', () => {
  it('maps tfjs ids to flavours of tfjsBackend', async () => {
    const seen: unknown[] = [];
    const importer = async (s: string) => {
      expect(s).toBe('@sfc/backend-tfjs');
      return { tfjsBackend: async (o: unknown) => { seen.push(o); return fake('tfjs'); } };
    };
    for (const id of ['tfjs', 'tfjs-cpu', 'tfjs-wasm', 'tfjs-tensorflow']) await createBackend(id, { importer });
    expect(seen).toEqual([{ flavor: 'auto' }, { flavor: 'cpu' }, { flavor: 'wasm' }, { flavor: 'tensorflow' }]);
  });

  it('refuses onnx with a CapabilityError naming tfjs when the package has no onnxBackend, never falling back', async () => {
    const err = await createBackend('onnx', { importer: async () => ({ tfjsBackend: async () => fake('tfjs') }) }).catch((e) => e);
    expect(err).toBeInstanceOf(CapabilityError);
    expect(err.message).toBe('the onnx backend is not available in this build');
    expect(err.hint).toContain('tfjs');
    const ok = await createBackend('onnx', { importer: async (s) => (s === '@sfc/backend-onnx' ? { onnxBackend: () => fake('onnx') } : {}) });
    expect(ok.name).toBe('onnx');
  });

  it('matches what the real @sfc/backend-onnx package exports', async () => {
    const mod = await import('@sfc/backend-onnx') as Record<string, unknown>;
    if (typeof mod.onnxBackend === 'function') return; // the onnx backend exists: nothing to refuse
    await expect(createBackend('onnx')).rejects.toThrow(CapabilityError);
  });

  it('loads a third-party backend from a module file, by its default, createBackend or *Backend export', async () => {
    const d = mkdtempSync(join(tmpdir(), 'sfc-backend-'));
    const body = (exp: string) => `const b = { name: 'third', capabilities: { grad: false, devices: [], dtypes: [] }, ops: {}, describe: () => 'x', loadModel: async () => null, dispose: async () => {} };\n${exp}`;
    writeFileSync(join(d, 'a.mjs'), body('export default async () => b;'));
    writeFileSync(join(d, 'b.mjs'), body('export function createBackend() { return b; }'));
    writeFileSync(join(d, 'c.mjs'), body('export const webgpuBackend = () => b; export const other = 1;'));
    writeFileSync(join(d, 'd.mjs'), 'export const nothing = 1;');
    writeFileSync(join(d, 'e.mjs'), 'export default () => ({ name: "half" });');
    for (const f of ['a', 'b', 'c']) expect((await createBackend(join(d, `${f}.mjs`))).name).toBe('third');
    await expect(createBackend(join(d, 'd.mjs'))).rejects.toThrow(ConfigError);
    await expect(createBackend(join(d, 'e.mjs'))).rejects.toThrow(/not an sfc backend \(missing capabilities, ops/);
  });

  it('says so when a named backend package is not installed', async () => {
    const err = await createBackend('sfc-backend-does-not-exist', { cwd: tmpdir() }).catch((e) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.hint).toContain('npm install sfc-backend-does-not-exist');
  });

  it('tries a list in order and reports every failure together', async () => {
    const importer = async (s: string) => (s === '@sfc/backend-tfjs' ? { tfjsBackend: async () => fake('tfjs-cpu') } : {});
    expect((await selectBackend(['onnx', 'tfjs-cpu'], { importer })).name).toBe('tfjs-cpu');
    const err = await selectBackend(['onnx', 'sfc-backend-nope'], { importer: async () => { throw Object.assign(new Error('x'), { code: 'ERR_MODULE_NOT_FOUND' }); }, cwd: tmpdir() }).catch((e) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect(err.message).toMatch(/^no backend could be created \(tried onnx: .*; tried sfc-backend-nope: .*\)$/);
  });
});

describe('onnx settings from the config', () => {
  async function settings(config: unknown, flags: FlagValue[] = []) {
    const root = mkdtempSync(join(tmpdir(), 'sfc-onnx-settings-'));
    mkdirSync(join(root, 'sub'));
    mkdirSync(join(root, '.git')); // the project root: the config search stops here
    writeFileSync(join(root, 'sfc.config.json'), JSON.stringify(config));
    const warnings: string[] = [];
    const cfg = await resolveConfig({ cwd: join(root, 'sub'), flags });
    return { root, file: cfg.file!, warnings, get: () => onnxSettings(cfg, (m) => warnings.push(m)) };
  }

  it('turns onnx.* into onnxBackend options, which reach the factory', async () => {
    const s = await settings({ backend: 'onnx', onnx: { threads: 3, providers: ['cuda', 'cpu'], cacheDir: 'graphs' } });
    const options = s.get();
    expect(options).toEqual({ intraOpNumThreads: 3, executionProviders: ['cuda', 'cpu'], cacheDir: join(s.root, 'graphs') });
    const seen: unknown[] = [];
    const importer = async () => ({ onnxBackend: (o: unknown) => { seen.push(o); return fake('onnx'); } });
    await selectBackend(['onnx', 'tfjs'], { importer, onnx: options });
    expect(seen).toEqual([options]);
    expect((await settings({ backend: 'onnx' })).get()).toEqual({ intraOpNumThreads: 2, executionProviders: ['cpu'] });
  });

  it('refuses onnx settings for a configured backend that is not onnx, saying which keys and why', async () => {
    const s = await settings({ backend: 'tfjs-wasm', onnx: { threads: 4 } });
    const err = (() => { try { s.get(); } catch (e) { return e; } })() as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe(`onnx.threads (${s.file}) set, but the backend is tfjs-wasm: onnx.* settings apply to the onnx backend only`);
    expect(err.hint).toContain('"backend": "onnx"');
    expect(err.hint).toContain('tfjs backends take no thread or execution-provider settings');
    const byDefault = await settings({ onnx: { providers: ['cpu'] } }); // backend left at its default, tfjs
    expect(() => byDefault.get()).toThrow(/^onnx\.providers \(.*\) set, but the backend is tfjs \(the default\): /);
  });

  it('only warns when --backend replaced the configured onnx for one run', async () => {
    const s = await settings({ backend: 'onnx', onnx: { threads: 4 } }, [{ key: 'backend', flag: '--backend', raw: 'tfjs-cpu' }]);
    expect(s.get()).toMatchObject({ intraOpNumThreads: 4 });
    expect(s.warnings).toEqual([`onnx.threads (${s.file}) ignored: --backend tfjs-cpu has no onnx backend, and onnx.* settings apply to onnx only`]);
    const listed = await settings({ backend: 'tfjs', onnx: { threads: 4 } }, [{ key: 'backend', flag: '--backend', raw: 'tfjs-wasm,onnx' }]);
    expect(listed.get()).toMatchObject({ intraOpNumThreads: 4 });
    expect(listed.warnings).toEqual([]);
  });
});
