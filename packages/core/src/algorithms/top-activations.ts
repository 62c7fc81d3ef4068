// Each feature's top-activating tokens over a corpus (Neuronpedia's "top activations", offline):
// the corpus is cut into rows of `seqLen` tokens, run through the model in batches without logits,
// and for every requested feature the k largest activations are kept with their row and position.
// Architecture-agnostic: it reads submodule values from `model.forward` and feature activations
// from the dictionaries (`encodeFeatures` when the SAE has it — a few columns instead of the whole
// encoder — else `encode` and a gather). Per batch only the top k of each feature leave the
// backend (ops.topk over the batch's tokens), so "all features" stays bounded in memory.

import type { Dictionary } from '../dictionary.js';
import { InputError } from '../errors.js';
import type { Model } from '../model/model.js';
import type { Tensor } from '../tensor.js';
import { cancelCheck } from './cancel.js';
import type { ProgressCallback } from './progress.js';

export interface TopActivation {
  /** Token index in the corpus (row · seqLen + position). */
  readonly token: number;
  readonly value: number;
}

export interface TopActivationsOptions {
  /** Features per submodule: indices, or 'all'. */
  readonly features: ReadonlyMap<string, Int32Array | 'all'>;
  /** Activations kept per feature (default 10). */
  readonly k?: number;
  /** Tokens per row (default 64, at most the model's positions). */
  readonly seqLen?: number;
  /** Rows per forward (default 32). */
  readonly batchSize?: number;
  readonly onProgress?: ProgressCallback;
  readonly signal?: AbortSignal;
}

export interface TopActivationsResult {
  readonly seqLen: number;
  /** Corpus tokens covered (whole rows; a shorter last row is run on its own). */
  readonly tokens: number;
  /** By submodule, by feature: the top activations, largest first (only activations > 0). */
  readonly features: Map<string, Map<number, TopActivation[]>>;
}

/** Keeps the k largest (value, token) pairs, largest first. */
function insertTop(list: TopActivation[], k: number, item: TopActivation): void {
  if (list.length === k && item.value <= list[k - 1]!.value) return;
  let i = list.length;
  while (i > 0 && list[i - 1]!.value < item.value) i--;
  list.splice(i, 0, item);
  if (list.length > k) list.pop();
}

/** [N, n] activations of `features` at rows x [N, d] (inside a scope: intermediates are freed with it). */
function activations(model: Model, dict: Dictionary, x: Tensor, features: Int32Array | 'all'): Tensor {
  if (features === 'all') return dict.encode(x);
  if (dict.encodeFeatures) return dict.encodeFeatures(x, features);
  return model.ops.gather(dict.encode(x), model.ops.intTensor(features, [features.length]), 1);
}

export async function topActivations(model: Model, dictionaries: ReadonlyMap<string, Dictionary>, tokens: Int32Array, options: TopActivationsOptions): Promise<TopActivationsResult> {
  const k = options.k ?? 10;
  const seqLen = Math.min(options.seqLen ?? 64, model.spec.dims.maxPositions);
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(k) || k < 1) throw new InputError(`k must be an integer ≥ 1, got ${k}`);
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new InputError(`seqLen must be an integer ≥ 1, got ${seqLen}`);
  if (tokens.length === 0) throw new InputError('the corpus has no tokens', 'give a text file with some text');
  // By canonical submodule name, in the order asked.
  const wanted = new Map<string, Int32Array | 'all'>();
  const out = new Map<string, Map<number, TopActivation[]>>();
  for (const [name, feats] of options.features) {
    const sub = model.submodule(name).name;
    const dict = dictionaries.get(sub);
    if (!dict) throw new InputError(`no dictionary for ${sub}`, 'load the SAEs of every submodule whose features are asked for');
    const ids = feats === 'all' ? Array.from({ length: dict.dSae }, (_, i) => i) : [...feats];
    for (const f of ids) if (!Number.isInteger(f) || f < 0 || f >= dict.dSae) throw new InputError(`${sub}/${f}: feature index out of range [0, ${dict.dSae})`);
    wanted.set(sub, feats);
    out.set(sub, new Map(ids.map((f) => [f, []])));
  }
  const fullRows = Math.floor(tokens.length / seqLen);
  const batches: { start: number; rows: number; seq: number }[] = [];
  for (let r = 0; r < fullRows; r += batchSize) batches.push({ start: r * seqLen, rows: Math.min(batchSize, fullRows - r), seq: seqLen });
  if (tokens.length % seqLen) batches.push({ start: fullRows * seqLen, rows: 1, seq: tokens.length % seqLen });
  const check = cancelCheck(options.signal, 'top activations');
  const ops = model.ops;
  for (const [bi, b] of batches.entries()) {
    await check();
    const n = b.rows * b.seq;
    let found: { sub: string; feats: number[]; values: ArrayLike<number>; indices: ArrayLike<number> }[] = [];
    await ops.scope(async () => {
      const ids = ops.intTensor(tokens.subarray(b.start, b.start + n), [b.rows, b.seq]);
      const { values } = await model.forward(ids, { logits: false });
      const tops: { sub: string; values: Tensor; indices: Tensor; feats: number[] }[] = [];
      for (const [sub, feats] of wanted) {
        const v = values.get(sub)!;
        const x = ops.reshape(v, [n, v.shape[v.shape.length - 1]!]);
        const top = ops.topk(ops.transpose(activations(model, dictionaries.get(sub)!, x, feats)), Math.min(k, n));
        tops.push({ sub, values: top.values, indices: top.indices, feats: [...out.get(sub)!.keys()] });
      }
      found = await Promise.all(tops.map(async (t) => ({ sub: t.sub, feats: t.feats, values: await t.values.data(), indices: await t.indices.data() })));
      return 0; // host copies only: every tensor of the batch is freed with the scope
    });
    for (const t of found) {
      const kk = t.values.length / t.feats.length;
      const lists = out.get(t.sub)!;
      t.feats.forEach((f, j) => {
        const list = lists.get(f)!;
        for (let c = 0; c < kk; c++) {
          const v = t.values[j * kk + c]!;
          if (!(v > 0)) break;
          insertTop(list, k, { token: b.start + t.indices[j * kk + c]!, value: v });
        }
      });
    }
    options.onProgress?.({ stage: 'batches', done: bi + 1, total: batches.length });
  }
  return { seqLen, tokens: tokens.length, features: out };
}
