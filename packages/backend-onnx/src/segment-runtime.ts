// Core's SegmentRuntime on onnxruntime: forward and VJP of every segment of a ModelSpec, each a
// compiled graph (segment-program.ts) with dynamic batch and sequence axes. A session per
// (segment, forward|vjp, logit selection) is created on first use and kept for the model's life.
// Weights are ORT tensors over the WeightStore's own arrays (Float32Array, or the fp16 words of a
// 16-bit weight, widened in the graph), created once and fed to every session: forward and VJP
// graphs share them and no weight is copied.
// KV caches are host buffers per attention segment, sequence-major [maxLength, b, kvh, hd]: the
// positions held so far are a prefix, fed to the cached graph as `past_k`/`past_v` without a
// copy, and the graph's `k_new`/`v_new` are written after them.

import {
  BackendError, InputError, LayerKvCache, NotFoundError, ShapeError, paddedKeyMask, paddedPositions, paddedRotaryTables, rotaryTables, segmentWidth, shapeToString,
  type AttentionSegment, type KvCache, type KvCacheOptions, type ModelSpec, type SegmentCallOptions, type SegmentRuntime,
  type SegmentSpec, type Tensor, type WeightStore, isHalfWeight,
} from '@sfc/core';
import type * as ort from 'onnxruntime-node';
import type { DiskTable } from './disk-table.js';
import type { GraphCache } from './graph-cache.js';
import type { OnnxTensorOps } from './lazy/tensor-ops.js';
import { ortTensor, runSession } from './ort-session.js';
import {
  FULL_VARIANT, halfFeed, inputWidth, LINEAR_CHUNK_BYTES, ROPE_COS, ROPE_SIN, rowChunks, segmentProgram, TABLE_CHUNK_BYTES, variantKey,
  type HalfInfo, type HalfWeights, type SegmentVariant,
} from './segment-program.js';
import { headWindows, placeColumns, takeColumns, windowFeeds, type TableOnDisk } from './windowed-head.js';

interface CompiledSegment {
  readonly session: ort.InferenceSession;
  /** Graph input names (feed keys). */
  readonly inputs: readonly string[];
  /** Graph outputs in order (`y` and any extra forward outputs, or `dx0…`). */
  readonly outputs: readonly string[];
}

/** One attention segment's cached keys and values: [maxLength, b, nKvHeads, hd] each, positions first. */
interface HostKeyValues { readonly k: Float32Array; readonly v: Float32Array }

/**
 * Checks every canonical weight against the spec and wraps it for ORT (no copy). A 2-D 16-bit
 * weight is also fed in row chunks with their per-row factors (segment-program.ts `halfFeed`),
 * each a view of the store's arrays; the whole is fed as held ([out, in] when transposed).
 */
export function weightTensors(spec: ModelSpec, weights: WeightStore, half: HalfWeights = halfWeights(weights, spec)): Map<string, ort.Tensor> {
  const out = new Map<string, ort.Tensor>();
  for (const [name, shape] of spec.weightShapes) {
    const w = weights.get(name);
    if (!w) throw new NotFoundError(`weight '${name}' is missing`, 'load the weights with canonicalWeights() for this spec');
    const n = shape.reduce((a, b) => a * b, 1);
    if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i]) || w.data.length !== n) {
      throw new ShapeError(`weight '${name}' has shape ${shapeToString(w.shape)} (${w.data.length} values), the spec needs ${shapeToString(shape)}`);
    }
    if (!isHalfWeight(w)) { out.set(name, ortTensor('float32', w.data, shape)); continue; }
    const info = half.get(name)!;
    const [rows, cols] = w.transposed ? [shape[1]!, shape[0]!] : [shape[0] ?? 1, shape[1] ?? 1];
    out.set(name, ortTensor('float16', w.data, [rows, cols].slice(0, shape.length)));
    if (typeof w.scale !== 'number') {
      if (w.scale.length !== rows) throw new ShapeError(`weight '${name}' has ${w.scale.length} row factors for ${rows} rows`);
      out.set(halfFeed.scale(name), ortTensor('float32', w.scale, [rows]));
    }
    let at = 0;
    info.rowChunks?.forEach((r, i) => {
      out.set(halfFeed.rows(name, i), ortTensor('float16', w.data.subarray(at * cols, (at + r) * cols), [r, cols]));
      if (typeof w.scale !== 'number') out.set(halfFeed.scaleRows(name, i), ortTensor('float32', w.scale.subarray(at, at + r), [r]));
      at += r;
    });
  }
  return out;
}

