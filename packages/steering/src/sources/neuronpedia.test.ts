import { describe, expect, it } from 'vitest';
import { InputError } from '@sfc/core';
import { parseFeatureId, type FeatureRef } from '../feature-ref.js';
import {
  featurePageUrl, formatQuickListUrls, neuronpediaLayer, parseNeuronpediaLayer, parseQuickListUrl, quickListFeatures, QUICK_LIST_LIMIT,
} from './neuronpedia.js';
import { parseFeatureSpec } from './feature-spec.js';

const ids = (list: string) => list.split(',').map(parseFeatureId);
const qlUrl = (features: unknown, name = 'my list') =>
  `https://www.neuronpedia.org/quick-list?name=${encodeURIComponent(name)}&features=${encodeURIComponent(JSON.stringify(features))}`;

function thrown(fn: () => unknown): InputError {
  try { fn(); } catch (e) { expect(e).toBeInstanceOf(InputError); return e as InputError; }
  throw new Error('expected an InputError');
}

describe('Neuronpedia layer names', () => {
  it('maps every submodule role and the configurable set suffix, both ways', () => {
    const cases: [string, string][] = [['embed', 'e-res-sm'], ['resid_3', '3-res-sm'], ['attn_0', '0-att-sm'], ['mlp_12', '12-mlp-sm']];
    for (const [sub, layer] of cases) {
      expect(neuronpediaLayer(sub)).toBe(layer);
      expect(parseNeuronpediaLayer(layer)).toEqual({ submodule: sub, saeSet: 'sm' });
    }
    expect(neuronpediaLayer('resid_3', 'res-jb')).toBe('3-res-res-jb');
    expect(neuronpediaLayer('attn_2', 'mine_32k')).toBe('2-att-mine_32k');
    expect(parseNeuronpediaLayer('2-att-mine_32k')).toEqual({ submodule: 'attn_2', saeSet: 'mine_32k' });
  });

  it('rejects layers outside the grammar', () => {
    for (const bad of ['e-att-sm', '3-resid-sm', '3-res-', 'x-res-sm', 'res-sm', '3-res-s m']) {
      expect(thrown(() => parseNeuronpediaLayer(bad)).hint).toMatch(/e-res-SET/);
    }
  });
});

