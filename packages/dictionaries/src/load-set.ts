// Loading one dictionary per submodule from a folder of folders. Understood layouts:
//   DIR/{embed, attn_out_layer{l}, mlp_out_layer{l}, resid_out_layer{l}}/[<run-id>/]ae.pt   (feature-circuits)
//   DIR/{embed, attn_{l}, mlp_{l}, resid_{l}}/…                                             (sfc names)
//   DIR/<anything>/cfg.json whose hook_name resolves (TransformerLens hooks, HF module paths)
// Each folder may hold the dictionary itself or one run-id subfolder (e.g. `10_32768`).

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  ConfigError, NotFoundError, quoteName, resolveSubmoduleAlias,
  type Dictionary, type DictionaryPlugin, type Submodule, type TensorOps,
} from '@sfc/core';
import { defaultDictionaryPlugins } from './defaults.js';
import { IdentityDictionary } from './architectures/identity.js';
import { isDirectory } from './plugins/plugin-io.js';
import { DictionaryRegistry, type Detected } from './registry.js';

export interface LoadDictionarySetOptions {
  readonly ops: TensorOps;
  /** The model width; every dictionary's d_in must equal it. */
  readonly dIn: number;
  /** Loaders to try (default: defaultDictionaryPlugins()); a registry may be passed instead. */
  readonly plugins?: readonly DictionaryPlugin[] | DictionaryRegistry;
  /** Use this loader (by name) for every folder instead of auto-detection; 'identity' needs no folder. */
  readonly loader?: string;
  /** Loader options (normalizeDecoder, scalingFactor, …). */
  readonly options?: Readonly<Record<string, unknown>>;
  /** Which run-id subfolder to use when a submodule folder has several. */
  readonly runId?: string;
  /** Load only these submodules (names or aliases); default all found. */
  readonly only?: readonly string[];
  /**
   * Submodules without a dictionary: 'error' (default) throws listing them, 'skip' leaves them
   * out, 'identity' fills them with identity dictionaries (neurons).
   */
  readonly missing?: 'error' | 'skip' | 'identity';
  readonly warn?: (message: string) => void;
  /** Called after each dictionary loads (for progress displays). */
  readonly onLoaded?: (submodule: string, dictionary: Dictionary) => void;
}

interface Candidate {
  readonly submodule: Submodule;
  readonly dir: string;
  readonly detected: Detected;
  readonly via: string;
}

function subdirs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
}

/** The dictionary folder inside a submodule folder: itself, or its single (or chosen) run-id child. */
async function findDictionaryDir(registry: DictionaryRegistry, dir: string, runId: string | undefined): Promise<{ dir: string; detected: Detected } | { reasons: string }> {
  const here = await registry.detectAll(dir);
  const hit = here.find((d) => d.detection.ok);
  if (hit) return { dir, detected: hit };
  const children: { dir: string; detected: Detected }[] = [];
  for (const name of subdirs(dir)) {
    if (runId !== undefined && name !== runId) continue;
    const found = (await registry.detectAll(join(dir, name))).find((d) => d.detection.ok);
    if (found) children.push({ dir: join(dir, name), detected: found });
  }
  if (children.length === 1) return children[0]!;
  if (children.length > 1) {
    throw new ConfigError(`${dir} holds several dictionaries (${children.map((c) => c.dir.slice(dir.length + 1)).join(', ')})`,
      'choose one with the runId option (--dict-run)');
  }
  return { reasons: here.map((d) => `${d.plugin.meta.name}: ${d.detection.reason}`).join('; ') };
}

/**
 * Loads every dictionary under `dir` and returns them by submodule name, in forward order.
 * Width mismatches are ShapeErrors naming the submodule; two folders for one submodule, or a
 * folder name and a hook_name that disagree, are ConfigErrors. Folders matching no submodule
 * are reported through `warn` and skipped.
 */