/**
 * How the store's 16-bit weights are fed and widened, by name (segmentProgram widens them): the
 * unembedding's table (tied or not) in TABLE_CHUNK_BYTES chunks, other linears in LINEAR_CHUNK_BYTES.
 * `rowChunkBytes` overrides both (tests).
 */
export function halfWeights(weights: WeightStore, spec?: ModelSpec, rowChunkBytes?: number): HalfWeights {
  const out = new Map<string, HalfInfo>();
  const un = spec?.segments.find((s) => s.kind === 'unembed');
  const head = un?.kind === 'unembed' ? un.weight.weight : undefined;
  for (const [name, w] of weights) {
    if (!isHalfWeight(w)) continue;
    const scale = typeof w.scale === 'number' ? w.scale : 'rows';
    if (w.shape.length !== 2) { out.set(name, { scale }); continue; }
    const [rows, cols] = w.transposed ? [w.shape[1]!, w.shape[0]!] : [w.shape[0]!, w.shape[1]!];
    const bytes = rowChunkBytes ?? (w.transposed && name !== head ? LINEAR_CHUNK_BYTES : TABLE_CHUNK_BYTES);
    out.set(name, { scale, rowChunks: rowChunks(rows, cols, bytes), ...(w.transposed ? { transposed: true } : {}) });
  }
  return out;
}

/** The segment kinds whose linears' results forwardKeeping keeps for the VJP (segment-program's keptLin). */
const KEEPS = new Set<SegmentSpec['kind']>(['attention', 'mlp', 'project']);

export class OnnxSegmentRuntime implements SegmentRuntime {
  private readonly sessions = new Map<string, Promise<CompiledSegment>>();
  /** Live KV caches, marked disposed with the model. */
  private readonly caches = new Set<LayerKvCache<HostKeyValues>>();
  /** The whole-vocabulary head calls over a table on disk, run one after another (windowedHead). */
  private headQueue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(
    private readonly spec: ModelSpec,
    private readonly weights: Map<string, ort.Tensor>,
    private readonly ops: OnnxTensorOps,
    private readonly cache: GraphCache,
    /** Called once by dispose() (the backend stops tracking the runtime, so its weights can be freed). */
    private readonly onDispose: (rt: OnnxSegmentRuntime) => void = () => {},
    /** The weights held in 16 bits (halfWeights). */
    private readonly half: HalfWeights = new Map(),
    /** The token embedding kept in a file (OnnxBackendOptions.embeddingOnDisk), by weight name. */
    private readonly onDisk?: TableOnDisk,
  ) {}

  /** Whether this unembedding reads the table kept on disk. */
  private readsDiskTable(seg: SegmentSpec): boolean {
    return seg.kind === 'unembed' && !!seg.transposed && seg.weight.weight === this.onDisk?.name;
  }

  private segment(name: string): SegmentSpec {
    if (this.disposed) throw new InputError('the model was disposed', 'load it again');
    const seg = this.spec.segments.find((s) => s.name === name);
    if (!seg) throw new NotFoundError(`no segment '${name}'`, `segments: ${this.spec.segments.map((s) => s.name).join(', ')}`);
    return seg;
  }

  private variant(seg: SegmentSpec, options: SegmentCallOptions | undefined): SegmentVariant {
    const sel = options?.logits;
    if (seg.kind !== 'unembed' || !sel) return { lastOnly: false, columns: false };
    return { lastOnly: !!sel.lastOnly, columns: !!sel.columns };
  }

