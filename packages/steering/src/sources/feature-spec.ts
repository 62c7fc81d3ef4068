// `--features SPEC`: a Neuronpedia quick-list URL or a plain list of ids, told apart by shape.

import type { FeatureRef } from '../feature-ref.js';
import { parseQuickListUrl, type QuickList, type QuickListExpectation } from './neuronpedia.js';
import { parsePlainList } from './plain-list.js';

export type FeatureSpec =
  | { readonly kind: 'quick-list'; readonly features: readonly FeatureRef[]; readonly quickList: QuickList }
  | { readonly kind: 'list'; readonly features: readonly FeatureRef[] };

export function parseFeatureSpec(spec: string, expected: QuickListExpectation = {}): FeatureSpec {
  const s = spec.trim();
  if (/^https?:\/\//i.test(s) || /neuronpedia\.org/i.test(s)) {
    const quickList = parseQuickListUrl(s, expected);
    return { kind: 'quick-list', features: quickList.features, quickList };
  }
  return { kind: 'list', features: parsePlainList(s) };
}
