// The SAE architectures, each a Dictionary on core's TensorOps.
export { LinearDictionary, type DecoderWeights, type DictionaryMeta } from './linear-dictionary.js';
export { ReluDictionary, JumpReluDictionary, BatchTopKDictionary, MatryoshkaBatchTopKDictionary, type LinearEncoderWeights } from './threshold.js';
export { TopKDictionary, type TopKWeights } from './topk.js';
export { GatedDictionary, type GatedWeights } from './gated.js';
export { IdentityDictionary } from './identity.js';
