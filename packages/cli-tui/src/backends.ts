// Backend selection: the one place that maps a backend id from the config or --backend to a
// backend object, with the backend-specific settings of the config (`onnx.*`). Built-in ids load
// their package lazily (so `sfc --help` never loads tfjs); any other id is a package (or module
// file) exporting a backend factory. A list is tried in order and every failure is reported
// together.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BackendError, CapabilityError, ConfigError, isSfcError, NotFoundError, type Backend } from '@sfc/core';
import type { OnnxBackendOptions } from '@sfc/backend-onnx';
import { CONFIG_FILE_NAME, describeSource, type EffectiveConfig } from './config/config.js';
import { CONFIG_FIELDS } from './config/schema.js';
import { isModulePath } from './config/validate.js';

type TfjsFlavor = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
const TFJS_FLAVORS: Record<string, TfjsFlavor> = { 'tfjs': 'auto', 'tfjs-cpu': 'cpu', 'tfjs-wasm': 'wasm', 'tfjs-tensorflow': 'tensorflow' };

/** What a backend package may export: a factory, sync or async. */
type Factory = (options?: unknown) => Backend | Promise<Backend>;

export interface SelectBackendOptions {
  /** Where third-party backend packages are resolved from (the user's project). */
  readonly cwd?: string;
  /** Import function (tests substitute it). */
  readonly importer?: (specifier: string) => Promise<Record<string, unknown>>;
  /** Options for `onnxBackend()` when the id is `onnx` (from the config's `onnx.*` keys). */
  readonly onnx?: OnnxBackendOptions;
}

const ONNX_KEYS = CONFIG_FIELDS.map((f) => f.path).filter((p) => p.startsWith('onnx.'));

/**
 * The `onnx.*` settings of the effective config as `onnxBackend()` options. Setting one for a
 * backend list without `onnx` is a ConfigError when the list comes from the config file (or the
 * default) — the file contradicts itself — and only a warning when `--backend` replaced the
 * file's choice for this run.
 */
export function onnxSettings(config: EffectiveConfig, warn: (message: string) => void): OnnxBackendOptions {
  const backend = config.get<string | string[]>('backend') ?? [];
  const ids = typeof backend === 'string' ? [backend] : backend;
  const set = ONNX_KEYS.filter((k) => { const s = config.source(k); return s !== undefined && s.kind !== 'default'; });
  if (set.length && !ids.includes('onnx')) {
    const where = set.map((k) => `${k} (${describeSource(config.source(k))})`).join(', ');
    const src = config.source('backend');
    if (src?.kind === 'flag') {
      warn(`${where} ignored: ${src.flag} ${ids.join(',')} has no onnx backend, and onnx.* settings apply to onnx only`);
    } else {
      throw new ConfigError(`${where} set, but the backend is ${ids.join(', ')}${src?.kind === 'file' ? '' : ' (the default)'}: onnx.* settings apply to the onnx backend only`,
        `set "backend": "onnx" (or a list that includes it) in ${CONFIG_FILE_NAME}, or remove the onnx keys; the tfjs backends take no thread or execution-provider settings (docs/backends.md)`);
    }
  }
  const cacheDir = config.get<string>('onnx.cacheDir');
  return {
    intraOpNumThreads: config.get<number>('onnx.threads'),
    executionProviders: config.get<string[]>('onnx.providers'),
    ...(cacheDir !== undefined ? { cacheDir } : {}),
    ...(config.get<boolean>('onnx.embeddingOnDisk') ? { embeddingOnDisk: true } : {}),
  };
}

