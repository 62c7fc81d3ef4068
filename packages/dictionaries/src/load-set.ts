// Loading one dictionary per submodule from a folder of folders. Understood layouts:
//   DIR/{embed, attn_out_layer{l}, mlp_out_layer{l}, resid_out_layer{l}}/[<run-id>/]ae.pt   (feature-circuits)
//   DIR/{embed, attn_{l}, mlp_{l}, resid_{l}}/…                                             (sfc names)
//   DIR/<anything>/cfg.json whose hook_name resolves (TransformerLens hooks, HF module paths)
//   DIR/layer_{l}/width_16k/average_l0_71/params.npz                                         (a Gemma Scope release folder)
// Each folder may hold the dictionary itself or, up to three levels down, one run folder (e.g.
// `10_32768`, or Gemma Scope's `width_16k/average_l0_71`); `runId` picks one when there are several.
// A folder whose dictionaries each declare a different submodule (a whole Gemma Scope release)
// holds them all.
// The bytes the chosen SAEs take are checked against free memory before any is read.

import { readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import {
  checkMemory, collectGarbage, ConfigError, NotFoundError, quoteName, resolveSubmoduleAlias, selectSubmodules,
  type Dictionary, type DictionaryPlugin, type Submodule, type TensorOps,
} from '@sfc/core';
import { defaultDictionaryPlugins } from './defaults.js';
import { IdentityDictionary } from './architectures/identity.js';
import { llamaScopeWeightsFile } from './plugins/llama-scope.js';
import { isDirectory } from './plugins/plugin-io.js';
import { DictionaryRegistry, type Detected } from './registry.js';

export interface LoadDictionarySetOptions {
  readonly ops: TensorOps;
  /** The model width; every dictionary's d_in must equal it (or `dInOf`'s width for its submodule). */
  readonly dIn: number;
  /**
   * The width of a submodule when it is not `dIn` (Gemma's attn_l is the attention's z, heads ×
   * head_dim wide: pass core's `valueWidth(spec, name)`). Undefined falls back to `dIn`.
   */
  readonly dInOf?: (submodule: string) => number | undefined;
  /**
   * Bytes available for the dictionaries (default: free memory now, so a model already loaded
   * counts). Loading more is refused up front with the bytes needed; `false` skips the check.
   */
  readonly memoryBudget?: number | false;
  /** Loaders to try (default: defaultDictionaryPlugins()); a registry may be passed instead. */
  readonly plugins?: readonly DictionaryPlugin[] | DictionaryRegistry;
  /** Use this loader (by name) for every folder instead of auto-detection; 'identity' needs no folder. */
  readonly loader?: string;
  /** Loader options (normalizeDecoder, scalingFactor, …). */
  readonly options?: Readonly<Record<string, unknown>>;
  /** Which run-id subfolder to use when a submodule folder has several. */
  readonly runId?: string;
  /** Load only these submodules (names, aliases or `*` patterns such as `resid_*`: core's selectSubmodules); default all found. */
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

/** How deep below a submodule folder run folders are looked for (Gemma Scope: width_16k/average_l0_71). */
const RUN_DEPTH = 3;

/** Folders below `dir` (up to RUN_DEPTH levels) that hold a dictionary; a dictionary folder is not searched further. */
async function findRunsBelow(registry: DictionaryRegistry, dir: string, depth: number): Promise<Run[]> {
  const out: Run[] = [];
  for (const name of subdirs(dir)) {
    const child = join(dir, name);
    const found = (await registry.detectAll(child)).find((d) => d.detection.ok);
    if (found) out.push({ dir: child, detected: found });
    else if (depth > 1) out.push(...await findRunsBelow(registry, child, depth - 1));
  }
  return out;
}

/** Whether a run folder (its path below the submodule folder) is the one `runId` names: the whole path or its last parts. */
function isRun(rel: string, runId: string): boolean {
  const parts = rel.split(sep);
  const want = runId.split('/').filter(Boolean);
  return want.length > 0 && want.length <= parts.length && want.every((p, i) => parts[parts.length - want.length + i] === p);
}

type Run = { readonly dir: string; readonly detected: Detected };

/** The dictionaries in a folder: itself, or the run folders below it (filtered by `runId`). */
async function findRuns(registry: DictionaryRegistry, dir: string, runId: string | undefined): Promise<{ runs: Run[] } | { reasons: string }> {
  const here = await registry.detectAll(dir);
  const hit = here.find((d) => d.detection.ok);
  if (hit) return { runs: [{ dir, detected: hit }] };
  const runs = (await findRunsBelow(registry, dir, RUN_DEPTH)).filter((r) => runId === undefined || isRun(relative(dir, r.dir), runId));
  if (runs.length > 0) return { runs };
  return { reasons: here.map((d) => `${d.plugin.meta.name}: ${d.detection.reason}`).join('; ') };
}

function severalError(dir: string, runs: readonly Run[]): ConfigError {
  return new ConfigError(`${dir} holds several dictionaries (${runs.map((c) => quoteName(relative(dir, c.dir).split(sep).join('/'))).join(', ')})`,
    'choose one with the runId option (--dict-run), e.g. its folder name or its last path parts');
}

/**
 * The runs of one top-level folder, each with the submodule its hook names. A folder named after
 * a submodule, or whose runs do not all declare distinct submodules, must hold one dictionary; a
 * folder whose runs each declare another submodule (a Gemma Scope release: layer_0/…, layer_1/…)
 * holds them all.
 */
function placeRuns(dir: string, runs: readonly Run[], byName: Submodule | undefined, submodules: readonly Submodule[]): { run: Run; byHook: Submodule | undefined }[] {
  const placed = runs.map((run) => {
    const hook = run.detected.detection.hook;
    return { run, byHook: hook !== undefined ? resolveSubmoduleAlias(hook, submodules) : undefined };
  });
  if (placed.length === 1) return placed;
  if (byName || placed.some((p) => !p.byHook)) throw severalError(dir, runs);
  const groups = new Map<string, Run[]>();
  for (const p of placed) groups.set(p.byHook!.name, [...(groups.get(p.byHook!.name) ?? []), p.run]);
  for (const group of groups.values()) if (group.length > 1) throw severalError(dir, group);
  return placed;
}

/**
 * Bytes of the files directly in a dictionary folder, plus a Llama Scope weights file below it
 * (`checkpoints/final.safetensors`): what loading it reads into memory (0 when it is no folder:
 * loading says so).
 */
function folderBytes(dir: string): number {
  if (!isDirectory(dir)) return 0;
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isFile()) total += statSync(join(dir, e.name)).size;
  const nested = llamaScopeWeightsFile(dir);
  if (nested !== undefined && relative(dir, nested).includes(sep)) total += statSync(nested).size;
  return total;
}

/**
 * Refuses, before any is read, dictionary folders whose files add up to more than `budget` bytes
 * (default: free memory now), naming the bytes and what to load instead; returns their bytes.
 * `where` ends the action in the message (`from DIR`).
 */
export function checkDictionaryMemory(folders: readonly { readonly submodule: string; readonly dir: string }[], where: string, budget?: number): number {
  const needs = folders.map((f) => ({ what: f.submodule, bytes: folderBytes(f.dir) }));
  checkMemory(needs, {
    ...(budget !== undefined ? { available: budget } : {}),
    action: `loading ${needs.length} dictionar${needs.length === 1 ? 'y' : 'ies'}${where ? ` ${where}` : ''}`,
    hint: 'load fewer submodules: on the command line --submodules (e.g. --submodules resid_* for the residual stream only; '
      + 'config dictionaries.only), in code the `only` option; or narrower SAEs, or free memory first',
  });
  return needs.reduce((n, x) => n + x.bytes, 0);
}

/**
 * Loads every dictionary under `dir` and returns them by submodule name, in forward order.
 * Width mismatches are ShapeErrors naming the submodule; two folders for one submodule, or a
 * folder name and a hook_name that disagree, are ConfigErrors. Folders matching no submodule
 * are reported through `warn` and skipped.
 */
export async function loadDictionarySet(dir: string, submodules: readonly Submodule[], options: LoadDictionarySetOptions): Promise<Map<string, Dictionary>> {
  const registry = options.plugins instanceof DictionaryRegistry ? options.plugins : new DictionaryRegistry(options.plugins ?? defaultDictionaryPlugins());
  const wanted = options.only ? selectSubmodules(options.only, submodules, 'the `only` option') : submodules;
  const out = new Map<string, Dictionary>();
  const loaded: Dictionary[] = [];
  // A submodule listed from a model spec knows its width (Gemma's attn_l: heads × head_dim).
  const widthOf = (s: Submodule) => options.dInOf?.(s.name) ?? (s as { readonly width?: number }).width ?? options.dIn;
  const ctxFor = (s: Submodule) => ({
    ops: options.ops, dIn: widthOf(s), submodule: s.name,
    ...(options.warn ? { warn: options.warn } : {}), ...(options.options ? { options: options.options } : {}),
  });

  if (options.loader === 'identity') {
    for (const s of wanted) out.set(s.name, new IdentityDictionary(options.ops, widthOf(s), { hook: s.hook, source: 'identity' }));
    return out;
  }
  if (!isDirectory(dir)) throw new NotFoundError(`dictionaries folder ${dir} does not exist`, 'pass --dictionaries DIR (one subfolder per submodule)');

  const bySubmodule = new Map<string, Candidate>();
  /** Dictionaries skipped because the hook they declare is no submodule of this model. */
  const offModel: string[] = [];
  for (const name of subdirs(dir)) {
    const path = join(dir, name);
    const byName = resolveSubmoduleAlias(name, submodules);
    const found = await findRuns(registry, path, options.runId);
    if ('reasons' in found) {
      if (byName) options.warn?.(`${path}: no dictionary found for ${byName.name} (${found.reasons})`);
      else options.warn?.(`${path}: skipped (not a submodule name and no dictionary: ${found.reasons})`);
      continue;
    }
    for (const { run, byHook } of placeRuns(path, found.runs, byName, submodules)) {
      if (options.loader !== undefined && run.detected.plugin.meta.name !== options.loader) {
        options.warn?.(`${run.dir}: looks like ${run.detected.plugin.meta.name}, but loader '${options.loader}' was requested`);
      }
      const hook = run.detected.detection.hook;
      if (byName && byHook && byName.name !== byHook.name) {
        throw new ConfigError(`${path}: the folder name means ${byName.name} but its config says hook ${quoteName(hook)} (${byHook.name})`,
          'rename the folder or fix the hook in its config');
      }
      const submodule = byName ?? byHook;
      if (!submodule) {
        // Gemma's embed is a submodule only when asked for (Model.load's embedSubmodule).
        const embedOff = (name === 'embed' || hook === 'hook_embed') && !submodules.some((x) => x.role === 'embed');
        options.warn?.(`${path}: skipped (folder name ${quoteName(name)}${hook ? ` and hook ${quoteName(hook)}` : ''} match no submodule of this model`
          + `${embedOff ? '; this model has an embed submodule only when asked for: sfc --submodules embed,…' : ''})`);
        if (hook !== undefined) offModel.push(`${run.dir} (hook ${quoteName(hook)})`);
        continue;
      }
      if (byName && hook !== undefined && !byHook) {
        options.warn?.(`${path}: hook ${quoteName(hook)} is not a submodule of this model; attaching to ${submodule.name} by folder name`);
      }
      const previous = bySubmodule.get(submodule.name);
      if (previous) {
        throw new ConfigError(`two dictionaries for ${submodule.name}: ${previous.dir} and ${run.dir}`, 'keep one folder per submodule');
      }
      bySubmodule.set(submodule.name, { submodule, dir: run.dir, detected: run.detected, via: byName ? 'folder name' : `hook ${quoteName(hook)}` });
    }
  }

  const missing = wanted.filter((s) => !bySubmodule.has(s.name));
  if (missing.length && (options.missing ?? 'error') === 'error') {
    const skipped = offModel.length ? `; skipped, their hook is not on this model: ${offModel.slice(0, 5).join(', ')}${offModel.length > 5 ? ', …' : ''}` : '';
    throw new NotFoundError(`no dictionary for ${missing.map((s) => s.name).join(', ')} in ${dir}${skipped}`,
      `found: ${[...bySubmodule.keys()].join(', ') || 'none'}; load only those (sfc: --submodules ${[...bySubmodule.keys()].join(',') || 'resid_*'}; `
      + 'in code the `only` option), or name folders embed, attn_out_layer{l}, mlp_out_layer{l}, resid_out_layer{l} '
      + '(or attn_{l} …, or any name with a SAELens hook_name), or set missing: skip | identity');
  }
  if (options.memoryBudget !== false) {
    const folders = wanted.flatMap((s) => { const c = bySubmodule.get(s.name); return c ? [{ submodule: s.name, dir: c.dir }] : []; });
    checkDictionaryMemory(folders, `from ${dir}`, options.memoryBudget);
  }
  try {
    for (const s of wanted) {
      const c = bySubmodule.get(s.name);
      let dict: Dictionary;
      if (c) {
        const plugin = options.loader !== undefined ? registry.get(options.loader) : c.detected.plugin;
        dict = await registry.load(c.dir, ctxFor(s), plugin.meta.name);
      } else if (options.missing === 'identity') {
        dict = new IdentityDictionary(options.ops, widthOf(s), { hook: s.hook, source: 'identity (no dictionary found)' });
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
  collectGarbage(); // what the loaders read and dropped (docs/performance.md, "Gemma-2-2B scale")
  return out;
}

/** Loads a single dictionary folder, auto-detecting its format (or with `loader`). */
export async function loadDictionary(dir: string, ctx: import('@sfc/core').DictionaryLoadContext,
  plugins: readonly DictionaryPlugin[] | DictionaryRegistry = defaultDictionaryPlugins(), loader?: string): Promise<Dictionary> {
  const registry = plugins instanceof DictionaryRegistry ? plugins : new DictionaryRegistry(plugins);
  return registry.load(dir, ctx, loader);
}
