// @sfc/steering public surface: interventions on SAE features (and error nodes) of a circuit or
// feature list, steered scoring, generation and sweeps, and the feature sources (sfc circuits,
// plain lists, Neuronpedia quick lists).
export { type FeatureRef, type FeatureIndex, parseFeatureId, featureId, featureIndex, featureRef } from './feature-ref.js';
export {
  type SteerOp, type OpKind, type Positions, type Intervention, OP_KINDS, ALL_POSITIONS,
  scale, clamp, add, ablate, patch, interventionsFor, opStrength, withStrength,
  parseOp, parsePositions, formatOp, formatPositions, describeIntervention,
} from './intervention.js';
export { positionMask } from './positions.js';
export { dictionaryTable, resolveFeatures } from './features.js';
export { Steering, type TokenBatch, type SteeringOptions, type PatchState, type EditContext } from './steering.js';
export {
  score, compareBatch, ScoreBaseline, summarize, fromCoreMetric, defaultScoreMetric, answerLogits, cleanTokens,
  type ScoreBatch, type ScoreMetric, type ScoreOptions, type ScoreResult, type ScoreSummary, type PromptScore, type NextTokenView, type TopToken,
} from './scoring.js';
export { type Sampling, GREEDY, seededRandom, rowSeed, chooseToken, argmax, checkSampling } from './sampling.js';
export {
  generate, generateBatch, generateSideBySide, generateSideBySideBatch,
  type GenerateOptions, type BatchGenerateOptions, type GenerationProgress, type Generation, type SideBySide, type Decoding, type TokenEvent,
} from './generation.js';
export { groupByLength, type PromptGroup } from './prompt-groups.js';
export { sweep, parseStrengthRange, type SweepRow, type SweepResult } from './sweep.js';
export { sweepPlotSvg, niceTicks, type SweepPlotOptions } from './sweep-plot.js';
export { STEER_SCHEMA, steerReport, featureJson, type SteerReport, type SteerReportInput, type SteerFeatureJson } from './steer-report.js';
export { parsePlainList, uniqueFeatures } from './sources/plain-list.js';
export {
  readCircuitFile, selectCircuitFeatures, checkCircuitDictionaries,
  type CircuitReader, type CircuitSelection, type SelectedFeature,
} from './sources/circuit-file.js';
export {
  parseQuickListUrl, quickListFeatures, formatQuickListUrls, featurePageUrl, neuronpediaLayer, parseNeuronpediaLayer,
  NEURONPEDIA_ORIGIN, DEFAULT_SAE_SET, QUICK_LIST_LIMIT,
  type QuickList, type QuickListFeature, type QuickListExpectation, type ExportOptions, type QuickListExport,
} from './sources/neuronpedia.js';
export { parseFeatureSpec, type FeatureSpec } from './sources/feature-spec.js';
export { withTargets, targetsByCase, caseAnswerPool, type CaseExample } from './targets.js';
export { continuationLogProbs, generationFluency, meanFluency, type Continuation, type Fluency } from './fluency.js';
export {
  calibrate, chooseStrength, DEFAULT_TARGET_RATE, DEFAULT_CALIBRATION_STRENGTHS, type CalibrateOptions, type Calibration,
} from './calibrate.js';
