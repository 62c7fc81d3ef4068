// Neuronpedia links, both ways, without any network access: parse a quick-list URL
// (`https://www.neuronpedia.org/quick-list?name=…&features=<URL-encoded JSON list of
// {"modelId","layer","index"}>`) into features, and export features as quick-list URLs (at most
// 150 per list, split beyond) and per-feature page URLs (`/{modelId}/{layer}/{index}`).
// Layer ids name a submodule and an SAE set: `e-res-sm` (embed), `{l}-res-sm`, `{l}-att-sm`,
// `{l}-mlp-sm`; the set suffix (`sm` for the feature-circuits Pythia SAEs) is configurable.

import { InputError } from '@sfc/core';
import { featureId, type FeatureRef } from '../feature-ref.js';
import { uniqueFeatures } from './plain-list.js';

export const NEURONPEDIA_ORIGIN = 'https://www.neuronpedia.org';
export const DEFAULT_SAE_SET = 'sm';
/** Neuronpedia refuses longer quick lists. */
export const QUICK_LIST_LIMIT = 150;

export interface QuickListFeature {
  readonly modelId: string;
  readonly layer: string;
  readonly index: number;
}

export interface QuickList {
  readonly name: string;
  readonly modelId: string;
  readonly saeSet: string;
  readonly features: readonly FeatureRef[];
}

export interface QuickListExpectation {
  /** The model's Neuronpedia id (e.g. pythia-70m-deduped); mismatches are errors. */
  readonly modelId?: string;
  /** The SAE set suffix the loaded dictionaries are (e.g. sm); mismatches are errors. */
  readonly saeSet?: string;
  /** Submodules that exist (e.g. from the loaded model); unknown layers are errors. */
  readonly submodules?: readonly string[];
}

export interface ExportOptions {
  readonly modelId: string;
  readonly saeSet?: string;
  /** List name; split lists get " (i/n)" appended. */
  readonly name?: string;
  /** Features per list (≤ 150). */
  readonly maxPerList?: number;
}

export interface QuickListExport {
  readonly urls: readonly string[];
  /** Error nodes: Neuronpedia has no page for them. */
  readonly skipped: readonly FeatureRef[];
}

type FeatureOnly = Extract<FeatureRef, { readonly kind: 'feature' }>;

const SET_RE = /^[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*$/;
const ROLE_TO_NP = { resid: 'res', attn: 'att', mlp: 'mlp' } as const;
const NP_TO_ROLE = { res: 'resid', att: 'attn', mlp: 'mlp' } as const;

function checkSet(saeSet: string): string {
  if (!SET_RE.test(saeSet)) throw new InputError(`'${saeSet}' is not an SAE set name`, 'use letters, digits, _ and . (e.g. sm)');
  return saeSet;
}

/** `embed` → `e-res-sm`, `resid_3` → `3-res-sm`, `attn_3` → `3-att-sm`, `mlp_3` → `3-mlp-sm`. */
export function neuronpediaLayer(submodule: string, saeSet = DEFAULT_SAE_SET): string {
  checkSet(saeSet);
  if (submodule === 'embed') return `e-res-${saeSet}`;
  const m = /^(resid|attn|mlp)_(\d+)$/.exec(submodule);
  if (!m) throw new InputError(`unknown submodule '${submodule}'`, 'submodules are embed, attn_L, mlp_L, resid_L');
  return `${m[2]}-${ROLE_TO_NP[m[1] as keyof typeof ROLE_TO_NP]}-${saeSet}`;
}

const LAYER_HINT = 'layers are e-res-SET (embedding), L-res-SET, L-att-SET or L-mlp-SET (e.g. 3-res-sm)';

/** The inverse of neuronpediaLayer. */
export function parseNeuronpediaLayer(layer: string): { readonly submodule: string; readonly saeSet: string } {
  const m = /^(e|\d+)-(res|att|mlp)-(.+)$/.exec(layer);
  if (!m || !SET_RE.test(m[3]!) || (m[1] === 'e' && m[2] !== 'res')) throw new InputError(`unknown Neuronpedia layer '${layer}'`, LAYER_HINT);
  const submodule = m[1] === 'e' ? 'embed' : `${NP_TO_ROLE[m[2] as keyof typeof NP_TO_ROLE]}_${Number(m[1])}`;
  return { submodule, saeSet: m[3]! };
}

function expectedLayers(submodules: readonly string[] | undefined, saeSet: string): string {
  const subs = submodules ?? ['embed', 'attn_0', 'mlp_0', 'resid_0'];
  const list = subs.map((s) => neuronpediaLayer(s, saeSet));
  return `${list.slice(0, 8).join(', ')}${list.length > 8 ? `, … (${list.length} layers)` : submodules ? '' : ', …'}`;
}

const QL_HINT = 'copy the whole quick-list URL from Neuronpedia: https://www.neuronpedia.org/quick-list?name=…&features=[{"modelId":…,"layer":…,"index":…}]';

function parseIndex(v: unknown, i: number): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new InputError(`quick-list feature ${i}: index ${JSON.stringify(v)} is not a feature index`, 'indices are integers ≥ 0');
  return n;
}

