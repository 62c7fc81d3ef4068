// The identity loader: "dictionaries" whose features are the submodule's neurons. It needs no
// files, so it never auto-detects; ask for it by name (loader: 'identity'). Its width is the
// context's dIn (the model width).

import { ConfigError, type DictionaryPlugin } from '@sfc/core';
import { IdentityDictionary } from '../architectures/identity.js';
import { VERSION } from '../version.js';

export function identity(): DictionaryPlugin {
  return {
    meta: { name: 'identity', version: VERSION, namespace: 'identity' },
    async detect() {
      return { ok: false, reason: 'identity dictionaries are never auto-detected; select the loader by name' };
    },
    async load(dir, ctx) {
      if (ctx.dIn === undefined) throw new ConfigError('the identity loader needs the model width (dIn)', 'load it through loadDictionarySet or pass dIn');
      return new IdentityDictionary(ctx.ops, ctx.dIn, { ...(ctx.submodule ? { hook: ctx.submodule } : {}), source: dir || 'identity' });
    },
  };
}