export async function loadDictionarySet(dir: string, submodules: readonly Submodule[], options: LoadDictionarySetOptions): Promise<Map<string, Dictionary>> {
  const registry = options.plugins instanceof DictionaryRegistry ? options.plugins : new DictionaryRegistry(options.plugins ?? defaultDictionaryPlugins());
  const wanted = options.only?.map((n) => {
    const s = resolveSubmoduleAlias(n, submodules);
    if (!s) throw new NotFoundError(`unknown submodule '${n}'`, `valid submodules: ${submodules.map((x) => x.name).join(', ')}`);
    return s;
  }) ?? submodules;
  const out = new Map<string, Dictionary>();
  const loaded: Dictionary[] = [];
  const ctxFor = (s: Submodule) => ({
    ops: options.ops, dIn: options.dIn, submodule: s.name,
    ...(options.warn ? { warn: options.warn } : {}), ...(options.options ? { options: options.options } : {}),
  });

  if (options.loader === 'identity') {
    for (const s of wanted) out.set(s.name, new IdentityDictionary(options.ops, options.dIn, { hook: s.hook, source: 'identity' }));
    return out;
  }
  if (!isDirectory(dir)) throw new NotFoundError(`dictionaries folder ${dir} does not exist`, 'pass --dictionaries DIR (one subfolder per submodule)');

  const bySubmodule = new Map<string, Candidate>();
  for (const name of subdirs(dir)) {
    const path = join(dir, name);
    const byName = resolveSubmoduleAlias(name, submodules);
    const found = await findDictionaryDir(registry, path, options.runId);
    if ('reasons' in found) {
      if (byName) options.warn?.(`${path}: no dictionary found for ${byName.name} (${found.reasons})`);
      else options.warn?.(`${path}: skipped (not a submodule name and no dictionary: ${found.reasons})`);
      continue;
    }
    if (options.loader !== undefined && found.detected.plugin.meta.name !== options.loader) {
      options.warn?.(`${path}: looks like ${found.detected.plugin.meta.name}, but loader '${options.loader}' was requested`);
    }
    const hook = found.detected.detection.hook;
    const byHook = hook !== undefined ? resolveSubmoduleAlias(hook, submodules) : undefined;
    if (byName && byHook && byName.name !== byHook.name) {
      throw new ConfigError(`${path}: the folder name means ${byName.name} but its config says hook ${quoteName(hook)} (${byHook.name})`,
        'rename the folder or fix the hook in its config');
    }
    const submodule = byName ?? byHook;
    if (!submodule) {
      options.warn?.(`${path}: skipped (folder name ${quoteName(name)}${hook ? ` and hook ${quoteName(hook)}` : ''} match no submodule of this model)`);
      continue;
    }
    if (byName && hook !== undefined && !byHook) {
      options.warn?.(`${path}: hook ${quoteName(hook)} is not a submodule of this model; attaching to ${submodule.name} by folder name`);
    }
    const previous = bySubmodule.get(submodule.name);
    if (previous) {
      throw new ConfigError(`two dictionaries for ${submodule.name}: ${previous.dir} and ${found.dir}`, 'keep one folder per submodule');
    }
    bySubmodule.set(submodule.name, { submodule, dir: found.dir, detected: found.detected, via: byName ? 'folder name' : `hook ${quoteName(hook)}` });
  }

  const missing = wanted.filter((s) => !bySubmodule.has(s.name));
  if (missing.length && (options.missing ?? 'error') === 'error') {
    throw new NotFoundError(`no dictionary for ${missing.map((s) => s.name).join(', ')} in ${dir}`,
      `found: ${[...bySubmodule.keys()].join(', ') || 'none'}; name folders embed, attn_out_layer{l}, mlp_out_layer{l}, resid_out_layer{l} `
      + '(or attn_{l} …, or any name with a SAELens hook_name), or set missing: skip | identity');
  }
  try {
    for (const s of wanted) {
      const c = bySubmodule.get(s.name);
      let dict: Dictionary;
      if (c) {
        const plugin = options.loader !== undefined ? registry.get(options.loader) : c.detected.plugin;
        dict = await registry.load(c.dir, ctxFor(s), plugin.meta.name);
      } else if (options.missing === 'identity') {
        dict = new IdentityDictionary(options.ops, options.dIn, { hook: s.hook, source: 'identity (no dictionary found)' });
      } else {
        continue;
      }
      loaded.push(dict);
      out.set(s.name, dict);
      options.onLoaded?.(s.name, dict);
    }
  } catch (e) {
    for (const d of loaded) d.dispose();
    throw e;
  }
  return out;
}

/** Loads a single dictionary folder, auto-detecting its format (or with `loader`). */
export async function loadDictionary(dir: string, ctx: import('@sfc/core').DictionaryLoadContext,
  plugins: readonly DictionaryPlugin[] | DictionaryRegistry = defaultDictionaryPlugins(), loader?: string): Promise<Dictionary> {
  const registry = plugins instanceof DictionaryRegistry ? plugins : new DictionaryRegistry(plugins);
  return registry.load(dir, ctx, loader);
}
