// @sfc/core public surface.
export * from './errors.js';
export * from './tensor.js';
export * from './backend.js';
export * from './dictionary.js';
export * from './submodule.js';
export * from './model/spec.js';
export { parseModelConfig, SUPPORTED_MODEL_TYPES } from './model/config.js';
export { canonicalWeights, safetensorsSource, transpose, neoxQkv, type TensorSource, type LoadedWeights } from './model/weights.js';
export { Model, type Edit, type ForwardOptions, type ForwardResult, type BackwardOptions, type ModelLoadOptions } from './model/model.js';
export { SafetensorsFile, encodeSafetensors, toFloat32, f16ToF32, type SafetensorsEntry, type SafetensorsDType, type SafetensorsLimits } from './formats/safetensors.js';
export { loadTokenizer, tokenizerFromJson, type Tokenizer } from './formats/tokenizer.js';