  private compiled(seg: SegmentSpec, mode: 'forward' | 'vjp', v: SegmentVariant): Promise<CompiledSegment> {
    const key = `${seg.name}/${mode}/${variantKey(v)}`;
    let c = this.sessions.get(key);
    if (!c) {
      const program = segmentProgram(this.spec, seg, v, this.half);
      const kept = !!v.kept;
      const { graph, outputs } = mode === 'forward' ? { graph: program.compileForward(kept), outputs: program.forwardOutputs(kept) } : program.compileVjp(kept);
      c = this.cache.session(graph.encode(), `segment '${seg.name}' ${mode}`).then((session) => ({
        session, inputs: session.inputNames, outputs,
      }));
      this.sessions.set(key, c);
      c.catch(() => this.sessions.delete(key));
    }
    return c;
  }

  /** Shapes and dtypes of the inputs, checked before anything runs; returns [batch, seq]. */
  private checkInputs(seg: SegmentSpec, inputs: readonly Tensor[], what: string): [number, number] {
    const expected = seg.kind === 'embed' ? 1 : seg.inputs.length;
    if (inputs.length !== expected) throw new ShapeError(`${what}: ${inputs.length} inputs, segment '${seg.name}' takes ${expected}`);
    if (seg.kind === 'embed') {
      const t = inputs[0]!;
      if (t.dtype !== 'int32' || t.shape.length !== 2) throw new ShapeError(`${what}: token ids must be int32 [batch, seq], got ${t.dtype} ${shapeToString(t.shape)}`);
      return [t.shape[0]!, t.shape[1]!];
    }
    const first = inputs[0]!.shape;
    const widths = inputs.map((_, i) => inputWidth(this.spec, seg, i));
    inputs.forEach((t, i) => {
      if (t.dtype !== 'float32' || t.shape.length !== 3 || t.shape[2] !== widths[i] || t.shape[0] !== first[0] || t.shape[1] !== first[1]) {
        const want = [...new Set(widths)].join(' or ');
        throw new ShapeError(`${what}: inputs must be float32 [batch, seq, ${want}] of one batch and length, got ${inputs.map((x) => `${x.dtype} ${shapeToString(x.shape)}`).join(', ')}`);
      }
    });
    return [first[0]!, first[1]!];
  }

  private checkOptions(seg: SegmentSpec, seq: number, batch: number, options: SegmentCallOptions | undefined, what: string): number {
    const offset = options?.positionOffset ?? 0;
    if (!Number.isInteger(offset) || offset < 0) throw new InputError(`${what}: positionOffset must be a non-negative integer, got ${offset}`);
    if (offset + seq > this.spec.dims.maxPositions && (seg.kind === 'embed' || seg.kind === 'attention')) {
      throw new InputError(`${what}: positions up to ${offset + seq} exceed the model's ${this.spec.dims.maxPositions}`, 'shorten the prompt');
    }
    const cols = seg.kind === 'unembed' ? options?.logits?.columns : undefined;
    if (cols && (cols.dtype !== 'int32' || cols.shape.length !== 2 || cols.shape[0] !== batch)) {
      throw new ShapeError(`${what}: logits.columns must be int32 [${batch}, k], got ${cols.dtype} ${shapeToString(cols.shape)}`);
    }
    return offset;
  }

  private expectedOutput(seg: SegmentSpec, v: SegmentVariant, batch: number, seq: number, options: SegmentCallOptions | undefined): number[] {
    if (seg.kind !== 'unembed') return [batch, seq, segmentWidth(this.spec, seg)];
    const last = v.columns ? options!.logits!.columns!.shape[1]! : this.spec.dims.vocabSize;
    return v.lastOnly ? [batch, last] : [batch, seq, last];
  }

