import { chownSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, EXIT_CODES, NotFoundError } from '@sfc/core';
import { UsageError } from '../error-format.js';
import { configSearchFolders, describeSource, findConfigFile, resolveConfig } from './config.js';

function project(config?: unknown): { root: string; sub: string; file: string } {
  const root = mkdtempSync(join(tmpdir(), 'sfc-config-'));
  const sub = join(root, 'a', 'b');
  mkdirSync(sub, { recursive: true });
  mkdirSync(join(root, '.git')); // a repository: the config search stops here
  const file = join(root, 'sfc.config.json');
  if (config !== undefined) writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  return { root, sub, file };
}

describe('findConfigFile', () => {
  it('finds sfc.config.json in the folder or a parent', () => {
    const p = project({ model: 'm' });
    expect(findConfigFile(p.sub)).toBe(p.file);
    expect(findConfigFile(p.root)).toBe(p.file);
    expect(findConfigFile(project().sub)).toBeUndefined();
  });

  it('stops at the repository root or the home folder, and outside both searches the working folder only', () => {
    const outer = mkdtempSync(join(tmpdir(), 'sfc-config-outer-'));
    writeFileSync(join(outer, 'sfc.config.json'), JSON.stringify({ model: 'planted' })); // e.g. in a shared /tmp
    const repo = join(outer, 'repo');
    mkdirSync(join(repo, '.git'), { recursive: true });
    mkdirSync(join(repo, 'src'));
    expect(findConfigFile(join(repo, 'src'))).toBeUndefined();
    expect(configSearchFolders(join(repo, 'src'))).toEqual([join(repo, 'src'), repo]);
    const home = join(outer, 'home');
    mkdirSync(join(home, 'work'), { recursive: true });
    expect(findConfigFile(join(home, 'work'), home)).toBeUndefined();
    expect(configSearchFolders(join(home, 'work'), home)).toEqual([join(home, 'work'), home]);
    writeFileSync(join(home, 'sfc.config.json'), '{}');
    expect(findConfigFile(join(home, 'work'), home)).toBe(join(home, 'sfc.config.json'));
    const loose = join(outer, 'loose', 'deeper'); // no repository, not under home
    mkdirSync(loose, { recursive: true });
    expect(configSearchFolders(loose, home)).toEqual([loose]);
    expect(findConfigFile(loose, home)).toBeUndefined();
  });

  it.skipIf(process.getuid?.() !== 0)('refuses a found config file owned by another user (needs root to chown; skipped otherwise)', () => {
    const p = project({ model: 'm' });
    chownSync(p.file, 4321, 4321);
    expect(() => findConfigFile(p.sub)).toThrow(ConfigError);
    expect(() => findConfigFile(p.sub)).toThrow(/belongs to another user/);
  });
});

