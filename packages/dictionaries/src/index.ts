// @sfc/dictionaries public surface: SAE architectures on core's TensorOps, loader plugins
// (SAELens, dictionary_learning, Gemma Scope, Llama Scope, identity), the plugin registry, set loading.
export * from './architectures/index.js';
export { withInputNormalization, type InputNormalization } from './architectures/input-normalization.js';
export { saelens, buildSaeLens, SAELENS_ARCHITECTURES, type SaeLensOptions } from './plugins/saelens.js';
export { migrateSaeLensConfig, type SaeLensConfig, type SaeLensNormalization } from './plugins/saelens-config.js';
export {
  dictionaryLearning, buildDictionaryLearning, inferDictionaryLearningClass, DICTIONARY_LEARNING_CLASSES,
  type DictionaryLearningClass, type DictionaryLearningOptions,
} from './plugins/dictionary-learning.js';
export { gemmaScope } from './plugins/gemma-scope.js';
export { identity } from './plugins/identity.js';
export { llamaScope, foldLlamaScope } from './plugins/llama-scope.js';
export { parseLlamaScopeConfig, type LlamaScopeConfig, type LlamaScopeActivation } from './plugins/llama-scope-config.js';
export { weightMap, type WeightMap } from './plugins/weight-map.js';
export { defaultDictionaryPlugins, type DefaultPluginOptions } from './defaults.js';
export { DictionaryRegistry, resolvePlugin, isDictionaryPlugin, type Detected, type ResolvePluginOptions } from './registry.js';
export { checkDictionaryMemory, loadDictionarySet, loadDictionary, type LoadDictionarySetOptions } from './load-set.js';
export { describeDictionary, type DictionaryDescription } from './describe.js';
export type { HostTensor } from './host-weights.js';
export * from './formats/index.js';
export * from './training/index.js';
export { convertFcCircuit, readFcCircuitFile, parseFcCircuitName, FC_FORMAT, type FcConversion, type FcConvertOptions, type FcFileName, type ReadFcCircuitFileOptions } from './fc-convert.js';