export async function selectBackend(ids: string | readonly string[], options: SelectBackendOptions = {}): Promise<Backend> {
  const list = typeof ids === 'string' ? [ids] : [...ids];
  if (list.length === 1) return createBackend(list[0]!, options);
  const failures: string[] = [];
  let first: unknown;
  for (const id of list) {
    try {
      return await createBackend(id, options);
    } catch (e) {
      first ??= e;
      failures.push(`tried ${id}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  throw new BackendError(`no backend could be created (${failures.join('; ')})`,
    isSfcError(first) && first.hint ? first.hint : 'install or choose another backend with --backend', { cause: first });
}

export async function createBackend(id: string, options: SelectBackendOptions = {}): Promise<Backend> {
  const importer = options.importer ?? ((s: string) => import(s) as Promise<Record<string, unknown>>);
  const flavor = TFJS_FLAVORS[id];
  if (flavor) {
    const mod = await importer('@sfc/backend-tfjs');
    const factory = mod.tfjsBackend;
    if (typeof factory !== 'function') {
      throw new CapabilityError('the tfjs backend is not available in this build (@sfc/backend-tfjs exports no tfjsBackend)',
        'rebuild sfc with `npm run build` at the repo root');
    }
    return checkBackend(await (factory as Factory)({ flavor }), '@sfc/backend-tfjs');
  }
  if (id === 'onnx') {
    const mod = await importer('@sfc/backend-onnx');
    const factory = mod.onnxBackend;
    // Deliberately no fallback: a user who asked for onnx must know they did not get it.
    if (typeof factory !== 'function') {
      throw new CapabilityError('the onnx backend is not available in this build', 'use --backend tfjs (or tfjs-wasm, tfjs-cpu), or set "backend": "tfjs" in sfc.config.json');
    }
    return checkBackend(await (factory as Factory)(options.onnx ?? {}), '@sfc/backend-onnx');
  }
  return thirdParty(id, importer, options.cwd ?? process.cwd());
}

async function thirdParty(id: string, importer: (s: string) => Promise<Record<string, unknown>>, cwd: string): Promise<Backend> {
  const load = async (specifier: string): Promise<Record<string, unknown>> => {
    try {
      return await importer(specifier);
    } catch (e) {
      if (isModuleNotFound(e)) throw e;
      throw new BackendError(`backend '${id}' failed to load: ${(e as Error).message}`, 'check that the package is built and compatible with this sfc', { cause: e });
    }
  };
  let mod: Record<string, unknown>;
  try {
    mod = await load(isModulePath(id) ? pathToFileURL(id).href : id);
  } catch (e) {
    if (!isModuleNotFound(e)) throw e;
    // Not next to sfc: try the user's project (sfc may be installed globally).
    const fromCwd = isModulePath(id) ? undefined : resolveFrom(cwd, id);
    if (!fromCwd) {
      throw new NotFoundError(isModulePath(id) ? `backend module ${id} does not exist`
        : `backend '${id}' is not a built-in backend and no package of that name is installed`,
      `built-in backends: tfjs, tfjs-cpu, tfjs-wasm, tfjs-tensorflow, onnx; for a third-party backend run \`npm install ${id}\``);
    }
    mod = await load(pathToFileURL(fromCwd).href);
  }
  const factory = pickFactory(mod);
  if (!factory) {
    throw new ConfigError(`package '${id}' exports no backend factory`,
      'a backend package exports a function returning a Backend: `export default`, `createBackend`, or one export named `...Backend`');
  }
  return checkBackend(await factory(), id);
}

function pickFactory(mod: Record<string, unknown>): Factory | undefined {
  if (typeof mod.default === 'function') return mod.default as Factory;
  if (typeof mod.createBackend === 'function') return mod.createBackend as Factory;
  const named = Object.entries(mod).filter(([k, v]) => /Backend$/.test(k) && typeof v === 'function');
  return named.length === 1 ? (named[0]![1] as Factory) : undefined;
}

function checkBackend(b: unknown, from: string): Backend {
  const o = b as Partial<Backend> | null;
  const missing = ['name', 'capabilities', 'ops', 'loadModel', 'describe', 'dispose'].filter((k) => !o || (o as Record<string, unknown>)[k] === undefined);
  if (missing.length) {
    throw new BackendError(`${from} returned an object that is not an sfc backend (missing ${missing.join(', ')})`,
      'the package must implement the Backend interface of @sfc/core');
  }
  return o as Backend;
}

function isModuleNotFound(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

function resolveFrom(cwd: string, id: string): string | undefined {
  try {
    return createRequire(join(cwd, 'package.json')).resolve(id);
  } catch {
    return undefined;
  }
}
