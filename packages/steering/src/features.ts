// Checking feature ids against a loaded model and its dictionaries: the submodule exists (any
// alias resolves to its canonical name), a dictionary is loaded for it, and the index is inside
// that dictionary. Every failure is a typed error that lists what would have been valid.

import { InputError, NotFoundError, ShapeError, type Dictionary, type Model } from '@sfc/core';
import { featureId, featureRef, type FeatureRef } from './feature-ref.js';

/** Dictionaries keyed by canonical submodule name (keys may be any alias core resolves). */
export function dictionaryTable(model: Model, dictionaries: ReadonlyMap<string, Dictionary>): Map<string, Dictionary> {
  const table = new Map<string, Dictionary>();
  for (const [key, d] of dictionaries) {
    const s = model.submodule(key);
    const sub = s.name;
    // The submodule's own width: Gemma's attn_l is the concatenated heads (nHeads × headDim).
    const width = s.width ?? model.spec.dims.dModel;
    if (d.dIn !== width) throw new ShapeError(`the dictionary for ${sub} has d_in ${d.dIn} but ${sub} is ${width} wide`, 'load the dictionaries trained on this model');
    table.set(sub, d);
  }
  return table;
}

/** The node with its canonical submodule name, and that submodule's dictionary. */
export function resolveNode(model: Model, table: ReadonlyMap<string, Dictionary>, node: FeatureRef, what = featureId(node)):
  { readonly node: FeatureRef; readonly dict: Dictionary } {
  const sub = model.submodule(node.submodule).name;
  const dict = table.get(sub);
  if (!dict) {
    throw new NotFoundError(`${what}: no dictionary is loaded for ${sub}`,
      `submodules with dictionaries: ${[...table.keys()].join(', ') || 'none'} — add ${sub}'s SAE to the dictionaries folder or steer another submodule`);
  }
  if (node.kind === 'feature' && (!Number.isInteger(node.index) || node.index < 0 || node.index >= dict.dSae)) {
    const i = node.index;
    throw new InputError(`${featureId(featureRef(sub, i))}: feature index ${i} is out of range`,
      `${sub}'s dictionary has ${dict.dSae} features: indices 0..${dict.dSae - 1}, or '${sub}/err' for its error node`);
  }
  if (node.pos !== null && node.pos >= model.spec.dims.maxPositions) {
    throw new InputError(`${what}: position ${node.pos} is past the model's ${model.spec.dims.maxPositions} positions`);
  }
  return { node: { ...node, submodule: sub }, dict };
}

/** Validates features (e.g. for `--dry-run --model`), returning them with canonical submodule names. */
export function resolveFeatures(model: Model, dictionaries: ReadonlyMap<string, Dictionary>, features: readonly FeatureRef[]): FeatureRef[] {
  const table = dictionaryTable(model, dictionaries);
  return features.map((f) => resolveNode(model, table, f).node);
}
