// A model loaded on tfjs: canonical weights uploaded once, each segment's forward run eagerly,
// and its VJP by tfjs autodiff (tf.grads) over the same function. Every call runs in a tidy,
// so only the returned tensors outlive it — except the keys and values a KV cache holds, which
// are kept (tf.keep, out of every scope) and freed when the cache replaces them or is disposed.

import * as tf from '@tensorflow/tfjs';
import {
  BackendError, InputError, LayerKvCache, NotFoundError, ShapeError, SfcError, shapeToString, sizeOf,
  type AttentionSegment, type KvCache, type KvCacheOptions, type ModelSpec, type SegmentCallOptions, type SegmentRuntime,
  type SegmentSpec, type Tensor, type WeightStore, isHalfWeight, segmentWidth, valueWidth, widenWeight,
} from '@sfc/core';
import { unwrap } from './handle.js';
import type { TfjsOps } from './ops.js';
import { attentionFn, attentionStepFn, embedForward, mlpFn, projectFn, transposedWeight, unembedFn, type PastKeyValues, type SegmentFn } from './segments.js';

export class TfjsSegmentRuntime implements SegmentRuntime {
  private disposed = false;
  /** Live KV caches: disposing the model frees the tensors they keep. */
  private readonly caches = new Set<LayerKvCache<PastKeyValues>>();

  private constructor(
    private readonly spec: ModelSpec,
    private readonly weights: Map<string, tf.Tensor>,
    private readonly ops: TfjsOps,
    private readonly onDispose: (rt: TfjsSegmentRuntime) => void,
  ) {}

  /** Validates every canonical weight against the spec before anything is allocated, then uploads. */
  static load(spec: ModelSpec, store: WeightStore, ops: TfjsOps, copy: boolean, onDispose: (rt: TfjsSegmentRuntime) => void): TfjsSegmentRuntime {
    for (const [name, shape] of spec.weightShapes) {
      const wt = store.get(name);
      if (!wt) throw new NotFoundError(`weight '${name}' is missing from the weight store`, 'load weights with canonicalWeights(spec, …) for this spec');
      if (wt.shape.length !== shape.length || wt.shape.some((x, i) => x !== shape[i]) || wt.data.length !== sizeOf(shape)) {
        throw new ShapeError(`weight '${name}' has shape ${shapeToString(wt.shape)} (${wt.data.length} values) but the spec needs ${shapeToString(shape)}`);
      }
    }
    const weights = new Map<string, tf.Tensor>();
    try {
      for (const [name, shape] of spec.weightShapes) {
        // A 16-bit weight is widened here, once: tfjs computes in float32 (the widened array is
        // already a copy). kept: loading inside a caller's scope must not free the weights when that scope ends.
        const w = store.get(name)!;
        const data = isHalfWeight(w) ? widenWeight(w).data : copy ? w.data.slice() : w.data;
        weights.set(name, tf.keep(tf.tensor(data, [...shape], 'float32')));
      }
      // A tied unembedding reads the embedding transposed: one [d, vocab] copy for plain matMuls.
      for (const seg of spec.segments) {
        if (seg.kind === 'unembed' && seg.transposed) {
          const name = seg.weight.weight;
          weights.set(transposedWeight(name), tf.keep(tf.transpose(weights.get(name)!)));
        }
      }
    } catch (e) {
      for (const t of weights.values()) t.dispose();
      throw new BackendError(`uploading the weights to TensorFlow.js failed: ${(e as Error).message}`, 'is there enough memory for the model?', { cause: e });
    }
    return new TfjsSegmentRuntime(spec, weights, ops, onDispose);
  }

  private readonly weight = (name: string): tf.Tensor => {
    const t = this.weights.get(name);
    if (!t) throw new Error(`internal: no weight '${name}'`);
    return t;
  };

  private segment(name: string): SegmentSpec {
    if (this.disposed) throw new InputError(`segment '${name}' called on a disposed model`, 'load the model again');
    const s = this.spec.segments.find((x) => x.name === name);
    if (!s) throw new NotFoundError(`no segment '${name}'`, `segments: ${this.spec.segments.map((x) => x.name).join(', ')}`);
    return s;
  }