  private async run(seg: SegmentSpec, mode: 'forward' | 'vjp', v: SegmentVariant, tensors: Map<string, Tensor>, offset: number,
    host: Readonly<Record<string, ort.Tensor>> = {}): Promise<ort.Tensor[]> {
    const compiled = await this.compiled(seg, mode, v);
    const names = [...tensors.keys()];
    const ortValues = await this.ops.ortInputs([...tensors.values()]);
    const given = new Map(names.map((n, i) => [n, ortValues[i]!]));
    if (seg.kind === 'embed') {
      const ids = given.get('ids')!.data as Int32Array;
      const V = this.spec.dims.vocabSize;
      for (const id of ids) if (id < 0 || id >= V) throw new InputError(`token id ${id} is outside the vocabulary [0, ${V})`, 'use the tokenizer that belongs to the model');
      this.onDisk?.table.fill(ids, 'token ids');
    }
    if (v.columns && this.readsDiskTable(seg)) this.onDisk!.table.fill(given.get('columns')!.data as Int32Array, 'logits.columns');
    const feeds: Record<string, ort.Tensor> = {};
    const rope = seg.kind === 'attention' && !host[ROPE_COS] ? this.rotaryFeeds(seg, offset, tensors.get('x0')!.shape[1]!) : {};
    for (const name of compiled.inputs) {
      const t = given.get(name) ?? host[name] ?? rope[name] ?? this.weights.get(name)
        ?? (name === 'offset' ? ortTensor('int64', BigInt64Array.of(BigInt(offset)), []) : undefined);
      if (!t) throw new BackendError(`internal: no feed for graph input '${name}' of segment '${seg.name}'`);
      feeds[name] = t;
    }
    const out = await runSession(compiled.session, feeds, `segment '${seg.name}' ${mode}`,
      (node) => { const [scope, label, onnxOp] = node.split(':'); return scope === seg.name ? `'${label}' (ONNX ${onnxOp})` : undefined; });
    return compiled.outputs.map((n) => out[n]!);
  }

  /** Core's cos/sin tables for an attention call at positions offset … offset + seq − 1 (none without rotary). */
  private rotaryFeeds(seg: AttentionSegment, offset: number, seq: number): Record<string, ort.Tensor> {
    if (!seg.rotary) return {};
    const { cos, sin } = rotaryTables(seg.rotary, offset, seq);
    return { [ROPE_COS]: ortTensor('float32', cos, [seq, seg.rotaryDims]), [ROPE_SIN]: ortTensor('float32', sin, [seq, seg.rotaryDims]) };
  }

  /** A left-padded cached attention's key mask [b, offset + seq] and per-row rotary tables [b, 1, seq, r]. */
  private paddedFeeds(seg: AttentionSegment, padding: readonly number[], offset: number, seq: number): Record<string, ort.Tensor> {
    const b = padding.length;
    const feeds: Record<string, ort.Tensor> = { key_mask: ortTensor('bool', paddedKeyMask(padding, offset + seq), [b, offset + seq]) };
    if (!seg.rotary) return feeds;
    const { cos, sin } = paddedRotaryTables(seg.rotary, padding, offset, seq);
    return { ...feeds, [ROPE_COS]: ortTensor('float32', cos, [b, 1, seq, seg.rotaryDims]), [ROPE_SIN]: ortTensor('float32', sin, [b, 1, seq, seg.rotaryDims]) };
  }

  async forward(segment: string, inputs: readonly Tensor[], options?: SegmentCallOptions): Promise<Tensor> {
    return (await this.runForward(segment, inputs, options, false)).output;
  }

  forwardKeeping(segment: string, inputs: readonly Tensor[], options?: SegmentCallOptions): Promise<{ output: Tensor; kept: Tensor[] }> {
    return this.runForward(segment, inputs, options, true);
  }

