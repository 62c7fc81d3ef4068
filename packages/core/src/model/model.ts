// The model as core owns it: a chain of segments between submodules, executed by a backend.
// Forward with edits at any submodule, starting mid-chain from cached values, and the reverse
// pass segment by segment with stop-gradients — the one place every algorithm runs the model.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { collectGarbage } from '../garbage.js';
import type { Backend, KvCache, KvCacheOptions, SegmentCallOptions, SegmentRuntime } from '../backend.js';
import { CapabilityError, FormatError, InputError, NotFoundError, ShapeError } from '../errors.js';
import { quoteName } from '../quote.js';
import { jsonSyntaxError } from '../circuit/json-checks.js';
import { loadTokenizer, type Tokenizer } from '../formats/tokenizer.js';
import { isGemma, listSubmodules, requireSubmodule, resolveSubmoduleAlias, type Submodule } from '../submodule.js';
import type { Tensor, TensorOps } from '../tensor.js';
import { parseModelConfig } from './config.js';
import { checkKvCacheCall, checkKvCacheOptions } from './kv-cache.js';
import { segmentWidth, transposedTiedUnembed, withEmbedSubmodule, type LogitSelection, type ModelSpec, type SegmentSpec } from './spec.js';
import { openCheckpoint, type Checkpoint } from './checkpoint.js';
import { checkMemory, formatBytes, type MemoryNeed } from './memory-budget.js';
import { canonicalWeights, type LoadedWeights } from './weights.js';

/** Where the tensor handed to an edit sits in the sequence. */
export interface EditCall {
  /** Absolute position of the tensor's first row along the sequence axis (> 0 for cached steps). */
  readonly positionOffset: number;
  /**
   * With a left-padded KV cache (KvCacheOptions.padding): pad slots per row, so row r's element t
   * is at position positionOffset + t − padding[r] (negative: a pad slot). Absent: no padding.
   */
  readonly padding?: readonly number[];
}

/**
 * Called with a submodule's computed output [batch, seq, d]; returns the value the rest of the
 * model sees. Position-dependent edits must read `call.positionOffset`: with a KV cache, `x`
 * holds only the new positions.
 */
export type Edit = (x: Tensor, call: EditCall) => Tensor;

export interface ForwardOptions {
  /** Edits applied to submodule outputs, in forward order (downstream edits see upstream ones). */
  readonly edits?: ReadonlyMap<string, Edit>;
  /** Which logits to compute; `false` stops after the last submodule. Default: all. */
  readonly logits?: LogitSelection | false;
  /** Position of the first token; with a cache it defaults to (and must equal) `cache.length`. */
  readonly positionOffset?: number;
  /**
   * KV cache (from createKvCache) for incremental decoding: `tokens` are only the new positions;
   * attention reads the cached past and appends the new keys and values.
   */
  readonly cache?: KvCache;
  /**
   * Also keep, per segment, what its VJP would recompute (where the backend offers
   * forwardKeeping), in `ForwardResult.kept`, for a `backward` over these values. It costs memory
   * (the segments' linear products for every row), so it suits one backward of a few rows.
   */
  readonly keepForBackward?: boolean;
}

export interface ForwardResult {
  /** Every submodule's output (after edits), by name. */
  readonly values: Map<string, Tensor>;
  readonly logits?: Tensor;
  /** With keepForBackward: per segment, what its VJP reads instead of recomputing (BackwardOptions.kept). */
  readonly kept?: Map<string, Tensor[]>;
}

export interface BackwardOptions {
  /** Submodules whose total gradient is wanted. */
  readonly targets: readonly string[];
  /** Gradients do not flow back through these submodules' outputs (their own gradient is still reported). */
  readonly stopAt?: ReadonlySet<string>;
  /** The logit selection used in the forward whose cotangent is given. */
  readonly logits?: LogitSelection;
  /** The positionOffset of the forward whose values are given (default 0). */
  readonly positionOffset?: number;
  /** ForwardResult.kept of the forward whose values are given (the same rows, in the same order). */
  readonly kept?: ReadonlyMap<string, readonly Tensor[]>;
}

