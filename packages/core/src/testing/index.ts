// @sfc/core/testing: what plugin authors need to test against sfc — a pure-JS TensorOps and
// the conformance suites that every plugin runs, and the comparisons parity tests use.
export { referenceOps, ReferenceOps } from './reference-ops.js';
export { runDictionaryPluginConformance, type DictionaryConformanceOptions } from './dictionary-conformance.js';
export { runTensorOpsConformance, type ConformanceRunner, type ConformanceExpect } from './tensor-ops-conformance.js';
export { maxAbsDiff, relMaxError } from './compare.js';
export { runKvCacheConformance, type KvCacheConformanceOptions } from './kv-cache-conformance.js';
export { runRopeScalingConformance, type RopeScalingConformanceOptions } from './rope-scaling-conformance.js';
export { fuzz, fuzzSummary, mutateBytes, mutateDigits, mutateJson, rng, INTERESTING_U32, type FuzzResult, type FuzzFailure, type Rng } from './fuzz.js';
