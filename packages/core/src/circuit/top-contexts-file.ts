// `sfc.top-contexts/v1`: the top-activating contexts of features of one SAE over a corpus, as
// `sfc dict top` writes them and the TUI reads them. One file per SAE, named and checked by the
// SAE's content hash (content-hash.ts), so contexts are never shown for another SAE. A context is
// the tokens of its row around the activating token (`at` indexes it), with the activation.

import type { TopActivationsResult } from '../algorithms/top-activations.js';
import { JsonReader, type Json } from './json-checks.js';

export const TOP_CONTEXTS_SCHEMA = 'sfc.top-contexts/v1';

export interface TopContext {
  readonly value: number;
  /** Decoded tokens of the context, one string per token. */
  readonly tokens: string[];
  /** Index in `tokens` of the activating token. */
  readonly at: number;
}

export interface TopContextsFile {
  readonly schema: typeof TOP_CONTEXTS_SCHEMA;
  readonly submodule: string;
  readonly sae: { readonly path: string; readonly hash: string };
  readonly model: Json;
  readonly corpus: { readonly path: string; readonly hash: string; readonly tokens: number };
  readonly k: number;
  readonly seqLen: number;
  /** Tokens shown before the activating one (within its row), and after it. */
  readonly before: number;
  readonly after: number;
  /** By feature index (as a string key): contexts, largest activation first. */
  readonly features: Record<string, TopContext[]>;
}

export interface TopContextsMeta {
  readonly sae: TopContextsFile['sae'];
  readonly model: Json;
  readonly corpus: TopContextsFile['corpus'];
  readonly k: number;
  readonly before: number;
  readonly after: number;
}

/**
 * The text of each token of `ids` as it reads in context: decode(prefix + token) minus
 * decode(prefix). Decoding tokens one at a time loses the spaces word-level and WordPiece
 * tokenizers put between tokens; byte-level BPE pieces come out the same either way.
 */
export function tokenPieces(decode: (ids: readonly number[]) => string, ids: readonly number[]): string[] {
  const out: string[] = [];
  let prev = '';
  for (let i = 0; i < ids.length; i++) {
    const text = decode(ids.slice(0, i + 1));
    out.push(text.startsWith(prev) ? text.slice(prev.length) : decode([ids[i]!]));
    prev = text;
  }
  return out;
}

/** The files of a top-activations run, one per submodule; `decode` turns token ids into text (a tokenizer's decode). */
export function topContextsFiles(result: TopActivationsResult, tokens: Int32Array, decode: (ids: readonly number[]) => string,
  metaOf: (submodule: string) => TopContextsMeta): TopContextsFile[] {
  const { seqLen } = result;
  return [...result.features].map(([submodule, feats]) => {
    const meta = metaOf(submodule);
    const features: Record<string, TopContext[]> = {};
    for (const [f, list] of feats) {
      features[String(f)] = list.map(({ token, value }) => {
        const rowStart = Math.floor(token / seqLen) * seqLen;
        const from = Math.max(rowStart, token - meta.before);
        const to = Math.min(rowStart + seqLen, tokens.length, token + meta.after + 1);
        return { value: Math.fround(value), tokens: tokenPieces(decode, Array.from(tokens.subarray(from, to))), at: token - from };
      });
    }
    return { schema: TOP_CONTEXTS_SCHEMA, submodule, ...meta, seqLen, features };
  });
}

/** `existing` with `update`'s features added (replacing any feature both have) when both come from the same SAE, corpus and settings; else `update`. */
export function mergeTopContexts(existing: TopContextsFile | undefined, update: TopContextsFile): TopContextsFile {
  const same = existing && existing.sae.hash === update.sae.hash && existing.corpus.hash === update.corpus.hash
    && existing.k === update.k && existing.seqLen === update.seqLen && existing.before === update.before && existing.after === update.after;
  return same ? { ...update, features: { ...existing.features, ...update.features } } : update;
}

export function serializeTopContexts(file: TopContextsFile): string {
  return `${JSON.stringify(file)}\n`;
}

const HINT = 'an sfc.top-contexts/v1 file is written by `sfc dict top`';

export function parseTopContexts(text: string, source = 'top-contexts file'): TopContextsFile {
  const r = new JsonReader(source, HINT);
  const o = r.parse(text);
  if (o.schema !== TOP_CONTEXTS_SCHEMA) r.fail('schema', `must be "${TOP_CONTEXTS_SCHEMA}", got ${JSON.stringify(o.schema)}`);
  const sae = r.object(o.sae, 'sae');
  const corpus = r.object(o.corpus, 'corpus');
  const feats = r.object(o.features, 'features');
  const features: Record<string, TopContext[]> = {};
  for (const [f, v] of Object.entries(feats)) {
    if (!/^\d+$/.test(f)) r.fail(`features.${f}`, 'is not a feature index');
    features[f] = r.array(v, `features.${f}`).map((c, i) => {
      const path = `features.${f}[${i}]`;
      const ctx = r.object(c, path);
      const tokens = r.array(ctx.tokens, `${path}.tokens`).map((t, j) => r.string(t, `${path}.tokens[${j}]`));
      const at = r.int(ctx.at, `${path}.at`, 0);
      if (at >= tokens.length) r.fail(`${path}.at`, `is out of range (${tokens.length} tokens)`);
      return { value: r.number(ctx.value, `${path}.value`), tokens, at };
    });
  }
  return {
    schema: TOP_CONTEXTS_SCHEMA, submodule: r.string(o.submodule, 'submodule'),
    sae: { path: r.string(sae.path, 'sae.path'), hash: r.string(sae.hash, 'sae.hash') },
    model: r.object(o.model, 'model'),
    corpus: { path: r.string(corpus.path, 'corpus.path'), hash: r.string(corpus.hash, 'corpus.hash'), tokens: r.int(corpus.tokens, 'corpus.tokens', 0) },
    k: r.int(o.k, 'k', 1), seqLen: r.int(o.seqLen, 'seqLen', 1), before: r.int(o.before, 'before', 0), after: r.int(o.after, 'after', 0),
    features,
  };
}

/** The file name of an SAE's contexts in a top-contexts folder: its content hash. */
export function topContextsFileName(saeHash: string): string {
  return `${saeHash.replace(/[^0-9A-Za-z-]/g, '-')}.json`;
}
