// The loaders sfc ships, in auto-detection order.
import type { DictionaryPlugin } from '@sfc/core';
import { dictionaryLearning, type DictionaryLearningOptions } from './plugins/dictionary-learning.js';
import { gemmaScope } from './plugins/gemma-scope.js';
import { identity } from './plugins/identity.js';
import { llamaScope } from './plugins/llama-scope.js';
import { saelens, type SaeLensOptions } from './plugins/saelens.js';

export interface DefaultPluginOptions {
  readonly dictionaryLearning?: DictionaryLearningOptions;
  readonly saelens?: SaeLensOptions;
}

/** saelens, dictionary-learning, gemma-scope, llama-scope and identity (identity never auto-detects). */
export function defaultDictionaryPlugins(options: DefaultPluginOptions = {}): DictionaryPlugin[] {
  return [saelens(options.saelens), dictionaryLearning(options.dictionaryLearning), gemmaScope(), llamaScope(), identity()];
}