  /** A forward; with `keep`, attention, MLP and projection segments also return their linears' results (none with a KV cache). */
  private async runForward(segment: string, inputs: readonly Tensor[], options: SegmentCallOptions | undefined, keep: boolean):
    Promise<{ output: Tensor; kept: Tensor[] }> {
    const seg = this.segment(segment);
    const what = `forward of '${seg.name}'`;
    const [batch, seq] = this.checkInputs(seg, inputs, what);
    const offset = this.checkOptions(seg, seq, batch, options, what);
    if (seg.kind === 'sum') {
      let acc = this.ops.add(inputs[0]!, inputs[1]!);
      for (let i = 2; i < inputs.length; i++) acc = this.ops.add(acc, inputs[i]!);
      return { output: acc, kept: [] };
    }
    if (seg.kind === 'attention' && options?.cache) return { output: await this.cachedAttention(seg, inputs, options.cache, batch, seq, offset), kept: [] };
    const padding = seg.kind === 'embed' && seg.positionEmbedding ? options?.cache?.padding : undefined;
    const v = padding ? { ...FULL_VARIANT, padded: true } : { ...this.variant(seg, options), ...(keep && KEEPS.has(seg.kind) ? { kept: true } : {}) };
    const tensors = new Map<string, Tensor>(seg.kind === 'embed' ? [['ids', inputs[0]!]] : inputs.map((t, i) => [`x${i}`, t]));
    if (v.columns) tensors.set('columns', options!.logits!.columns!);
    if (!v.columns && this.readsDiskTable(seg)) return { output: await this.windowedHead(seg, v, tensors, offset), kept: [] };
    const host: Record<string, ort.Tensor> = padding ? { positions: ortTensor('int32', paddedPositions(padding, offset, seq), [batch, seq]) } : {};
    const [y, ...kept] = await this.run(seg, 'forward', v, tensors, offset, host);
    const wrap = (t: ort.Tensor) => this.ops.wrap(t.data as Float32Array, t.dims);
    return { output: wrap(y!), kept: kept.map(wrap) };
  }

  /**
   * The head over the whole vocabulary when its table is on disk: window by window (each read into
   * one reused buffer), the logits placed side by side — or, given the logits' cotangent `dy`, the
   * input's cotangent summed over the windows (the head is linear in its table's rows; Gemma's
   * final soft-cap is element-wise).
   */
  private windowedHead(seg: SegmentSpec, v: SegmentVariant, tensors: Map<string, Tensor>, offset: number, dy?: Tensor): Promise<Tensor> {
    // One call at a time: every call reads its windows into the table's one window buffer.
    const run = this.headQueue.then(() => this.windowedHeadNow(seg, v, tensors, offset, dy));
    this.headQueue = run.catch(() => undefined);
    return run;
  }

  private async windowedHeadNow(seg: SegmentSpec, v: SegmentVariant, tensors: Map<string, Tensor>, offset: number, dy?: Tensor): Promise<Tensor> {
    const { name, table } = this.onDisk!;
    const info = this.half.get(name)!;
    const V = this.spec.dims.vocabSize;
    const dyData = dy ? (await this.ops.ortInputs([dy]))[0]!.data as Float32Array : undefined;
    let out: Float32Array | undefined;
    let dims: readonly number[] = [];
    for (const w of headWindows(info.rowChunks!)) {
      const host = windowFeeds(name, w, table, (i) => this.weights.get(halfFeed.scaleRows(name, i)));
      const wv = { ...v, window: w.widths };
      if (dyData) {
        const lead = dy!.shape.slice(0, -1);
        host.dy = ortTensor('float32', takeColumns(dyData, V, w.first, w.rows), [...lead, w.rows]);
        const [dx] = await this.run(seg, 'vjp', wv, tensors, offset, host);
        const part = dx!.data as Float32Array;
        // The first window's output is this call's own array: the sum goes into it.
        if (!out) { out = part; dims = dx!.dims; } else for (let i = 0; i < part.length; i++) out[i] = out[i]! + part[i]!;
      } else {
        const [y] = await this.run(seg, 'forward', wv, tensors, offset, host);
        const lead = y!.dims.slice(0, -1);
        out ??= new Float32Array(lead.reduce((a, b) => a * b, 1) * V);
        dims = [...lead, V];
        placeColumns(out, V, y!.data as Float32Array, w.first, w.rows);
      }
    }
    return this.ops.wrap(out!, dims);
  }

  async createKvCache(options: KvCacheOptions): Promise<KvCache> {
    if (this.disposed) throw new InputError('the model was disposed', 'load it again');
    // Buffers are plain memory: dropping the references frees them.
    const cache = LayerKvCache.create<HostKeyValues>(this, this.spec, options, () => undefined, (c) => this.caches.delete(c));
    this.caches.add(cache);
    return cache;
  }