export interface ModelLoadOptions {
  readonly warn?: (message: string) => void;
  /**
   * Encode words the tokenizer does not know as its unknown token (with a warning) instead of
   * refusing them; only tokenizers that have one (TokenizerOptions.allowUnknown).
   */
  readonly allowUnknown?: boolean;
  /**
   * Make the embedding output the `embed` submodule on models whose chain has none by default
   * (Gemma: feature-circuits' include_embed=True; withEmbedSubmodule). Other models have it anyway.
   */
  readonly embedSubmodule?: boolean;
}

/**
 * The submodules of a spec with their widths: attn_l is the concatenated heads when its segment
 * has no output projection (Gemma), and `embed` is absent when the spec says so.
 */
export function submodulesOf(spec: ModelSpec): Submodule[] {
  const attn = spec.segments.find((s) => s.kind === 'attention');
  return listSubmodules(spec.dims.nLayers, spec.architecture, {
    embed: spec.embedSubmodule ?? !isGemma(spec.architecture), dModel: spec.dims.dModel,
    ...(attn ? { attnWidth: segmentWidth(spec, attn) } : {}),
  });
}

/**
 * The memory loading `spec` on `backend` takes: the canonical weights (in 16 bits when `half`: a
 * BF16/F16 decoder checkpoint, kept 16-bit by canonicalWeights), and the backend's float32 copy
 * of them when it makes one — it copies, or it widens 16-bit weights at load — (then also the
 * [d, vocab] copy of a tied embedding it reads transposed, as tfjs does). A bf16 tensor that fp16
 * cannot hold exactly is widened to float32 (half-weights.ts); that is not in the estimate.
 */
export function weightMemory(spec: ModelSpec, backend: Backend, options: { readonly half?: boolean } = {}): MemoryNeed[] {
  const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
  const values = [...spec.weightShapes.values()].reduce((n, shape) => n + size(shape), 0);
  const half = !!options.half;
  const needs: MemoryNeed[] = [{ what: `${spec.architecture} weights (${half ? '16-bit, as stored' : 'float32'})`, bytes: (half ? 2 : 4) * values }];
  const widens = half && !backend.capabilities.halfWeights;
  if (backend.capabilities.copiesWeights !== false || widens) {
    const un = spec.segments[spec.segments.length - 1]!;
    const tied = un.kind === 'unembed' && un.transposed ? 4 * size(spec.weightShapes.get(un.weight.weight) ?? []) : 0;
    const what = widens ? `the ${backend.name} backend's float32 copy of the weights (it widens 16-bit weights at load)` : `the ${backend.name} backend's copy of the weights`;
    needs.push({ what, bytes: 4 * values + tied });
  }
  return needs;
}

/** Whether canonicalWeights keeps this checkpoint's weights 16-bit: a decoder whose floating-point tensors are all BF16/F16. */
function keepsHalf(spec: ModelSpec, ckpt: Checkpoint): boolean {
  if (spec.architecture === 'gpt2') return false;
  return ckpt.names().every((n) => { const t = ckpt.dtype(n); return t === 'BF16' || t === 'F16' || !t.startsWith('F'); });
}

/** The checkpoint's weights as the backend takes them, after checking that they fit in memory. */
async function readWeights(dir: string, spec: ModelSpec, backend: Backend, options: ModelLoadOptions): Promise<LoadedWeights['store']> {
  const ckpt = await openCheckpoint(dir);
  try {
    const half = keepsHalf(spec, ckpt);
    const budget = { action: 'loading the model', hint: 'free memory (close other programs or runs), or load a smaller model' };
    checkMemory(weightMemory(spec, backend, { half }), budget);
    // A bf16 tensor fp16 cannot hold exactly is widened (weightMemory counted it at 2 bytes a value).
    const beforeWiden = (name: string, bytes: number) => {
      checkMemory([{ what: `${name} as float32 (bf16 values fp16 cannot hold exactly)`, bytes }], budget);
      options.warn?.(`${ckpt.label}: ${name} is held as float32 (${formatBytes(bytes)}): some of its bf16 values are outside what fp16 holds exactly`);
    };
    const { store, unused } = canonicalWeights(spec, ckpt, ckpt.label, { keep16: half, beforeWiden, transposeLinears: !!backend.capabilities.halfWeightsTransposed });
    if (unused.length) options.warn?.(`${ckpt.label}: ignored ${unused.length} tensors not used by ${spec.architecture}: ${unused.slice(0, 5).map((n) => quoteName(n)).join(', ')}`);
    return store;
  } finally {
    ckpt.close();
  }
}

