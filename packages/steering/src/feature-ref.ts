// Features as steering names them: core's circuit node ids (`resid_3/1234`, `resid_3/err`,
// `…@pos`) without the metric node `y`. The grammar lives in @sfc/core (circuit/node-id) only;
// this module adds the conversions steering needs.

import { formatNodeId, InputError, parseNodeId, type NodeRef } from '@sfc/core';

/** An SAE feature or error node, optionally at one position. */
export type FeatureRef = Exclude<NodeRef, { readonly kind: 'metric' }>;

/** A feature index, or the SAE error node of the submodule. */
export type FeatureIndex = number | 'err';

export function parseFeatureId(text: string): FeatureRef {
  const ref = parseNodeId(text.trim());
  if (ref.kind === 'metric') throw new InputError("'y' is the metric node, not a feature", 'name features like resid_3/1234 or resid_3/err');
  return ref;
}

export function featureId(ref: FeatureRef): string {
  return formatNodeId(ref);
}

export function featureIndex(ref: FeatureRef): FeatureIndex {
  return ref.kind === 'error' ? 'err' : ref.index;
}

export function featureRef(submodule: string, feature: FeatureIndex, pos: number | null = null): FeatureRef {
  return feature === 'err' ? { kind: 'error', submodule, pos } : { kind: 'feature', submodule, index: feature, pos };
}