  /** Attention over the cached past plus the new positions; the new keys/values are appended in place. */
  private async cachedAttention(seg: AttentionSegment, inputs: readonly Tensor[], kv: KvCache, batch: number, seq: number, offset: number): Promise<Tensor> {
    const cache = LayerKvCache.of<HostKeyValues>(kv, this);
    const { entry } = cache.begin(seg.name, batch, offset, seq);
    const dims = [batch, seg.nKvHeads, seg.headDim];
    const row = batch * seg.nKvHeads * seg.headDim; // one position, every row and key/value head
    const past = (b: Float32Array | undefined) => ortTensor('float32', b ? b.subarray(0, offset * row) : new Float32Array(0), [offset, ...dims]);
    const tensors = new Map<string, Tensor>(inputs.map((t, i) => [`x${i}`, t]));
    const padding = cache.padding;
    const [y, kNew, vNew] = await this.run(seg, 'forward', { ...FULL_VARIANT, kvCache: true, ...(padding ? { padded: true } : {}) }, tensors, offset,
      { past_k: past(entry?.k), past_v: past(entry?.v), ...(padding ? this.paddedFeeds(seg, padding, offset, seq) : {}) });
    cache.commit(seg.name, offset, offset + seq, (prev) => {
      const buf = prev ?? { k: new Float32Array(cache.maxLength * row), v: new Float32Array(cache.maxLength * row) };
      buf.k.set(kNew!.data as Float32Array, offset * row);
      buf.v.set(vNew!.data as Float32Array, offset * row);
      return buf;
    });
    return this.ops.wrap(y!.data as Float32Array, y!.dims);
  }

  async vjp(segment: string, inputs: readonly Tensor[], cotangent: Tensor, options?: SegmentCallOptions, kept?: readonly Tensor[]): Promise<Tensor[]> {
    const seg = this.segment(segment);
    const what = `VJP of '${seg.name}'`;
    if (options?.cache) throw new InputError(`${what} with a KV cache`, 'VJPs run on full sequences: call vjp without a cache');
    const [batch, seq] = this.checkInputs(seg, inputs, what);
    const offset = this.checkOptions(seg, seq, batch, options, what);
    const v = kept?.length ? { ...this.variant(seg, options), kept: true } : this.variant(seg, options);
    const want = this.expectedOutput(seg, v, batch, seq, options);
    if (cotangent.dtype !== 'float32' || cotangent.shape.length !== want.length || cotangent.shape.some((d, i) => d !== want[i])) {
      throw new ShapeError(`${what}: cotangent has shape ${shapeToString(cotangent.shape)}, the output is ${shapeToString(want)}`,
        'a cotangent has the shape of the forward output (tile the inputs first for stacked cotangents)');
    }
    if (seg.kind === 'embed') return [];
    if (seg.kind === 'sum') {
      const node = this.ops.nodeOf(cotangent);
      return inputs.map(() => this.ops.handle(node));
    }
    const tensors = new Map<string, Tensor>(inputs.map((t, i) => [`x${i}`, t]));
    if (v.columns) tensors.set('columns', options!.logits!.columns!);
    if (!v.columns && this.readsDiskTable(seg)) return [await this.windowedHead(seg, v, tensors, offset, cotangent)];
    tensors.set('dy', cotangent);
    kept?.forEach((t, i) => {
      if (t.shape.length !== 3 || t.shape[0] !== batch || t.shape[1] !== seq) {
        throw new ShapeError(`${what}: kept value ${i} has shape ${shapeToString(t.shape)}, not [${batch}, ${seq}, …] of the inputs`, 'pass what forwardKeeping gave for these inputs');
      }
      tensors.set(`kept${i}`, t);
    });
    const grads = await this.run(seg, 'vjp', v, tensors, offset);
    // Summed inputs share one cotangent (one graph output): one buffer, a handle per input.
    const wrapped = new Map<ort.Tensor, Tensor>();
    return grads.map((g) => {
      const prev = wrapped.get(g);
      if (prev) return this.ops.handle(this.ops.nodeOf(prev));
      const t = this.ops.wrap(g.data as Float32Array, g.dims);
      wrapped.set(g, t);
      return t;
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const c of [...this.caches]) c.dispose();
    for (const c of this.sessions.values()) void c.then((x) => x.session.release()).catch(() => undefined);
    this.sessions.clear();
    this.weights.clear();
    this.onDisk?.table.close();
    this.onDispose(this);
  }
}