describe('quick-list URLs', () => {
  const features = ids('embed/5,attn_0/17,mlp_1/3,resid_1/127');

  it('round-trips: format then parse gives the same features, name and set', () => {
    const { urls, skipped } = formatQuickListUrls(features, { modelId: 'pythia-70m-deduped', saeSet: 'sm', name: 'agreement & co' });
    expect(urls).toHaveLength(1);
    expect(skipped).toEqual([]);
    expect(urls[0]!.startsWith('https://www.neuronpedia.org/quick-list?name=agreement%20%26%20co&features=')).toBe(true);
    const back = parseQuickListUrl(urls[0]!);
    expect(back).toEqual({ name: 'agreement & co', modelId: 'pythia-70m-deduped', saeSet: 'sm', features });
    const raw = quickListFeatures(urls[0]!);
    expect(raw.features[1]).toEqual({ modelId: 'pythia-70m-deduped', layer: '0-att-sm', index: 17 });
    // The JSON carries the index as a string, as SAELens and Neuronpedia write it.
    expect(decodeURIComponent(urls[0]!.split('features=')[1]!)).toContain('{"modelId":"pythia-70m-deduped","layer":"e-res-sm","index":"5"}');
  });

  it('splits beyond 150 features and each part parses back to its slice', () => {
    const many: FeatureRef[] = Array.from({ length: 2 * QUICK_LIST_LIMIT + 1 }, (_, i) => ({ kind: 'feature', submodule: 'resid_2', index: i, pos: null }));
    const { urls } = formatQuickListUrls(many, { modelId: 'm', name: 'big' });
    expect(urls).toHaveLength(3);
    const parts = urls.map((u) => parseQuickListUrl(u));
    expect(parts.map((p) => p.features.length)).toEqual([150, 150, 1]);
    expect(parts.map((p) => p.name)).toEqual(['big (1/3)', 'big (2/3)', 'big (3/3)']);
    expect(parts.flatMap((p) => p.features)).toEqual(many);
    expect(formatQuickListUrls(many.slice(0, 150), { modelId: 'm' }).urls).toHaveLength(1);
    expect(formatQuickListUrls(many.slice(0, 151), { modelId: 'm' }).urls).toHaveLength(2);
    expect(() => formatQuickListUrls(many, { modelId: 'm', maxPerList: 151 })).toThrow(InputError);
  });

  it('skips error nodes and drops positions when exporting', () => {
    const { urls, skipped } = formatQuickListUrls(ids('resid_0/err,resid_0/4@2,resid_0/4@3,attn_1/err@1'), { modelId: 'm' });
    expect(skipped.map((s) => s.submodule)).toEqual(['resid_0', 'attn_1']);
    expect(parseQuickListUrl(urls[0]!).features).toEqual(ids('resid_0/4'));
  });

  it('accepts numeric indices, the bare host and a trailing slash (as Python helpers write it)', () => {
    const url = `https://neuronpedia.org/quick-list/?name=t&features=${encodeURIComponent('[{"modelId":"gpt2-small","layer":"9-res-jb","index":2000}]')}`;
    expect(parseQuickListUrl(url)).toEqual({ name: 't', modelId: 'gpt2-small', saeSet: 'jb', features: ids('resid_9/2000') });
    expect(parseQuickListUrl(url.replace('https://', '')).features).toEqual(ids('resid_9/2000'));
  });

  it('bad JSON, wrong shapes and foreign URLs are typed errors', () => {
    const good = qlUrl([{ modelId: 'm', layer: '1-res-sm', index: '4' }]);
    expect(thrown(() => parseQuickListUrl(good.slice(0, -8))).message).toMatch(/not valid JSON/); // cut off
    expect(thrown(() => parseQuickListUrl('https://www.neuronpedia.org/quick-list?name=x&features=%7Bnope')).message).toMatch(/not valid JSON/);
    expect(thrown(() => parseQuickListUrl('https://www.neuronpedia.org/quick-list?name=x')).message).toMatch(/no 'features'/);
    expect(thrown(() => parseQuickListUrl(qlUrl({ modelId: 'm' }))).message).toMatch(/not a JSON list/);
    expect(thrown(() => parseQuickListUrl(qlUrl([]))).message).toMatch(/no features/);
    expect(thrown(() => parseQuickListUrl(qlUrl([{ layer: '1-res-sm', index: 1 }]))).message).toMatch(/no modelId/);
    expect(thrown(() => parseQuickListUrl(qlUrl([{ modelId: 'm', layer: '1-res-sm', index: '-1' }]))).message).toMatch(/not a feature index/);
    expect(thrown(() => parseQuickListUrl(qlUrl([{ modelId: 'm', layer: '1-res-sm', index: 1.5 }]))).message).toMatch(/not a feature index/);
    expect(thrown(() => parseQuickListUrl(good.replace('neuronpedia.org', 'example.com'))).message).toMatch(/not a Neuronpedia quick-list/);
    expect(thrown(() => parseQuickListUrl('not a url at all')).message).toMatch(/not a Neuronpedia|not a URL/);
  });

  it('model and SAE-set mismatches name what was expected', () => {
    const url = qlUrl([{ modelId: 'gpt2-small', layer: '3-res-jb', index: '1' }]);
    const model = thrown(() => parseQuickListUrl(url, { modelId: 'pythia-70m-deduped' }));
    expect(model.message).toMatch(/'gpt2-small'.*'pythia-70m-deduped'/);
    const set = thrown(() => parseQuickListUrl(url, { saeSet: 'sm', submodules: ['embed', 'attn_0', 'mlp_0', 'resid_0'] }));
    expect(set.message).toMatch(/set 'jb'.*set 'sm'/);
    expect(set.hint).toContain('e-res-sm, 0-att-sm, 0-mlp-sm, 0-res-sm');
    const mixedSets = qlUrl([{ modelId: 'm', layer: '0-res-sm', index: 1 }, { modelId: 'm', layer: '0-res-jb', index: 1 }]);
    expect(thrown(() => parseQuickListUrl(mixedSets)).message).toMatch(/'sm', 'jb'/);
    const mixedModels = qlUrl([{ modelId: 'a', layer: '0-res-sm', index: 1 }, { modelId: 'b', layer: '0-res-sm', index: 1 }]);
    expect(thrown(() => parseQuickListUrl(mixedModels)).message).toMatch(/mixes models: a, b/);
    const deep = qlUrl([{ modelId: 'm', layer: '7-res-sm', index: 1 }]);
    const layer = thrown(() => parseQuickListUrl(deep, { submodules: ['embed', 'attn_0', 'mlp_0', 'resid_0'] }));
    expect(layer.message).toMatch(/7-res-sm/);
    expect(layer.hint).toContain('0-res-sm');
  });

  it('per-feature page URLs', () => {
    expect(featurePageUrl(parseFeatureId('attn_3/42'), { modelId: 'pythia-70m-deduped' })).toBe('https://www.neuronpedia.org/pythia-70m-deduped/3-att-sm/42');
    expect(featurePageUrl(parseFeatureId('embed/7'), { modelId: 'x', saeSet: 'abc' })).toBe('https://www.neuronpedia.org/x/e-res-abc/7');
    expect(() => featurePageUrl(parseFeatureId('embed/err'), { modelId: 'x' })).toThrow(InputError);
  });
});

describe('feature specs', () => {
  it('tells a quick-list URL from a plain list', () => {
    const url = qlUrl([{ modelId: 'm', layer: '0-mlp-sm', index: '9' }]);
    const q = parseFeatureSpec(url);
    expect(q.kind).toBe('quick-list');
    expect(q.features).toEqual(ids('mlp_0/9'));
    const l = parseFeatureSpec(' resid_3/1234, attn_0/17  resid_3/err,resid_3/1234 ');
    expect(l).toEqual({ kind: 'list', features: ids('resid_3/1234,attn_0/17,resid_3/err') });
    expect(() => parseFeatureSpec('resid_3')).toThrow(InputError);
    expect(() => parseFeatureSpec('y')).toThrow(/metric node/);
    expect(() => parseFeatureSpec('')).toThrow(/empty/);
    expect(() => parseFeatureSpec('blocks.3.hook_resid_post/5')).toThrow(InputError);
  });
});