  /** Unwraps and checks the inputs: ids [b, s] for embed, otherwise equal [b, s, d] float32 tensors. */
  private inputs(seg: SegmentSpec, inputs: readonly Tensor[]): tf.Tensor[] {
    const what = `segment '${seg.name}'`;
    if (seg.kind === 'embed') {
      if (inputs.length !== 1) throw new InputError(`${what} takes one input (token ids), got ${inputs.length}`);
      const ids = unwrap(inputs[0]!, what);
      if (ids.dtype !== 'int32' || ids.rank !== 2) throw new ShapeError(`${what}: token ids must be int32 [batch, seq], got ${ids.dtype} ${shapeToString(ids.shape)}`);
      const V = this.spec.dims.vocabSize;
      for (const id of ids.dataSync()) if (id < 0 || id >= V) throw new InputError(`${what}: token id ${id} is outside the vocabulary [0, ${V})`, 'the token ids come from another tokenizer');
      return [ids];
    }
    const n = seg.inputs.length;
    if (inputs.length !== n) throw new InputError(`${what} takes ${n} input${n === 1 ? '' : 's'} (${seg.inputs.join(', ')}), got ${inputs.length}`);
    const xs = inputs.map((t) => unwrap(t, what));
    const first = xs[0]!;
    // Width d, except a projection's input (the concatenated heads of its attention segment).
    const d = valueWidth(this.spec, seg.inputs[0]!);
    for (const x of xs) {
      if (x.dtype !== 'float32' || x.rank !== 3 || x.shape[2] !== d || x.shape.some((v, i) => v !== first.shape[i])) {
        throw new ShapeError(`${what}: inputs must be float32 [batch, seq, ${d}] of one shape, got ${xs.map((t) => `${t.dtype} ${shapeToString(t.shape)}`).join(', ')}`);
      }
      if (x.shape[1] === 0 || x.shape[0] === 0) throw new ShapeError(`${what}: empty input ${shapeToString(x.shape)}`);
    }
    return xs;
  }

  private offset(seq: number, options: SegmentCallOptions | undefined): number {
    const offset = options?.positionOffset ?? 0;
    if (!Number.isInteger(offset) || offset < 0) throw new InputError(`positionOffset must be a non-negative integer, got ${offset}`);
    const max = this.spec.dims.maxPositions;
    if (this.spec.architecture === 'gpt2' && offset + seq > max) {
      throw new InputError(`positions ${offset}…${offset + seq - 1} exceed the model's ${max} learned positions`, 'shorten the prompt or the generation');
    }
    return offset;
  }

  /** Builds the differentiable function of the segment's summed input for one call. */
  private fn(seg: SegmentSpec, xShape: readonly number[], options: SegmentCallOptions | undefined): SegmentFn {
    switch (seg.kind) {
      case 'attention': return attentionFn(seg, this.weight, xShape[1]!, this.offset(xShape[1]!, options));
      case 'mlp': return mlpFn(seg, this.weight);
      case 'project': return projectFn(seg, this.weight);
      case 'scale': return (x) => tf.mul(x, tf.scalar(seg.factor)); // as embedForward's scale
      case 'unembed': {
        const sel = options?.logits;
        let columns: tf.Tensor | undefined;
        if (sel?.columns) {
          columns = unwrap(sel.columns, 'logit columns');
          if (columns.dtype !== 'int32' || columns.rank !== 2 || columns.shape[0] !== xShape[0]) {
            throw new ShapeError(`logit columns must be int32 [batch=${xShape[0]}, k], got ${columns.dtype} ${shapeToString(columns.shape)}`);
          }
          const V = this.spec.dims.vocabSize;
          for (const id of columns.dataSync()) if (id < 0 || id >= V) throw new InputError(`logit column ${id} is outside the vocabulary [0, ${V})`);
        }
        return unembedFn(seg, this.weight, { lastOnly: sel?.lastOnly ?? false, columns });
      }
      case 'sum': return (x) => tf.clone(x); // never hand out an input as the output: disposing one would free both
      case 'embed': throw new Error('internal: embed has no function of a float input');
    }
  }