export class Model {
  readonly submodules: readonly Submodule[];
  /** Forward position of every value of the chain (submodules and intermediates such as `attn_l.out`). */
  private readonly order: Map<string, number>;
  private readonly isSubmodule: Set<string>;

  private constructor(
    readonly spec: ModelSpec,
    readonly backend: Backend,
    readonly runtime: SegmentRuntime,
    readonly tokenizer: Tokenizer,
    readonly dir: string,
  ) {
    this.submodules = submodulesOf(spec);
    this.order = new Map(spec.segments.map((s, i) => [s.name, i]));
    this.isSubmodule = new Set(this.submodules.map((s) => s.name));
  }

  get ops(): TensorOps {
    return this.backend.ops;
  }

  /** Loads a Hugging Face model folder (config.json, model.safetensors, tokenizer.json). */
  static async load(dir: string, backend: Backend, options: ModelLoadOptions = {}): Promise<Model> {
    if (!existsSync(dir)) throw new NotFoundError(`model folder ${dir} does not exist`, 'pass --model DIR with config.json, model.safetensors and tokenizer.json');
    const cfgPath = join(dir, 'config.json');
    if (!existsSync(cfgPath)) throw new NotFoundError(`no config.json in ${dir}`, 'a Hugging Face model folder has config.json, model.safetensors and tokenizer.json');
    let cfg: unknown;
    const cfgText = await readFile(cfgPath, 'utf8');
    try { cfg = JSON.parse(cfgText); } catch (e) {
      throw new FormatError(`${cfgPath} is not valid JSON: ${jsonSyntaxError(e, cfgText)}`);
    }
    const parsed = options.embedSubmodule ? withEmbedSubmodule(parseModelConfig(cfg)) : parseModelConfig(cfg);
    const spec = backend.capabilities.transposedUnembed ? transposedTiedUnembed(parsed) : parsed;
    let store: LoadedWeights['store'] | undefined = await readWeights(dir, spec, backend, options);
    const tokenizer = await loadTokenizer(dir, { allowUnknown: !!options.allowUnknown, ...(options.warn ? { warn: options.warn } : {}) });
    if (tokenizer.vocabSize > spec.dims.vocabSize) {
      throw new ShapeError(`tokenizer.json has ${tokenizer.vocabSize} tokens but the model's vocabulary has ${spec.dims.vocabSize}`,
        'tokenizer.json belongs to another model');
    }
    const runtime = await backend.loadModel(spec, store);
    // The runtime keeps what it uses; what it does not (a table the onnx backend moved to a file)
    // goes with the store, and with the checkpoint's read buffers (docs/performance.md, "Gemma-2-2B scale").
    store = undefined;
    collectGarbage();
    return new Model(spec, backend, runtime, tokenizer, dir);
  }

  submodule(name: string): Submodule {
    const found = resolveSubmoduleAlias(name, this.submodules);
    if (found) return found;
    if (this.spec.embedSubmodule === false && resolveSubmoduleAlias(name, listSubmodules(0, this.spec.architecture, { embed: true }))) {
      throw new NotFoundError(`'${name}' names embed, which this ${this.spec.architecture} model has only when asked for (feature-circuits' include_embed)`,
        'name embed in --submodules (config dictionaries.only), or load the model with embedSubmodule: true');
    }
    return requireSubmodule(name, this.submodules);
  }

