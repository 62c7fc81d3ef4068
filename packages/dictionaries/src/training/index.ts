// SAE training: activations from a model over text, the ReLU SAE trainer (analytic gradients,
// Adam, on any backend's TensorOps), quality measures, splicing, and the SAELens writer.
export { collectActivations, textLines, type CollectOptions, type CollectedActivations } from './activations.js';
export {
  trainReluSae, type ActivationSet, type ReluSaeTrainingOptions, type ResampleOptions, type SaeTrainingProgress,
  type SaeTrainingRecord, type ReluSaeWeights, type TrainedReluSae,
} from './relu-sae-trainer.js';
export { reluSaeLossAndGrad, type ReluSaeParams, type ReluSaeLoss } from './relu-sae-loss.js';
export { adamInit, adamStep, type AdamOptions, type AdamState } from './adam.js';
export { makeSchedule, lrFactor, sparsityFactor, type Schedule } from './schedule.js';
export { measureSae, type SaeQuality } from './sae-quality.js';
export { spliceEdits } from './splice.js';
export { writeSaeLensFolder, saeLensConfig, type SaeLensMetadata } from './saelens-writer.js';