  private guard<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof SfcError) throw e;
      throw new BackendError(`${what} failed in TensorFlow.js: ${(e as Error).message}`, 'this is a bug in sfc or tfjs; please report it with the model config', { cause: e });
    }
  }

  async createKvCache(options: KvCacheOptions): Promise<KvCache> {
    if (this.disposed) throw new InputError('createKvCache on a disposed model', 'load the model again');
    const cache = LayerKvCache.create<PastKeyValues>(this, this.spec, options, (e) => { e.k.dispose(); e.v.dispose(); }, (c) => this.caches.delete(c));
    this.caches.add(cache);
    return cache;
  }

  async forward(segment: string, inputs: readonly Tensor[], options?: SegmentCallOptions): Promise<Tensor> {
    const seg = this.segment(segment);
    const xs = this.inputs(seg, inputs);
    if (seg.kind === 'attention' && options?.cache) return this.cachedAttention(seg, xs, options.cache, options);
    const out = this.guard(`forward of '${segment}'`, () => tf.tidy(() => {
      if (seg.kind === 'embed') return embedForward(seg, this.weight, xs[0]!, this.offset(xs[0]!.shape[1]!, options), options?.cache?.padding);
      const x = xs.length === 1 ? xs[0]! : tf.addN(xs);
      return this.fn(seg, x.shape, options)(x);
    }));
    return this.ops.wrap(out);
  }

  /** Attention over the cached past plus the new positions; the cache then holds both. */
  private async cachedAttention(seg: AttentionSegment, xs: tf.Tensor[], kv: KvCache, options: SegmentCallOptions): Promise<Tensor> {
    const [batch, seq] = xs[0]!.shape as [number, number];
    const offset = this.offset(seq, options);
    const cache = LayerKvCache.of<PastKeyValues>(kv, this);
    const { entry: past } = cache.begin(seg.name, batch, offset, seq);
    const [y, k, v] = this.guard(`cached forward of '${seg.name}'`, () => tf.tidy(() => {
      const x = xs.length === 1 ? xs[0]! : tf.addN(xs);
      const r = attentionStepFn(seg, this.weight, seq, offset, past, cache.padding)(x);
      return [r.y, r.k, r.v];
    }));
    // Kept: the caller's ops.scope must not free what the cache holds; the cache disposes them.
    cache.commit(seg.name, offset, offset + seq, () => ({ k: tf.keep(k!), v: tf.keep(v!) }));
    return this.ops.wrap(y!);
  }

  async vjp(segment: string, inputs: readonly Tensor[], cotangent: Tensor, options?: SegmentCallOptions): Promise<Tensor[]> {
    const seg = this.segment(segment);
    if (options?.cache) throw new InputError(`vjp of '${segment}' with a KV cache`, 'VJPs run on full sequences: call vjp without a cache');
    const xs = this.inputs(seg, inputs);
    if (seg.kind === 'embed') return []; // token ids have no cotangent
    const dy = unwrap(cotangent, `cotangent of '${segment}'`);
    const expected = this.outputShape(seg, xs[0]!.shape, options);
    if (dy.dtype !== 'float32' || dy.shape.length !== expected.length || dy.shape.some((v, i) => v !== expected[i])) {
      throw new ShapeError(`vjp of '${segment}': cotangent ${dy.dtype} ${shapeToString(dy.shape)} does not match the output ${shapeToString(expected)}`,
        'the cotangent batch must equal the inputs\' batch (tile the inputs first)');
    }
    const grads = this.guard(`vjp of '${segment}'`, () => tf.tidy(() => {
      // Every input enters the segment through one sum, so all inputs share one cotangent.
      let g: tf.Tensor;
      if (seg.kind === 'sum') {
        g = tf.clone(dy);
      } else {
        const x = xs.length === 1 ? xs[0]! : tf.addN(xs);
        const f = this.fn(seg, x.shape, options);
        g = tf.grads((xi: tf.Tensor) => f(xi))([x], dy)[0]!;
      }
      // Distinct tensors (sharing storage): disposing one input's cotangent must not free another's.
      return xs.map((_, i) => (i === 0 ? g : tf.clone(g)));
    }));
    return grads.map((g) => this.ops.wrap(g));
  }

  private outputShape(seg: SegmentSpec, x: readonly number[], options: SegmentCallOptions | undefined): number[] {
    if (seg.kind !== 'unembed') return [x[0]!, x[1]!, segmentWidth(this.spec, seg)];
    const sel = options?.logits;
    const width = sel?.columns ? sel.columns.shape[1]! : this.spec.dims.vocabSize;
    return sel?.lastOnly ? [x[0]!, width] : [x[0]!, x[1]!, width];
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const c of [...this.caches]) c.dispose();
    for (const t of this.weights.values()) t.dispose();
    this.weights.clear();
    this.onDispose(this);
  }
}
