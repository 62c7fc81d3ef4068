// The bookkeeping every backend's KV cache shares: options checked against the model, one entry
// per attention segment with the number of positions it holds, the checks a cached call must pass
// (owner, disposal, batch, start position, capacity) before any compute, and disposal. Backends
// keep their own entry type (tfjs: kept key/value tensors; onnx: host buffers) and do the math.

import type { KvCache, KvCacheOptions } from '../backend.js';
import { InputError, ShapeError } from '../errors.js';
import type { ModelSpec } from './spec.js';

const NEW_CACHE = 'create a new cache with model.createKvCache()';

/**
 * Batch and maxLength must be positive integers, maxLength within the model's positions; padding
 * (if given) one count per row, each in 0…maxLength−1.
 */
export function checkKvCacheOptions(spec: ModelSpec, options: KvCacheOptions): void {
  const { batch, maxLength, padding } = options;
  if (!Number.isInteger(batch) || batch < 1) throw new InputError(`KV cache batch must be a positive integer, got ${batch}`);
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new InputError(`KV cache maxLength must be a positive integer, got ${maxLength}`);
  const max = spec.dims.maxPositions;
  if (maxLength > max) {
    throw new InputError(`a KV cache of ${maxLength} positions exceeds the model's ${max} positions`, `use maxLength ≤ ${max} (prompt + tokens to generate)`);
  }
  if (padding === undefined) return;
  if (padding.length !== batch) throw new ShapeError(`KV cache padding has ${padding.length} entries for ${batch} rows`, 'give one left-padding count per row');
  for (const p of padding) {
    if (!Number.isInteger(p) || p < 0 || p >= maxLength) {
      throw new InputError(`KV cache padding ${p} is not an integer in 0…${maxLength - 1}`, 'pad each row on the left by fewer slots than the cache holds');
    }
  }
}

/** The padding a cache keeps: undefined when no row is padded (the unpadded path, unchanged). */
export function effectivePadding(padding: readonly number[] | undefined): readonly number[] | undefined {
  return padding && padding.some((p) => p > 0) ? Object.freeze([...padding]) : undefined;
}

/**
 * Per-row positions of slots offset…offset+seq−1 of a left-padded batch, row-major [rows, seq]:
 * slot t of row r is position t − padding[r], clamped at 0 for pad slots (their value is unused).
 */
export function paddedPositions(padding: readonly number[], offset: number, seq: number): Int32Array {
  const out = new Int32Array(padding.length * seq);
  padding.forEach((p, r) => { for (let t = 0; t < seq; t++) out[r * seq + t] = Math.max(0, offset + t - p); });
  return out;
}

/**
 * Per-row key mask of a left-padded batch over the `width` slots a cached attention sees,
 * row-major [rows, width]: 1 for a real token, 0 for a pad slot.
 */
export function paddedKeyMask(padding: readonly number[], width: number): Uint8Array {
  const out = new Uint8Array(padding.length * width);
  padding.forEach((p, r) => out.fill(1, r * width + Math.min(p, width), (r + 1) * width));
  return out;
}

/**
 * Checks a forward of `batch` rows × `seq` new positions starting at `offset` against a cache as a
 * whole: alive, same batch, starting where the cache ends, and room for the new positions.
 */
export function checkKvCacheCall(cache: KvCache, batch: number, offset: number, seq: number): void {
  if (cache.isDisposed) throw new InputError('the KV cache was disposed', NEW_CACHE);
  if (batch !== cache.batch) throw new ShapeError(`the KV cache holds ${cache.batch} rows but the forward has ${batch}`, 'use one cache per batch');
  checkRoom(cache, offset, seq);
}

function checkRoom(cache: KvCache, offset: number, seq: number): void {
  if (offset + seq > cache.maxLength) {
    throw new InputError(`the KV cache holds at most ${cache.maxLength} positions; positions ${offset}…${offset + seq - 1} do not fit`,
      'create the cache with a larger maxLength (prompt + tokens to generate)');
  }
}

interface Held<E> { readonly entry: E; readonly length: number }

export class LayerKvCache<E> implements KvCache {
  private readonly held = new Map<string, Held<E>>();
  private disposed = false;

  private constructor(
    /** The runtime that created the cache; only it may use it. */
    private readonly owner: object,
    private readonly layers: readonly string[],
    readonly batch: number,
    readonly maxLength: number,
    readonly padding: readonly number[] | undefined,
    private readonly release: (entry: E) => void,
    private readonly onDispose: ((cache: LayerKvCache<E>) => void) | undefined,
  ) {}

  /**
   * An empty cache for every attention segment of `spec`. `release` frees one entry; `onDispose`
   * is told once when the cache is disposed (owners that track their live caches).
   */
  static create<E>(owner: object, spec: ModelSpec, options: KvCacheOptions, release: (entry: E) => void,
    onDispose?: (cache: LayerKvCache<E>) => void): LayerKvCache<E> {
    checkKvCacheOptions(spec, options);
    const layers = spec.segments.filter((s) => s.kind === 'attention').map((s) => s.name);
    return new LayerKvCache(owner, layers, options.batch, options.maxLength, effectivePadding(options.padding), release, onDispose);
  }

  /** `cache` as the cache `owner` created (InputError for a cache of another model or backend). */
  static of<E>(cache: KvCache, owner: object): LayerKvCache<E> {
    if (!(cache instanceof LayerKvCache) || cache.owner !== owner) {
      throw new InputError('the KV cache belongs to another model or backend', 'create the cache with createKvCache() of the model that runs the forward');
    }
    return cache as LayerKvCache<E>;
  }

  get length(): number {
    if (this.disposed) return 0;
    let min = Infinity;
    for (const l of this.layers) min = Math.min(min, this.held.get(l)?.length ?? 0);
    return this.layers.length ? min : 0;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /**
   * Checks a cached call of segment `layer` (before any compute) and returns what it holds:
   * `entry` is undefined while it holds no position.
   */
  begin(layer: string, batch: number, offset: number, seq: number): { readonly entry: E | undefined; readonly length: number } {
    if (!this.layers.includes(layer)) throw new Error(`internal: '${layer}' is not an attention segment`);
    checkKvCacheCall(this, batch, offset, seq);
    const held = this.held.get(layer);
    const length = held?.length ?? 0;
    if (offset !== length) {
      throw new InputError(`segment '${layer}': the KV cache holds ${length} positions, but the forward starts at position ${offset}`,
        `a cached forward continues where the last one ended (positionOffset = cache.length); after a failed forward, ${NEW_CACHE}`);
    }
    return { entry: held?.entry, length };
  }

  /**
   * `layer`, which held `from` positions, now holds `length` in the entry `make` returns (called
   * only after the checks, so a backend may write into its buffers there). A previous entry that
   * is another object is released. Throws if another forward changed the layer in between.
   */
  commit(layer: string, from: number, length: number, make: (prev: E | undefined) => E): void {
    if (this.disposed) throw new InputError('the KV cache was disposed during a forward', NEW_CACHE);
    checkRoom(this, 0, length);
    const prev = this.held.get(layer);
    if ((prev?.length ?? 0) !== from) {
      throw new InputError(`segment '${layer}': the KV cache changed during the forward (two forwards at once?)`,
        `run one forward at a time per cache; ${NEW_CACHE}`);
    }
    const entry = make(prev?.entry);
    this.held.set(layer, { entry, length });
    if (prev && prev.entry !== entry) this.release(prev.entry);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const h of this.held.values()) this.release(h.entry);
    this.held.clear();
    this.onDispose?.(this);
  }
}
