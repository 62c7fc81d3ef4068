// Dictionaries as the config describes them: loader plugins by package name (with
// `@sfc/dictionaries` meaning the built-in loaders), the folder of per-submodule SAEs, and
// per-submodule folder overrides, for the submodules `--submodules` selects. Commands get their
// dictionaries from here.

import { dirname } from 'node:path';
import { availableMemory, ConfigError, listSubmodules, NotFoundError, resolveSubmoduleAlias, selectSubmodules, type Dictionary, type DictionaryPlugin, type Model } from '@sfc/core';
import { checkDictionaryMemory, defaultDictionaryPlugins, loadDictionary, loadDictionarySet, resolvePlugin } from '@sfc/dictionaries';
import { describeSource, type EffectiveConfig } from './config/config.js';
import type { Session } from './session.js';

export const BUILTIN_DICTIONARY_PACKAGE = '@sfc/dictionaries';

/** The config key of `--submodules`: which submodules get SAEs (docs/config.md). */
const SELECTION_KEY = 'dictionaries.only';

export async function dictionaryPlugins(s: Session): Promise<DictionaryPlugin[]> {
  const names = s.config.get<string[]>('dictionaries.plugins') ?? [BUILTIN_DICTIONARY_PACKAGE];
  const from = s.config.file ? dirname(s.config.file) : s.io.cwd;
  const out: DictionaryPlugin[] = [];
  for (const name of names) {
    if (name === BUILTIN_DICTIONARY_PACKAGE) out.push(...defaultDictionaryPlugins());
    else out.push(await resolvePlugin(name, { from }));
  }
  return out;
}

/** Where the submodule selection came from, for messages: `--submodules` or `dictionaries.only in FILE`. */
export function selectionSource(s: Session): string {
  const src = s.config.source(SELECTION_KEY);
  return src?.kind === 'flag' ? src.flag : `${SELECTION_KEY} in ${describeSource(src)}`;
}

/**
 * The submodules `--submodules` / `dictionaries.only` select (sfc names in forward order), or
 * undefined when neither is set (every submodule). Unknown names are a NotFoundError listing the
 * valid ones.
 */
export function selectedSubmodules(s: Session, model: Model): string[] | undefined {
  const list = s.config.get<string[]>(SELECTION_KEY);
  return list === undefined ? undefined : selectSubmodules(list, model.submodules, selectionSource(s)).map((x) => x.name);
}

/** `embed` under every name it answers to where it is optional (Gemma 2 and 3: `hook_embed`, `model.embed_tokens`, …). */
const OPTIONAL_EMBED = (['gemma2', 'gemma3'] as const).map((arch) => listSubmodules(0, arch, { embed: true })[0]!);

/**
 * Whether Model.load should give the model its `embed` submodule where that is optional (Gemma,
 * whose default chain has none: feature-circuits' include_embed=False): when `--submodules` /
 * dictionaries.only names it (a `*` pattern does not), dictionaries.submodules gives it an SAE, or
 * the command `needs` it.
 */
export function embedSubmoduleAsked(config: EffectiveConfig, needs: readonly string[] = []): boolean {
  const named = [
    ...needs,
    ...(config.get<string[]>(SELECTION_KEY) ?? []).filter((e) => !e.includes('*')),
    ...Object.keys(config.get<Record<string, string>>('dictionaries.submodules') ?? {}),
  ];
  return named.some((n) => OPTIONAL_EMBED.some((e) => resolveSubmoduleAlias(n, [e]) !== undefined));
}

/** The algorithms' `submodules` option for the selection: `{ submodules }`, or {} when nothing is selected. */
export function submoduleSelection(s: Session, model: Model): { readonly submodules?: readonly string[] } {
  const submodules = selectedSubmodules(s, model);
  return submodules ? { submodules } : {};
}

/**
 * The submodules to load: `only` (what the command needs: a circuit's, the features') or else the
 * selection. What a command needs outside the selection is a ConfigError naming both.
 */
function submodulesToLoad(s: Session, model: Model, only: readonly string[] | undefined): string[] {
  const selected = selectedSubmodules(s, model);
  if (only === undefined) return selected ?? model.submodules.map((x) => x.name);
  const needed = [...new Set(only.map((n) => model.submodule(n).name))];
  const outside = selected ? needed.filter((n) => !selected.includes(n)) : [];
  if (outside.length) {
    throw new ConfigError(`this command needs the SAEs of ${outside.join(', ')} (the circuit's or the features' submodules), but ${selectionSource(s)} selects only ${selected!.join(', ')}`,
      `add them to ${selectionSource(s)}, or leave out the features of other submodules`);
  }
  return needed;
}

/**
 * One dictionary per submodule of `model` — only those `--submodules` / `dictionaries.only`
 * select, or `only` — from the folder layout, then `dictionaries.submodules` overrides.
 */
export async function loadModelDictionaries(s: Session, model: Model, options: { only?: readonly string[] } = {}): Promise<Map<string, Dictionary>> {
  const plugins = await dictionaryPlugins(s);
  const overrides = s.config.get<Record<string, string>>('dictionaries.submodules') ?? {};
  const folder = Object.keys(overrides).length ? s.config.get<string>('dictionaries.folder') : s.config.require<string>('dictionaries.folder', '--dictionaries');
  const ctx = { ops: model.ops, dIn: model.spec.dims.dModel, warn: s.warn };
  const runId = s.config.get<string>('dictionaries.runId');
  const explicit = options.only !== undefined || s.config.get(SELECTION_KEY) !== undefined;
  const wanted = submodulesToLoad(s, model, options.only);
  const fromFolder = wanted.filter((n) => !(n in overrides));
  if (explicit && folder === undefined && fromFolder.length) {
    throw new NotFoundError(`no SAE for ${fromFolder.join(', ')}: dictionaries.submodules names none for ${fromFolder.length === 1 ? 'it' : 'them'} and no dictionaries folder is set`,
      'pass --dictionaries DIR (one sub-folder per submodule), or add them to dictionaries.submodules');
  }
  // Memory for all of them is checked before any loads: the SAEs named one by one (a circuit's
  // record, dictionaries.submodules) here, the folder's with what those leave.
  const named = wanted.flatMap((submodule) => (overrides[submodule] !== undefined ? [{ submodule, dir: overrides[submodule] }] : []));
  const namedBytes = named.length ? checkDictionaryMemory(named, `named by ${describeSource(s.config.source('dictionaries.submodules'))}`) : 0;
  const out = folder && fromFolder.length
    ? await loadDictionarySet(folder, model.submodules, {
      ...ctx, plugins, only: fromFolder, ...(runId ? { runId } : {}), ...(namedBytes ? { memoryBudget: Math.max(0, availableMemory() - namedBytes) } : {}),
    })
    : new Map<string, Dictionary>();
  try {
    for (const name of wanted) {
      const dir = overrides[name];
      // The submodule's own width (Gemma's attn_l: heads × head_dim), as loadDictionarySet takes it.
      if (dir !== undefined) out.set(name, await loadDictionary(dir, { ...ctx, dIn: model.submodule(name).width ?? ctx.dIn, submodule: name }, plugins));
    }
  } catch (e) {
    for (const d of out.values()) d.dispose();
    throw e;
  }
  const order = new Map(model.submodules.map((x) => [x.name, x.order]));
  return new Map([...out].sort((a, b) => order.get(a[0])! - order.get(b[0])!));
}
