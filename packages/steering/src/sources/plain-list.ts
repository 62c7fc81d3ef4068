// A plain feature list: `resid_3/1234,attn_0/17` (commas or whitespace between ids, `err` for
// an error node, `@pos` for one position). Repeats are dropped: steering a feature twice
// would apply its op twice.

import { InputError } from '@sfc/core';
import { featureId, parseFeatureId, type FeatureRef } from '../feature-ref.js';

export function parsePlainList(spec: string): FeatureRef[] {
  const parts = spec.split(/[\s,]+/).filter((p) => p !== '');
  if (parts.length === 0) throw new InputError('the feature list is empty', 'write ids like resid_3/1234,attn_0/17');
  return uniqueFeatures(parts.map(parseFeatureId));
}

export function uniqueFeatures(nodes: readonly FeatureRef[]): FeatureRef[] {
  const seen = new Set<string>();
  return nodes.filter((n) => {
    const id = featureId(n);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
