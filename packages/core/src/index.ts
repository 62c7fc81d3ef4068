// @sfc/core public surface.
export * from './errors.js';
export { quoteName, escapeControls, sanitizeMessage, showValue, MAX_QUOTED_CHARS } from './quote.js';
export * from './tensor.js';
export * from './backend.js';
export * from './dictionary.js';
export * from './submodule.js';
export * from './model/spec.js';
export { parseModelConfig, SUPPORTED_MODEL_TYPES } from './model/config.js';
export { canonicalWeights, safetensorsSource, transpose, neoxQkv, type TensorSource, type LoadedWeights, type CanonicalWeightOptions } from './model/weights.js';
export { bf16ToScaledF16, bf16RowsToScaledF16, isHalfWeight, storeBytes, widenWeight } from './model/half-weights.js';
export { LayerKvCache, paddedKeyMask, paddedPositions } from './model/kv-cache.js';
export { Model, weightMemory, type Edit, type EditCall, type ForwardOptions, type ForwardResult, type BackwardOptions, type ModelLoadOptions } from './model/model.js';
export {
  SafetensorsFile, encodeSafetensors, toFloat32, f16ToF32, bf16ToF32, f32ToBf16, bf16ToF16Exact, safetensorsHeaderLength, parseSafetensorsHeader, SAFETENSORS_DTYPE_BYTES,
  type SafetensorsEntry, type SafetensorsDType, type SafetensorsLimits, type SafetensorsHeader, type EncodableTensor,
} from './formats/safetensors.js';
export { openCheckpoint, checkpointBytes, SINGLE_FILE, INDEX_FILE, type Checkpoint } from './model/checkpoint.js';
export { checkMemory, availableMemory, formatBytes, type MemoryNeed, type MemoryCheckOptions } from './model/memory-budget.js';
export { writeFileAtomic, checkOutputPath, checkOutputFolder, removePendingTempFiles, type AtomicContent, type OutputKind } from './formats/write-atomic.js';
export { SafetensorsReader, withSafetensors, type RawTensor } from './formats/safetensors-reader.js';
export { checkFinite, checkFinite16 } from './formats/finite.js';
export { readRange } from './formats/read-range.js';
export { loadTokenizer, tokenizerFromJson, type Tokenizer } from './formats/tokenizer.js';
// Data, algorithms and circuit files (issue 3).
export { PythonRandom } from './data/python-random.js';
export {
  loadExamples, selectExamples, splitLines, describeSkips, SKIP_REASONS,
  type Example, type ExampleSelection, type ExampleTokenizer, type SelectExamplesOptions, type SkipReason,
} from './data/examples.js';
export { batchExamples, singlePromptBatch, countPrompts, padRows, rowLength, PAD_ID, type PromptBatch } from './data/batches.js';
export { detectData, type DataKind, type SinglePromptEntry } from './data/single-prompts.js';
export { logitDiff, cleanMinusPatch, negAnswerLogit, linearLogitMetric, defaultMetric, lastTokenPositions, type Metric, type BoundMetric } from './algorithms/metrics.js';
export type { ProgressCallback, ProgressEvent } from './algorithms/progress.js';
export { cancelCheck, type CancelCheck } from './algorithms/cancel.js';
export { saeState, effectOf, toDense, type SparseAct } from './algorithms/sparse-act.js';
export { resolveDictionaries, type DictionarySet, type ResolvedSubmodule } from './algorithms/setup.js';
export {
  attribute, prepareBatch, batchNodeEffects, DEFAULT_IG_STEPS, DEFAULT_MAX_ROWS,
  type AttributeOptions, type BatchContext, type AttributionMethod, type AttributionResult, type Aggregation, type NodeEffects,
} from './algorithms/attribution.js';
export { edgePairs, type EdgePair, type EdgeSet } from './algorithms/edges.js';
export { discover, DEFAULT_NODE_THRESHOLD, DEFAULT_EDGE_THRESHOLD, type DiscoverOptions, type DiscoveryResult } from './algorithms/discover.js';
export { type Ablation, type ErrorHandling } from './algorithms/ablation.js';
export { evaluate, answerLogit, type EvaluateOptions, type EvaluationResult, type EvaluationRow } from './algorithms/evaluation.js';
export { METRIC_NODE, parseNodeId, tryParseNodeId, formatNodeId, nodeIdAt, type NodeRef } from './circuit/node-id.js';
export {
  CIRCUIT_SCHEMA, buildCircuit, assembleCircuit, pruneCircuit, serializeCircuit, parseCircuit, circuitNodeEffects, thresholdNodes,
  type Circuit, type CircuitNode, type CircuitEdge, type CircuitParts, type BuildCircuitOptions, type AssembleCircuitOptions, type PruneOptions,
} from './circuit/circuit.js';
export {
  EFFECTS_SCHEMA, effectsToFile, serializeEffects, parseEffects, effectsFromFile,
  type EffectsFile, type SubmoduleEffectsJson, type RunMetadata,
} from './circuit/effects-file.js';
export { jsonSyntaxError } from './circuit/json-checks.js';
export { EVAL_SCHEMA, evaluationToFile, serializeEvaluation, type EvalFile } from './circuit/eval-file.js';
export {
  PARTIAL_SCHEMA, parseShard, shardBatchIndices, attributionPartial, discoveryPartial, evaluationPartial, emptyPartial, serializePartial,
  parsePartial, mergePartials, firstDifference,
  type Shard, type PartialKind, type PartialFile, type PartialContext, type NamedPartial, type MergedRun,
} from './circuit/partial.js';
export { tidySync } from './tidy.js';
export { dropped, collectGarbage } from './garbage.js';
export { contentHash, modelContentHash, isModelFile, CONTENT_HASH_METHOD, FULL_HASH_LIMIT, type ContentHashOptions } from './content-hash.js';
export {
  recordInputs, readInputRecord, modelDisplayName, dictionaryFolder,
  type InputRecord, type ModelRecord, type SaeRecord,
} from './circuit/provenance.js';
export { topActivations, type TopActivation, type TopActivationsOptions, type TopActivationsResult } from './algorithms/top-activations.js';
export {
  TOP_CONTEXTS_SCHEMA, topContextsFiles, tokenPieces, mergeTopContexts, serializeTopContexts, parseTopContexts, topContextsFileName,
  type TopContext, type TopContextsFile, type TopContextsMeta,
} from './circuit/top-contexts-file.js';
