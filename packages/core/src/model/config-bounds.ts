// Upper bounds on the sizes config.json declares, checked before the spec is built or anything is
// allocated: a 613-byte config.json with `num_hidden_layers: 1e9` or `hidden_size: 2^40` must be
// a FormatError in microseconds, not minutes of work and gigabytes of memory (docs/formats.md).
// The bounds are far above every released model; each weight the config implies must also fit
// the safetensors reader's 2^31 − 1 elements per tensor, so a config that passes here still has
// to match model.safetensors tensor by tensor (weights.ts) before any weight is read.

import { FormatError } from '../errors.js';
import { showValue } from '../quote.js';
import type { ModelDims } from './spec.js';

export const CONFIG_BOUNDS = Object.freeze({
  /** Layers (the largest released models have ~130). */
  maxLayers: 1024,
  /** Model width (the largest released models have ~20k). */
  maxWidth: 2 ** 17,
  /** MLP width. */
  maxMlp: 2 ** 20,
  /** Vocabulary (the largest released tokenizers have ~260k tokens). */
  maxVocab: 2 ** 24,
  /** Context length, after rope scaling. */
  maxPositions: 2 ** 26,
  /** Elements of one weight tensor: the safetensors reader's cap. */
  maxTensorElements: 2 ** 31 - 1,
});

/**
 * Throws a FormatError when a size in `dims` is beyond CONFIG_BOUNDS, when a weight it implies
 * would have more than 2^31 − 1 elements, or when the layer-norm epsilon is not a small positive
 * number. Called by the spec builders before any layer is listed.
 */
export function checkConfigBounds(dims: ModelDims, layerNormEps: number): void {
  const b = CONFIG_BOUNDS;
  const hint = 'config.json does not describe a model sfc can load; use the config.json saved with the model';
  const cap = (what: string, v: number, max: number) => {
    if (!Number.isSafeInteger(v) || v < 1 || v > max) throw new FormatError(`config.json: ${what} is ${showValue(v)}, beyond the supported 1 … ${max}`, hint);
  };
  cap('the number of layers', dims.nLayers, b.maxLayers);
  cap('the model width', dims.dModel, b.maxWidth);
  cap('the MLP width', dims.dMlp, b.maxMlp);
  cap('the vocabulary size', dims.vocabSize, b.maxVocab);
  cap('the context length (after rope scaling)', dims.maxPositions, b.maxPositions);
  cap('the number of attention heads', dims.nHeads, dims.dModel);
  const tensor = (what: string, rows: number, cols: number) => {
    if (rows * cols > b.maxTensorElements) {
      throw new FormatError(`config.json: the ${what} would be [${rows}, ${cols}], more than ${b.maxTensorElements} elements in one tensor`, hint);
    }
  };
  tensor('token embedding', dims.vocabSize, dims.dModel);
  tensor('MLP weight', dims.dMlp, dims.dModel);
  tensor('attention q/k/v weight', 3 * dims.dModel, dims.dModel);
  if (!(Number.isFinite(layerNormEps) && layerNormEps > 0 && layerNormEps < 1)) {
    throw new FormatError(`config.json: the layer norm epsilon is ${showValue(layerNormEps)}; it must be a small positive number (typically 1e-5)`,
      'a zero or negative epsilon divides by zero or takes the square root of a negative number, making every output NaN');
  }
}