  /** Token ids of every text; all must have the same length (pad-free batches). */
  encodeBatch(texts: readonly string[]): { ids: Int32Array; batch: number; seq: number } {
    const rows = texts.map((t) => this.encode(t));
    const seq = rows[0]?.length ?? 0;
    if (rows.some((r) => r.length !== seq)) {
      throw new InputError(`texts of different token lengths in one batch (${rows.map((r) => r.length).join(', ')})`, 'group texts by token length');
    }
    const ids = new Int32Array(rows.length * seq);
    rows.forEach((r, i) => ids.set(r, i * seq));
    return { ids, batch: rows.length, seq };
  }

  /** Token ids of a prompt with the tokenizer's special tokens (Gemma's and Llama 3's BOS), as transformers encodes it. */
  encode(text: string): number[] {
    const ids = this.tokenizer.encodeWithSpecialTokens(text);
    if (ids.length === 0) throw new InputError(`the text ${JSON.stringify(text)} has no tokens`, 'give a non-empty prompt');
    if (ids.length > this.spec.dims.maxPositions) {
      throw new InputError(`the text has ${ids.length} tokens, more than the model's ${this.spec.dims.maxPositions} positions`, 'shorten the prompt');
    }
    return ids;
  }

  tokens(ids: Int32Array, batch: number, seq: number): Tensor {
    return this.ops.intTensor(ids, [batch, seq]);
  }

  /** Whether the backend keeps KV caches (else generation re-runs the prefix every step). */
  get supportsKvCache(): boolean {
    return this.backend.capabilities.kvCache === true && this.runtime.createKvCache !== undefined;
  }

  /** Whether KV caches take per-row left padding (prompts of different lengths in one batch). */
  get supportsPaddedKvCache(): boolean {
    return this.supportsKvCache && this.backend.capabilities.paddedKvCache === true;
  }

  /** An empty KV cache for `batch` rows and up to `maxLength` positions; dispose it when done. */
  async createKvCache(options: KvCacheOptions): Promise<KvCache> {
    if (!this.supportsKvCache) {
      throw new CapabilityError(`backend '${this.backend.name}' has no KV cache`,
        're-run the whole prefix each step (exact, slower), or use --backend tfjs or onnx');
    }
    checkKvCacheOptions(this.spec, options);
    if (options.padding?.some((p) => p > 0) && !this.supportsPaddedKvCache) {
      throw new CapabilityError(`backend '${this.backend.name}' has no padded KV caches`, 'batch prompts of one length together (no padding)');
    }
    return this.runtime.createKvCache!(options);
  }

  /** Full forward from token ids [batch, seq] (with a cache: the new tokens only). */
  async forward(tokens: Tensor, options: ForwardOptions = {}): Promise<ForwardResult> {
    return this.runSegments(new Map(), undefined, tokens, options);
  }

  /**
   * Forward from a submodule on: `x` replaces `from`'s output; the segments that depend on it are
   * recomputed, every other value comes from `cached` (a full forward's values). If `x` has k times
   * the cached batch, cached values are tiled k times along the batch axis (block-major).
   */
  async forwardFrom(from: string, x: Tensor, cached: ReadonlyMap<string, Tensor>, options: ForwardOptions = {}): Promise<ForwardResult> {
    if (options.cache) throw new InputError('forwardFrom does not take a KV cache', 'recompute from a submodule with full sequences, without a cache');
    const fromSub = this.submodule(from).name;
    return this.runSegments(cached, { name: fromSub, value: x }, undefined, options);
  }