describe('resolveConfig', () => {
  it('layers defaults < file < flags and records each source', async () => {
    const p = project({ model: 'models/x', circuit: { steps: 4, method: 'attrib' } });
    const cfg = await resolveConfig({ cwd: p.sub, flags: [{ key: 'circuit.steps', flag: '--steps', raw: '7' }] });
    expect(cfg.file).toBe(p.file);
    expect(cfg.get('circuit.steps')).toBe(7);
    expect(cfg.source('circuit.steps')).toEqual({ kind: 'flag', flag: '--steps' });
    expect(cfg.get('circuit.method')).toBe('attrib');
    expect(cfg.source('circuit.method')).toEqual({ kind: 'file', path: p.file });
    expect(cfg.get('circuit.aggregation')).toBe('sum');
    expect(cfg.source('circuit.aggregation')).toEqual({ kind: 'default' });
    expect(cfg.get('data')).toBeUndefined();
    expect(describeSource(cfg.source('circuit.steps'))).toBe('flag --steps');
    expect(describeSource(cfg.source('circuit.method'))).toBe(p.file);
    expect(cfg.entries().map((e) => e.path)).toContain('evaluate.thresholds');
  });

  it('resolves paths from the file against its folder and paths from flags against the cwd', async () => {
    const p = project({ model: 'models/x', dictionaries: { submodules: { resid_0: 'saes/r0' } }, backend: ['tfjs'] });
    const cfg = await resolveConfig({ cwd: p.sub, flags: [{ key: 'data', flag: '--data', raw: 'd.jsonl' }, { key: 'backend', flag: '--backend', raw: './b.js,tfjs' }] });
    expect(cfg.get('model')).toBe(join(p.root, 'models/x'));
    expect(cfg.get('dictionaries.submodules')).toEqual({ resid_0: join(p.root, 'saes/r0') });
    expect(cfg.get('backend')).toEqual([join(p.sub, 'b.js'), 'tfjs']);
    expect(cfg.get('data')).toBe(join(p.sub, 'd.jsonl'));
  });

  it('takes backends and dictionary plugins from a config file by package name only, never a file path', async () => {
    for (const bad of [{ backend: './evil.js' }, { backend: ['tfjs', '/tmp/evil.mjs'] }, { dictionaries: { plugins: ['../evil-plugin'] } }, { dictionaries: { plugins: ['/abs/plugin.js'] } }]) {
      const p = project(bad);
      const err = await resolveConfig({ cwd: p.sub }).catch((e) => e);
      expect(err, JSON.stringify(bad)).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/is a file path; sfc\.config\.json names plugins and backends by package name only/);
      expect(err.message).toMatch(/npm install/);
    }
    const ok = project({ backend: ['onnx', '@acme/sfc-backend'], dictionaries: { plugins: ['@sfc/dictionaries', 'sfc-dictionary-example'] } });
    expect((await resolveConfig({ cwd: ok.sub })).get('dictionaries.plugins')).toEqual(['@sfc/dictionaries', 'sfc-dictionary-example']);
  });

  it('uses --config instead of searching', async () => {
    const p = project({ model: 'found' });
    const other = join(p.root, 'other.json');
    writeFileSync(other, JSON.stringify({ model: 'explicit' }));
    const cfg = await resolveConfig({ cwd: p.sub, configPath: '../../other.json' });
    expect(cfg.file).toBe(other);
    expect(cfg.get('model')).toBe(join(p.root, 'explicit'));
  });

  it('reports invalid files with the file, the key path and exit code 2', async () => {
    const p = project({ circuit: { steps: 'ten' } });
    const err = await resolveConfig({ cwd: p.sub }).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe(`${p.file}: circuit.steps: expected integer ≥ 1, got "ten"`);
    expect(err.hint).toContain('docs/config.md');
    expect(EXIT_CODES[err.code as ConfigError['code']]).toBe(2);
  });

  it('lists several problems at once', async () => {
    const p = project({ circuit: { steps: 0, aggregation: 'mean' } });
    const err = await resolveConfig({ cwd: p.sub }).catch((e) => e);
    expect(err.message).toContain('has 2 problems');
    expect(err.message).toContain('circuit.steps: expected integer ≥ 1, got 0');
    expect(err.message).toContain('circuit.aggregation: expected one of sum, none, got "mean"');
  });

  it('checks the onnx backend settings, saying what is allowed', async () => {
    const p = project({ backend: 'onnx', onnx: { threads: 0, providers: ['cuda', 'tpu'], cachedir: 'x' } });
    const err = await resolveConfig({ cwd: p.sub }).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe(`${p.file} has 3 problems:\n`
      + '  onnx.threads: expected integer ≥ 1, got 0\n'
      + '  onnx.providers[1]: expected one of cpu, cuda, got "tpu"\n'
      + "  onnx.cachedir: unknown key; did you mean 'onnx.cacheDir'?");
    const none = await resolveConfig({ cwd: project({ onnx: { providers: [] } }).sub }).catch((e) => e);
    expect(none.message).toContain('onnx.providers: expected a list of values from cpu, cuda (at least 1), got []');
    const one = await resolveConfig({ cwd: project({ onnx: { threads: '4' } }).sub }).catch((e) => e);
    expect(one.message).toContain('onnx.threads: expected integer ≥ 1, got "4"');
    const ok = await resolveConfig({ cwd: project({ backend: 'onnx', onnx: { threads: 4, providers: ['cuda', 'cpu'], cacheDir: 'cache' } }).sub });
    expect([ok.get('onnx.threads'), ok.get('onnx.providers'), ok.get('onnx.cacheDir')]).toEqual([4, ['cuda', 'cpu'], join(ok.file!, '..', 'cache')]);
  });

  it('reports JSON syntax errors and a missing --config file', async () => {
    const p = project('{"model": "x",}');
    await expect(resolveConfig({ cwd: p.root })).rejects.toThrow(ConfigError);
    await expect(resolveConfig({ cwd: p.root, configPath: 'nope.json' })).rejects.toThrow(NotFoundError);
  });

  it('rejects bad flag values naming the flag', async () => {
    const p = project();
    const err = await resolveConfig({ cwd: p.root, flags: [
      { key: 'circuit.steps', flag: '--steps', raw: 'ten' },
      { key: 'circuit.nodeThreshold', flag: '--node-threshold', raw: -1 },
    ] }).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe('--steps: expected integer ≥ 1, got "ten"\n--node-threshold: expected number ≥ 0, got -1');
  });

  it('require() names the flag and the key', async () => {
    const cfg = await resolveConfig({ cwd: project().root });
    expect(() => cfg.require('model', '--model')).toThrow(/missing --model/);
    try { cfg.require('model', '--model'); } catch (e) { expect((e as UsageError).hint).toContain('"model"'); }
  });
});
