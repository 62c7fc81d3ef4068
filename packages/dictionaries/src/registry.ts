// The dictionary plugin registry of one engine instance (never a global): registration rules,
// auto-detection across plugins with one combined error, and plugins named by npm package.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ConfigError, NotFoundError, SfcError,
  type Dictionary, type DictionaryDetection, type DictionaryLoadContext, type DictionaryPlugin,
} from '@sfc/core';
import { isDirectory } from './plugins/plugin-io.js';

function namespaceOf(p: DictionaryPlugin): string {
  return p.meta.namespace ?? p.meta.name;
}

function label(p: DictionaryPlugin): string {
  return `${p.meta.name}${p.meta.version ? `@${p.meta.version}` : ''}`;
}

export function isDictionaryPlugin(x: unknown): x is DictionaryPlugin {
  if (typeof x !== 'object' || x === null) return false;
  const p = x as Partial<DictionaryPlugin>;
  return typeof p.meta === 'object' && p.meta !== null && typeof p.meta.name === 'string'
    && typeof p.detect === 'function' && typeof p.load === 'function';
}

export interface Detected {
  readonly plugin: DictionaryPlugin;
  readonly detection: DictionaryDetection;
}

export class DictionaryRegistry {
  private readonly list: DictionaryPlugin[] = [];

  constructor(plugins: readonly DictionaryPlugin[] = []) {
    for (const p of plugins) this.register(p);
  }

  /** Adds a plugin. The same object again is a no-op; another plugin with its namespace is a ConfigError. */
  register(plugin: DictionaryPlugin): this {
    if (!isDictionaryPlugin(plugin)) {
      throw new ConfigError('not a dictionary plugin (needs meta.name, detect(dir) and load(dir, ctx))',
        'pass the object a plugin factory returns, e.g. saelens()');
    }
    if (this.list.includes(plugin)) return this;
    const ns = namespaceOf(plugin);
    const clash = this.list.find((p) => namespaceOf(p) === ns);
    if (clash) {
      throw new ConfigError(`dictionary plugins ${label(clash)} and ${label(plugin)} both use the namespace '${ns}'`,
        'register only one of them, or give one a different meta.namespace');
    }
    this.list.push(plugin);
    return this;
  }

  get plugins(): readonly DictionaryPlugin[] {
    return this.list;
  }

  /** The plugin registered under `name` (meta.name or namespace), or a NotFoundError listing them. */
  get(name: string): DictionaryPlugin {
    const p = this.list.find((x) => x.meta.name === name || namespaceOf(x) === name);
    if (!p) {
      throw new NotFoundError(`no dictionary loader named '${name}'`,
        `registered loaders: ${this.list.map((x) => x.meta.name).join(', ') || 'none'}; add third-party ones under dictionaries.plugins in sfc.config.json`);
    }
    return p;
  }

  /** Every plugin's verdict on `dir`, in registration order (a throwing detect counts as "no"). */
  async detectAll(dir: string): Promise<Detected[]> {
    const out: Detected[] = [];
    for (const plugin of this.list) {
      let detection: DictionaryDetection;
      try {
        detection = await plugin.detect(dir);
      } catch (e) {
        detection = { ok: false, reason: `detect failed: ${(e as Error).message}` };
      }
      out.push({ plugin, detection });
    }
    return out;
  }

  /** The first plugin that recognises `dir`; otherwise a NotFoundError with what each plugin said. */
  async detect(dir: string): Promise<Detected> {
    if (!isDirectory(dir)) throw new NotFoundError(`dictionary folder ${dir} does not exist`, 'check the dictionaries path');
    const all = await this.detectAll(dir);
    const hit = all.find((d) => d.detection.ok);
    if (hit) return hit;
    throw new NotFoundError(`no dictionary loader recognised ${dir}: ${all.map((d) => `${d.plugin.meta.name}: ${d.detection.reason}`).join('; ')}`,
      'point at a folder holding one dictionary (SAELens cfg.json + sae_weights.safetensors, dictionary_learning ae.pt, Gemma Scope params.npz, Llama Scope hyperparams.json + checkpoints/final.safetensors or lm-saes 2.x config.json + sae_weights.safetensors), or add a plugin for its format');
  }

  /** Loads `dir` with the named loader, or the first that detects it. */
  async load(dir: string, ctx: DictionaryLoadContext, loader?: string): Promise<Dictionary> {
    const plugin = loader !== undefined ? this.get(loader) : (await this.detect(dir)).plugin;
    try {
      return await plugin.load(dir, ctx);
    } catch (e) {
      if (e instanceof SfcError) throw e;
      throw new ConfigError(`dictionary loader ${label(plugin)} failed on ${dir}: ${(e as Error).message}`,
        'this is a bug in the plugin; report it to its author', { cause: e });
    }
  }
}

export interface ResolvePluginOptions {
  /** Resolve the package from this folder (e.g. the config file's) instead of from @sfc/dictionaries. */
  readonly from?: string;
  /** Passed to the package's factory. */
  readonly options?: unknown;
}

/**
 * Turns a config entry into a plugin: a plugin object is returned as is; a string is an npm
 * package (or path) whose default export is a factory `(options?) => DictionaryPlugin`
 * (a default-exported plugin object is accepted too), loaded with dynamic import().
 */
export async function resolvePlugin(spec: string | DictionaryPlugin, opts: ResolvePluginOptions = {}): Promise<DictionaryPlugin> {
  if (typeof spec !== 'string') {
    if (isDictionaryPlugin(spec)) return spec;
    throw new ConfigError('dictionaries.plugins entries must be package names or plugin objects');
  }
  let mod: Record<string, unknown>;
  try {
    if (opts.from !== undefined) {
      const resolved = createRequire(join(opts.from, 'noop.js')).resolve(spec);
      mod = await import(pathToFileURL(resolved).href) as Record<string, unknown>;
    } else {
      mod = await import(spec) as Record<string, unknown>;
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || /Cannot find (module|package)|Failed to load url/.test((e as Error).message)) {
      throw new NotFoundError(`dictionary plugin package '${spec}' is not installed`, `npm install ${spec}`, { cause: e });
    }
    throw new ConfigError(`dictionary plugin package '${spec}' failed to load: ${(e as Error).message}`, 'check the package builds and its @sfc/core peer version', { cause: e });
  }
  const exported = mod.default ?? mod.plugin;
  const plugin = typeof exported === 'function' ? await (exported as (o?: unknown) => unknown)(opts.options) : exported;
  if (!isDictionaryPlugin(plugin)) {
    throw new ConfigError(`package '${spec}' does not default-export a dictionary plugin factory`,
      'its default export must be a function returning { meta, detect, load } (see examples/sfc-dictionary-example)');
  }
  return plugin;
}