  private async runSegments(cached: ReadonlyMap<string, Tensor>, start: { name: string; value: Tensor } | undefined,
    tokens: Tensor | undefined, options: ForwardOptions): Promise<ForwardResult> {
    const ops = this.ops;
    const call = this.callOptions(tokens, options);
    const padding = call.cache?.padding;
    const editCall: EditCall = padding ? { positionOffset: call.positionOffset ?? 0, padding } : { positionOffset: call.positionOffset ?? 0 };
    const values = new Map<string, Tensor>();
    const kept = options.keepForBackward && this.runtime.forwardKeeping && !options.cache ? new Map<string, Tensor[]>() : undefined;
    const dirty = new Set<string>();
    let reps = 1;
    if (start) {
      const ref = cached.get(start.name);
      if (ref) {
        if (start.value.shape[0]! % ref.shape[0]! !== 0) {
          throw new ShapeError(`forwardFrom: batch ${start.value.shape[0]} is not a multiple of the cached batch ${ref.shape[0]}`);
        }
        reps = start.value.shape[0]! / ref.shape[0]!;
      }
    }
    const startOrder = start ? this.order.get(start.name)! : -1;
    const tiled = new Map<string, Tensor>();
    const get = (name: string): Tensor => {
      const v = values.get(name);
      if (v) return v;
      const c = cached.get(name);
      if (!c) throw new Error(`internal: no value for ${name}`);
      if (reps === 1) return c;
      let t = tiled.get(name);
      if (!t) { t = ops.tile(c, [reps, ...c.shape.slice(1).map(() => 1)]); tiled.set(name, t); }
      return t;
    };
    for (const seg of this.spec.segments) {
      if (seg.kind === 'unembed') break;
      const ord = this.order.get(seg.name)!;
      if (start && ord < startOrder) continue;
      let out: Tensor;
      if (start && seg.name === start.name) {
        out = start.value;
      } else if (start && !seg.inputs.some((i) => dirty.has(i))) {
        if (reps === 1) { values.set(seg.name, get(seg.name)); }
        continue; // unaffected: read from cache (tiled lazily when consumed)
      } else {
        const inputs = seg.kind === 'embed' ? [tokens!] : seg.inputs.map(get);
        if (kept && seg.kind !== 'embed' && seg.kind !== 'sum') {
          const r = await this.runtime.forwardKeeping!(seg.name, inputs, { positionOffset: call.positionOffset });
          out = r.output;
          if (r.kept.length) kept.set(seg.name, r.kept);
        } else {
          out = await this.runSegment(seg, inputs, call);
        }
      }
      const edit = options.edits?.get(seg.name);
      if (edit) out = edit(out, editCall);
      values.set(seg.name, out);
      dirty.add(seg.name);
    }
    // Callers see every value (submodules and intermediates): fill untouched ones from the cache.
    for (const s of this.spec.segments) if (!values.has(s.name) && cached.has(s.name)) values.set(s.name, get(s.name));
    let logits: Tensor | undefined;
    if (options.logits !== false) {
      const un = this.spec.segments[this.spec.segments.length - 1]!;
      const { x, selection } = this.unembedInput(values.get(un.inputs[0]!)!, options.logits || undefined);
      logits = await this.runtime.forward('unembed', [x], { logits: selection });
    }
    return kept ? { values, logits, kept } : { values, logits };
  }

  /**
   * The unembed segment's input and selection: with `lastPositions`, row b's position p_b is
   * gathered to [batch, 1, d] and the backend reads the last (only) position of that.
   */
  private unembedInput(x: Tensor, selection: LogitSelection | undefined): { x: Tensor; selection: LogitSelection | undefined } {
    const at = selection?.lastPositions;
    if (!at) return { x, selection };
    const [B, S, d] = x.shape as [number, number, number];
    if (!selection.lastOnly || at.length !== B || at.some((p) => p < 0 || p >= S)) {
      throw new ShapeError(`logit positions: expected ${B} positions in 0..${S - 1} with lastOnly, got [${[...at].join(', ')}]`);
    }
    const ops = this.ops;
    const rows = ops.intTensor(Int32Array.from(at, (p, b) => b * S + p), [B]);
    const { lastPositions: _, ...rest } = selection;
    return { x: ops.reshape(ops.gather(ops.reshape(x, [B * S, d]), rows, 0), [B, 1, d]), selection: rest };
  }

  /**
   * The options every segment of a forward gets. With a cache, everything a cached forward needs
   * is checked here, before any segment runs, so a bad call leaves the cache untouched.
   */
  private callOptions(tokens: Tensor | undefined, options: ForwardOptions): SegmentCallOptions {
    const { cache, positionOffset } = options;
    if (!cache) return { positionOffset };
    if (!tokens || tokens.shape.length !== 2) throw new ShapeError('a cached forward takes token ids [batch, seq]');
    const offset = positionOffset ?? cache.length;
    if (offset !== cache.length) {
      throw new InputError(`positionOffset ${offset} does not continue the KV cache, which holds ${cache.length} positions`,
        'leave positionOffset out with a cache (it defaults to cache.length)');
    }
    checkKvCacheCall(cache, tokens.shape[0]!, offset, tokens.shape[1]!);
    return { positionOffset: offset, cache };
  }