/** The raw feature list of a quick-list URL (no model checks). */
export function quickListFeatures(url: string): { readonly name: string; readonly features: readonly QuickListFeature[] } {
  let u: URL;
  const text = url.trim();
  try { u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`); } catch { throw new InputError(`'${url}' is not a URL`, QL_HINT); }
  if (!/^(www\.)?neuronpedia\.org$/.test(u.hostname) || u.pathname.replace(/\/+$/, '') !== '/quick-list') {
    throw new InputError(`${u.origin}${u.pathname} is not a Neuronpedia quick-list URL`, QL_HINT);
  }
  const raw = u.searchParams.get('features');
  if (raw === null) throw new InputError("the quick-list URL has no 'features' parameter", QL_HINT);
  let list: unknown;
  try { list = JSON.parse(raw); } catch (e) {
    throw new InputError(`the quick-list 'features' parameter is not valid JSON: ${(e as Error).message}`, `${QL_HINT} (the URL may have been cut off)`);
  }
  if (!Array.isArray(list)) throw new InputError("the quick-list 'features' parameter is not a JSON list", QL_HINT);
  if (list.length === 0) throw new InputError('the quick list has no features', QL_HINT);
  const features = list.map((f: unknown, i: number): QuickListFeature => {
    if (typeof f !== 'object' || f === null) throw new InputError(`quick-list feature ${i} is not an object`, QL_HINT);
    const r = f as Record<string, unknown>;
    if (typeof r.modelId !== 'string' || r.modelId === '') throw new InputError(`quick-list feature ${i} has no modelId`, QL_HINT);
    if (typeof r.layer !== 'string') throw new InputError(`quick-list feature ${i} has no layer`, QL_HINT);
    return { modelId: r.modelId, layer: r.layer, index: parseIndex(r.index, i) };
  });
  return { name: u.searchParams.get('name') ?? '', features };
}

/**
 * Parses a quick-list URL into features. Every feature must be of one model and one SAE set;
 * with `expected`, they must be the loaded model's and dictionaries' (typed errors list what
 * was expected).
 */
export function parseQuickListUrl(url: string, expected: QuickListExpectation = {}): QuickList {
  const { name, features } = quickListFeatures(url);
  const modelIds = [...new Set(features.map((f) => f.modelId))];
  if (modelIds.length > 1) throw new InputError(`the quick list mixes models: ${modelIds.join(', ')}`, 'steer one model at a time: split the list by modelId');
  const modelId = modelIds[0]!;
  if (expected.modelId !== undefined && modelId !== expected.modelId) {
    throw new InputError(`the quick list is for model '${modelId}', but the loaded model is '${expected.modelId}'`,
      `use a list of ${expected.modelId} features, or load ${modelId} (if it is the same model, pass its Neuronpedia id as the model id)`);
  }
  const parsed = features.map((f) => ({ f, layer: parseNeuronpediaLayer(f.layer) }));
  const sets = [...new Set(parsed.map((p) => p.layer.saeSet))];
  const saeSet = expected.saeSet ?? sets[0]!;
  const wrongSet = parsed.filter((p) => p.layer.saeSet !== saeSet);
  if (wrongSet.length) {
    throw new InputError(`the quick list uses SAE set${sets.length > 1 ? 's' : ''} ${sets.map((s) => `'${s}'`).join(', ')} (layer ${wrongSet[0]!.f.layer}), but the loaded dictionaries are set '${saeSet}'`,
      `expected layers like ${expectedLayers(expected.submodules, saeSet)}; pass the list's set name (--sae-set) if your dictionaries are that set`);
  }
  if (expected.submodules) {
    const known = new Set(expected.submodules);
    const bad = parsed.filter((p) => !known.has(p.layer.submodule));
    if (bad.length) {
      throw new InputError(`the quick list names layer${bad.length > 1 ? 's' : ''} ${[...new Set(bad.map((p) => p.f.layer))].join(', ')}, which the model does not have`,
        `expected one of ${expectedLayers(expected.submodules, saeSet)}`);
    }
  }
  return { name, modelId, saeSet, features: uniqueFeatures(parsed.map((p): FeatureRef => ({ kind: 'feature', submodule: p.layer.submodule, index: p.f.index, pos: null }))) };
}

