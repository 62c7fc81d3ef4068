// Dictionaries as the config describes them: loader plugins by package name (with
// `@sfc/dictionaries` meaning the built-in loaders), the folder of per-submodule SAEs, and
// per-submodule folder overrides. Commands get their dictionaries from here.

import { dirname } from 'node:path';
import type { Dictionary, DictionaryPlugin, Model } from '@sfc/core';
import { defaultDictionaryPlugins, loadDictionary, loadDictionarySet, resolvePlugin } from '@sfc/dictionaries';
import type { Session } from './session.js';

export const BUILTIN_DICTIONARY_PACKAGE = '@sfc/dictionaries';

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

/** One dictionary per submodule of `model`: the folder layout, then `dictionaries.submodules` overrides. */
export async function loadModelDictionaries(s: Session, model: Model, options: { only?: readonly string[] } = {}): Promise<Map<string, Dictionary>> {
  const plugins = await dictionaryPlugins(s);
  const overrides = s.config.get<Record<string, string>>('dictionaries.submodules') ?? {};
  const folder = Object.keys(overrides).length ? s.config.get<string>('dictionaries.folder') : s.config.require<string>('dictionaries.folder', '--dictionaries');
  const ctx = { ops: model.ops, dIn: model.spec.dims.dModel, warn: s.warn };
  const runId = s.config.get<string>('dictionaries.runId');
  const wanted = (options.only ?? model.submodules.map((x) => x.name)).map((n) => model.submodule(n).name);
  const fromFolder = wanted.filter((n) => !(n in overrides));
  const out = folder && fromFolder.length
    ? await loadDictionarySet(folder, model.submodules, { ...ctx, plugins, only: fromFolder, ...(runId ? { runId } : {}) })
    : new Map<string, Dictionary>();
  try {
    for (const name of wanted) {
      const dir = overrides[name];
      if (dir !== undefined) out.set(name, await loadDictionary(dir, { ...ctx, submodule: name }, plugins));
    }
  } catch (e) {
    for (const d of out.values()) d.dispose();
    throw e;
  }
  const order = new Map(model.submodules.map((x) => [x.name, x.order]));
  return new Map([...out].sort((a, b) => order.get(a[0])! - order.get(b[0])!));
}