  private async runSegment(seg: SegmentSpec, inputs: Tensor[], call: SegmentCallOptions): Promise<Tensor> {
    if (seg.kind === 'sum') {
      let acc = this.ops.add(inputs[0]!, inputs[1]!);
      for (let i = 2; i < inputs.length; i++) acc = this.ops.add(acc, inputs[i]!);
      return acc;
    }
    // Only attention holds state across positions; every other segment is position-wise (the
    // embed segment reads a padded cache's per-row positions from it).
    const needsCache = seg.kind === 'attention' || (seg.kind === 'embed' && call.cache?.padding !== undefined);
    return this.runtime.forward(seg.name, inputs, needsCache ? call : { positionOffset: call.positionOffset });
  }

  /**
   * Reverse pass from a cotangent on the logits (shape of the forward's logits) or on a
   * submodule's output, through the recorded `values`. Returns the total gradient at each target.
   */
  async backward(values: ReadonlyMap<string, Tensor>, seed: { logits: Tensor } | { submodule: string; cotangent: Tensor },
    options: BackwardOptions): Promise<Map<string, Tensor>> {
    const ops = this.ops;
    const targets = options.targets.map((t) => this.submodule(t).name);
    const earliest = Math.min(...targets.map((t) => this.order.get(t)!));
    const cot = new Map<string, Tensor>();
    // Cotangents this pass made (not the caller's seed): each is disposed once its segment has
    // passed it on, so a long chain holds a few of them, not one per segment (at Gemma-2-2B size
    // and IG's 36 rows, 0.35 GiB).
    const made = new Set<Tensor>();
    const accumulate = (name: string, g: Tensor) => {
      const prev = cot.get(name);
      const sum = prev ? ops.add(prev, g) : g;
      cot.set(name, sum);
      if (!prev) return;
      made.add(sum);
      release(prev);
      release(g);
    };
    /** Disposes a cotangent this pass made once no entry holds it (a pending sum keeps its value). */
    const release = (t: Tensor) => {
      if (made.has(t) && ![...cot.values()].includes(t)) { made.delete(t); t.dispose(); }
    };
    const spend = (name: string, g: Tensor) => {
      if (targets.includes(name)) return;
      cot.delete(name);
      release(g);
    };
    const segs = this.spec.segments;
    let i = segs.length - 1;
    if ('logits' in seed) {
      const un = segs[i]!;
      const full = values.get(un.inputs[0]!)!;
      const { x, selection } = this.unembedInput(full, options.logits);
      let [g] = await this.runtime.vjp('unembed', [x], seed.logits, { logits: selection, positionOffset: options.positionOffset });
      const at = options.logits?.lastPositions;
      if (at) {
        // Scatter row b's gradient [B, 1, d] back to its position p_b of [B, S, d] (zeros elsewhere).
        const S = full.shape[1]!;
        g = ops.mul(ops.reshape(ops.oneHot(ops.intTensor(at, [at.length]), S), [at.length, S, 1]), g!);
      }
      made.add(g!);
      accumulate(un.inputs[0]!, g!);
    } else {
      accumulate(this.submodule(seed.submodule).name, seed.cotangent);
    }
    for (i = segs.length - 2; i >= 0; i--) {
      const seg = segs[i]!;
      if (this.order.get(seg.name)! <= earliest) break;
      const g = cot.get(seg.name);
      if (!g || options.stopAt?.has(seg.name)) continue;
      const inputs = seg.inputs.map((n) => values.get(n)!);
      const gin = seg.kind === 'sum' ? inputs.map(() => g)
        : await this.runtime.vjp(seg.name, inputs, g, { positionOffset: options.positionOffset }, options.kept?.get(seg.name));
      if (seg.kind !== 'sum') for (const t of gin) if (t) made.add(t);
      seg.inputs.forEach((n, k) => accumulate(n, gin[k]!));
      spend(seg.name, g);
    }
    const out = new Map<string, Tensor>();
    for (const t of targets) out.set(t, cot.get(t) ?? ops.zeros(values.get(t)!.shape));
    return out;
  }