/** Quick-list URLs for `features` (error nodes skipped, positions dropped, ≤ maxPerList per URL). */
export function formatQuickListUrls(features: readonly FeatureRef[], options: ExportOptions): QuickListExport {
  const saeSet = checkSet(options.saeSet ?? DEFAULT_SAE_SET);
  const per = options.maxPerList ?? QUICK_LIST_LIMIT;
  if (!Number.isInteger(per) || per < 1 || per > QUICK_LIST_LIMIT) throw new InputError(`features per list must be 1..${QUICK_LIST_LIMIT}, got ${per}`);
  if (options.modelId === '') throw new InputError('a Neuronpedia model id is needed', 'pass --model-id, e.g. pythia-70m-deduped');
  const skipped = features.filter((f) => f.kind === 'error');
  const kept = uniqueFeatures(features.flatMap((f): FeatureRef[] => (f.kind === 'feature' ? [{ ...f, pos: null }] : []))) as FeatureOnly[];
  const name = options.name ?? 'sfc circuit';
  const chunks: FeatureOnly[][] = [];
  for (let i = 0; i < kept.length; i += per) chunks.push(kept.slice(i, i + per));
  const urls = chunks.map((chunk, i) => {
    const list = chunk.map((f) => ({ modelId: options.modelId, layer: neuronpediaLayer(f.submodule, saeSet), index: String(f.index) }));
    const title = chunks.length > 1 ? `${name} (${i + 1}/${chunks.length})` : name;
    return `${NEURONPEDIA_ORIGIN}/quick-list?name=${encodeURIComponent(title)}&features=${encodeURIComponent(JSON.stringify(list))}`;
  });
  return { urls, skipped };
}

/** `https://www.neuronpedia.org/{modelId}/{layer}/{index}`. */
export function featurePageUrl(feature: FeatureRef, options: { readonly modelId: string; readonly saeSet?: string }): string {
  if (feature.kind === 'error') throw new InputError(`${featureId(feature)} is an SAE error node; Neuronpedia has pages for features only`);
  return `${NEURONPEDIA_ORIGIN}/${encodeURIComponent(options.modelId)}/${neuronpediaLayer(feature.submodule, options.saeSet)}/${feature.index}`;
}