  /**
   * Cotangent on x_U from a cotangent on x_D through the one segment that connects them (edges),
   * composed with the VJPs of the intermediate values between them (Gemma's `attn_l.out`, `embed.out`).
   * Row n of `cotangent` belongs to example `rows[n]` of `values` (default: row n), so many
   * downstream nodes of the same example go through one batched VJP. `positionOffset` is the
   * forward's (default 0).
   */
  async segmentVjp(down: string, up: string, values: ReadonlyMap<string, Tensor>, cotangent: Tensor, rows?: Int32Array,
    options: { readonly positionOffset?: number } = {}): Promise<Tensor> {
    const seg = this.spec.segments.find((s) => s.name === down);
    if (!seg) throw new Error(`internal: no segment ${down}`);
    if (!this.inputsOf(down).includes(up)) throw new InputError(`${up} is not a direct input of ${down}`, `inputs of ${down}: ${this.inputsOf(down).join(', ')}`);
    const idx = rows ? this.ops.intTensor(rows, [rows.length]) : undefined;
    const g = await this.vjpTowards(seg, up, values, cotangent, idx, options.positionOffset);
    if (!g) throw new Error(`internal: no path from ${up} to ${down}`);
    return g;
  }

  /** Sum over the paths from `up` into `seg` (directly, or through intermediates) of the cotangent reaching `up`. */
  private async vjpTowards(seg: SegmentSpec, up: string, values: ReadonlyMap<string, Tensor>, cot: Tensor,
    idx: Tensor | undefined, positionOffset: number | undefined): Promise<Tensor | undefined> {
    const via = seg.inputs.map((n) => n === up || this.reaches(n, up));
    if (!via.some(Boolean)) return undefined;
    let gin: readonly Tensor[];
    if (seg.kind === 'sum') {
      gin = seg.inputs.map(() => cot);
    } else {
      const inputs = seg.inputs.map((n) => (idx ? this.ops.gather(values.get(n)!, idx, 0) : values.get(n)!));
      gin = await this.runtime.vjp(seg.name, inputs, cot, { positionOffset });
    }
    let total: Tensor | undefined;
    for (let k = 0; k < seg.inputs.length; k++) {
      if (!via[k]) continue;
      const name = seg.inputs[k]!;
      const g = name === up ? gin[k]! : await this.vjpTowards(this.segmentOf(name), up, values, gin[k]!, idx, positionOffset);
      if (g) total = total ? this.ops.add(total, g) : g;
    }
    return total;
  }

  /** Whether the value `name` is an intermediate (not a submodule) computed from `up`. */
  private reaches(name: string, up: string): boolean {
    if (this.isSubmodule.has(name)) return false;
    return this.segmentOf(name).inputs.some((n) => n === up || this.reaches(n, up));
  }

  private segmentOf(name: string): SegmentSpec {
    const s = this.spec.segments.find((x) => x.name === name);
    if (!s) throw new Error(`internal: no segment ${name}`);
    return s;
  }

  /**
   * The submodules that feed the segment producing `name` directly, or through intermediates
   * (Gemma: resid_l reads attn_l through `attn_l.out`, and layer 0 reads Gemma 2's embed through
   * `embed.out`; a non-submodule embed feeds nothing).
   */
  inputsOf(name: string): readonly string[] {
    const seg = this.spec.segments.find((s) => s.name === name);
    if (!seg) return [];
    const out: string[] = [];
    const visit = (n: string) => {
      if (this.isSubmodule.has(n)) { if (!out.includes(n)) out.push(n); return; }
      for (const i of this.segmentOf(n).inputs) visit(i);
    };
    for (const i of seg.inputs) visit(i);
    return out;
  }

  dispose(): void {
    this.runtime.dispose();
  }
}
