// Core's segment description (ModelSpec) → a Program of lowered ops, one per segment and
// variant (logit selection; KV cache). Graph inputs: activations `x0…`, token ids `ids`, the first
// position `offset`, per-example vocabulary ids `columns`, cached keys/values `past_k`/`past_v`,
// rotary tables `rope_cos`/`rope_sin` [seq, rotaryDims] (core's rotaryTables for the call's
// positions: every rope type, dynamic NTK included, with no frequency math in the graph), and every
// weight under its canonical name (weights are fed from tensors created once per model and shared
// by all of its graphs). A cached attention graph also outputs `k_new`/`v_new`. The math of every
// segment field is docs/architecture.md's "segment contract". A weight held in 16 bits
// (HalfWeightTensor) is a float16 graph input widened in the graph (lowering/widen.ts); a table
// read by rows (embedding, selected logit rows/columns) is widened after the rows are gathered.
// With every weight float32 the graphs are exactly those without this option.

import {
  segmentWidth, valueWidth,
  type AttentionSegment, type EmbedSegment, type LinearSpec, type MlpSegment, type ModelSpec, type NormSpec, type SegmentSpec, type UnembedSegment,
} from '@sfc/core';
import type { Dim } from './onnx-graph.js';
import { activationOp, gatedActivation, softCap } from './lowering/activation.js';
import { appendPast, causalAttention, mergeHeads, rotary, seqMajor, splitHeads } from './lowering/attention.js';
import { embeddingLookup, positionRows, scaled, sum } from './lowering/embedding.js';
import { layerNorm } from './lowering/layer-norm.js';
import { linear, linearTransposed } from './lowering/linear.js';
import { lastPosition, selectColumns, selectRows } from './lowering/logits.js';
import { Program, type Value } from './lowering/op.js';
import { rmsNorm } from './lowering/rms-norm.js';
import { chunkedLinearT } from './lowering/chunked-linear.js';
import { gatheredRowFactors, widen, type HalfScale } from './lowering/widen.js';

export interface SegmentVariant {
  /** Unembed only: keep the last position. */
  readonly lastOnly: boolean;
  /** Unembed only: per-example vocabulary ids instead of the whole vocabulary. */
  readonly columns: boolean;
  /**
   * Attention only (forward only): past keys/values `past_k`, `past_v` [past, b, kvh, hd] are
   * prepended, and the new ones come out as `k_new`, `v_new` [s, b, kvh, hd] (kvh = nKvHeads).
   */
  readonly kvCache?: boolean;
  /**
   * Left-padded KV cache (forward only). Embed: learned positions come per row from `positions`
   * int32 [b, s]. Attention (with kvCache): `key_mask` bool [b, past + s] (false: a pad key) and
   * rotary tables per row, `rope_cos`/`rope_sin` [b, 1, s, rotaryDims].
   */
  readonly padded?: boolean;
  /**
   * Attention, MLP and projection segments: the forward graph also outputs the results of its
   * linears (`kept0…`, [b, s, width]); the VJP graph takes them back as inputs instead of
   * recomputing those products (Program.keep).
   */
  readonly kept?: boolean;
  /**
   * Unembed only, a head reading the [vocab, d] table in row chunks: the logits of one window of
   * consecutive chunks, with these row counts, fed as `windowFeed` parts (DiskTable: the table is
   * read window by window, so the graph is the same for every window of the same widths).
   */
  readonly window?: readonly number[];
}

export const FULL_VARIANT: SegmentVariant = { lastOnly: false, columns: false };

const B = 'batch';
const S = 'seq';

/** Graph inputs of a rotary attention segment: cos and sin [seq, rotaryDims] of the call's positions. */
export const ROPE_COS = 'rope_cos';
export const ROPE_SIN = 'rope_sin';

export function variantKey(v: SegmentVariant): string {
  return `${v.lastOnly ? 'last' : 'all'}-${v.columns ? 'cols' : 'vocab'}${v.kvCache ? '-kv' : ''}${v.padded ? '-pad' : ''}${v.kept ? '-kept' : ''}${v.window ? `-window${v.window.join('.')}` : ''}`;
}

/** Output dims of a segment for a variant (symbolic batch, seq and k). */
export function outputDims(spec: ModelSpec, seg: SegmentSpec, v: SegmentVariant): Dim[] {
  if (seg.kind !== 'unembed') return [B, S, segmentWidth(spec, seg)];
  const last: Dim = v.columns ? 'k' : v.window ? v.window.reduce((a, b) => a + b, 0) : spec.dims.vocabSize;
  return v.lastOnly ? [B, last] : [B, S, last];
}

/** Width of input `i` of a non-embed segment: a project segment reads the concatenated heads, all others width d. */
export function inputWidth(spec: ModelSpec, seg: SegmentSpec, i: number): number {
  return seg.kind === 'project' ? valueWidth(spec, seg.inputs[i]!) : spec.dims.dModel;
}

/** How a weight held in 16 bits (HalfWeightTensor) is fed and widened. */
export interface HalfInfo {
  readonly scale: HalfScale;
  /** A linear weight held transposed ([out, in]): it is only read through chunkedLinearT. */
  readonly transposed?: boolean;
  /** Row counts of the chunks a 2-D weight is also fed in, as held (`halfFeed.rows`). */
  readonly rowChunks?: readonly number[];
}

/** The weights held in 16 bits, by canonical name; absent: float32. */
export type HalfWeights = ReadonlyMap<string, HalfInfo>;

/**
 * Feed names of a 16-bit weight's parts besides the whole (its canonical name): row chunks,
 * per-row factors [rows] and their chunks. All are views of the store's arrays.
 */
export const halfFeed = {
  rows: (name: string, i: number) => `${name}#r${i}`,
  scale: (name: string) => `${name}#scale`,
  scaleRows: (name: string, i: number) => `${name}#scale#r${i}`,
};

/** Feed names of the parts of one window of a table's row chunks (SegmentVariant.window), numbered within the window. */
export const windowFeed = {
  rows: (name: string, k: number) => `${name}#w${k}`,
  scaleRows: (name: string, k: number) => `${name}#scale#w${k}`,
};

/**
 * Float32 bytes of a row chunk: 4 MiB for a linear weight (its widened chunk stays in cache for
 * the product; 2 and 4 MiB measured alike, 1 MiB slower), 16 MiB for a table read transposed (the
 * tied unembedding: fewer, larger products over its vocabulary rows).
 */
export const LINEAR_CHUNK_BYTES = 2 ** 22;
export const TABLE_CHUNK_BYTES = 2 ** 24;

/** Rows per chunk of a [rows, cols] 16-bit weight: about `bytes` of float32 per chunk. */
export function rowChunks(rows: number, cols: number, bytes: number): number[] {
  const per = Math.max(1, Math.floor(bytes / (4 * cols)));
  const out: number[] = [];
  for (let r = 0; r < rows; r += per) out.push(Math.min(per, rows - r));
  return out;
}

/** What every segment builder uses: the program, weights as graph inputs (one each), and the shared ops. */
class SegmentBuilder {
  readonly p: Program;
  private readonly inputs = new Map<string, Value>();
  private readonly widened = new Map<string, Value>();
  private offsetValue?: Value;

  constructor(readonly spec: ModelSpec, readonly seg: SegmentSpec, readonly v: SegmentVariant, readonly half: HalfWeights) {
    this.p = new Program(seg.name);
  }

  /** A constant graph input (a weight or a part of one), created once. */
  feed(name: string, elem: 'float32' | 'float16', dims: readonly number[]): Value {
    let w = this.inputs.get(name);
    if (!w) {
      w = this.p.input(name, elem, [...dims], false);
      this.inputs.set(name, w);
    }
    return w;
  }

  shape(name: string): readonly number[] {
    const shape = this.spec.weightShapes.get(name);
    if (!shape) throw new Error(`internal: no weight shape for ${name}`);
    return shape;
  }

  /** The graph input of a weight as held: float16 for a 16-bit weight (then `half` says how to widen it; [out, in] when transposed). */
  stored(name: string): { value: Value; half?: HalfInfo } {
    const half = this.half.get(name);
    const shape = this.shape(name);
    const value = this.feed(name, half === undefined ? 'float32' : 'float16', half?.transposed ? [shape[1]!, shape[0]!] : shape);
    return half === undefined ? { value } : { value, half };
  }

  /** The per-row factors [rows] of a 16-bit weight with a `rows` scale (rows as held). */
  rowScale(name: string): Value {
    const shape = this.shape(name);
    return this.feed(halfFeed.scale(name), 'float32', [this.half.get(name)?.transposed ? shape[1]! : shape[0]!]);
  }

  /** A weight as float32 (widened in the graph when held in 16 bits). */
  weight(name: string): Value {
    const { value, half } = this.stored(name);
    if (half === undefined) return value;
    if (half.transposed) throw new Error(`internal: ${name} is held transposed; use lin()`);
    let w = this.widened.get(name);
    if (!w) {
      w = half.scale === 'rows'
        ? this.p.apply1(widen, [value, this.rowScale(name)], { scale: 'rows', rowVector: true }, `widen ${name}`)
        : this.p.apply1(widen, [value], { scale: half.scale }, `widen ${name}`);
      this.widened.set(name, w);
    }
    return w;
  }

  /** x · Wᵀ (+ bias) for a 16-bit W held as [rows, d] (fed in row chunks), widened chunk by chunk. */
  chunkedT(x: Value, name: string, bias: string | undefined, label: string, window?: readonly number[]): Value {
    const half = this.half.get(name);
    if (!half?.rowChunks) throw new Error(`internal: ${name} is not fed in row chunks`);
    const shape = this.shape(name);
    const d = half.transposed ? shape[0]! : shape[1]!;
    const widths = window ?? half.rowChunks;
    const feeds = window ? windowFeed : halfFeed;
    const chunks = widths.map((r, i) => this.feed(feeds.rows(name, i), 'float16', [r, d]));
    const factors = half.scale === 'rows' ? widths.map((r, i) => this.feed(feeds.scaleRows(name, i), 'float32', [r])) : [];
    const ins = [x, ...chunks, ...factors, ...(bias ? [this.weight(bias)] : [])];
    return this.p.apply1(chunkedLinearT, ins, { widths, scale: half.scale, bias: !!bias }, label);
  }

  offset(): Value {
    return (this.offsetValue ??= this.p.input('offset', 'int64', [], false));
  }

  /** The differentiable inputs `x0…`, summed when there are several. */
  activations(): Value {
    const xs = this.seg.inputs.map((_, i) => this.p.input(`x${i}`, 'float32', [B, S, inputWidth(this.spec, this.seg, i)], true));
    return xs.length === 1 ? xs[0]! : this.p.apply1(sum, xs, { ranks: xs.map(() => 3) }, 'inputs');
  }

  lin(x: Value, l: LinearSpec, label: string): Value {
    if (this.half.get(l.weight)?.transposed) return this.chunkedT(x, l.weight, l.bias, label);
    return this.p.apply1(linear, l.bias ? [x, this.weight(l.weight), this.weight(l.bias)] : [x, this.weight(l.weight)], undefined, label);
  }

  /** lin, with its result kept for the VJP (SegmentVariant.kept): the products a VJP would otherwise recompute. */
  keptLin(x: Value, l: LinearSpec, label: string): Value {
    const y = this.lin(x, l, label);
    this.p.keep(y, [B, S, `${label}_width`]);
    return y;
  }

  norm(x: Value, n: NormSpec, label: string): Value {
    return n.kind === 'layernorm'
      ? this.p.apply1(layerNorm, [x, this.weight(n.weight), this.weight(n.bias)], { eps: n.eps }, label)
      : this.p.apply1(rmsNorm, [x, this.weight(n.weight)], { eps: n.eps, unitOffset: n.offset === 1 }, label);
  }

  /** `y`, or postNorm(y) when the segment has one. */
  post(y: Value, n: NormSpec | undefined): Value {
    return n ? this.norm(y, n, 'postNorm') : y;
  }
}

function embed(b: SegmentBuilder, seg: EmbedSegment): Value {
  const { p } = b;
  const ids = p.input('ids', 'int32', [B, S], false);
  const table = b.stored(seg.tokenEmbedding);
  let y = p.apply1(embeddingLookup, [table.value, ids], undefined, 'tokens');
  if (table.half?.scale === 'rows') {
    const factors = p.apply1(gatheredRowFactors, [b.rowScale(seg.tokenEmbedding), ids], undefined, 'token factors');
    y = p.apply1(widen, [y, factors], { scale: 'rows' }, 'widen tokens');
  } else if (table.half) {
    y = p.apply1(widen, [y], { scale: table.half.scale }, 'widen tokens');
  }
  if (seg.scale !== undefined) y = p.apply1(scaled, [y], { factor: seg.scale }, 'scale');
  if (seg.positionEmbedding && b.v.padded) {
    const rows = p.input('positions', 'int32', [B, S], false);
    y = p.apply1(sum, [y, p.apply1(embeddingLookup, [b.weight(seg.positionEmbedding), rows], undefined, 'positions')], { ranks: [3, 3] }, 'add');
  } else if (seg.positionEmbedding) {
    const pos = p.apply1(positionRows, [b.weight(seg.positionEmbedding), b.offset(), ids], { seqAxis: 1 }, 'positions');
    y = p.apply1(sum, [y, pos], { ranks: [3, 2] }, 'add');
  }
  return y;
}

function attention(b: SegmentBuilder, seg: AttentionSegment): Value {
  const { p } = b;
  const h = b.norm(b.activations(), seg.ln, 'ln');
  const qkv = b.keptLin(h, seg.qkv, 'qkv');
  const heads = { nHeads: seg.nHeads, headDim: seg.headDim, nKvHeads: seg.nKvHeads };
  let [q, k, v] = p.apply(splitHeads, [qkv], heads, 3, 'splitHeads') as [Value, Value, Value];
  if (seg.qNorm) q = b.norm(q, seg.qNorm, 'qNorm');
  if (seg.kNorm) k = b.norm(k, seg.kNorm, 'kNorm');
  if (seg.rotary) {
    const dims: Dim[] = b.v.padded ? [B, 1, S, seg.rotaryDims] : [S, seg.rotaryDims];
    const cos = p.input(ROPE_COS, 'float32', dims, false);
    const sin = p.input(ROPE_SIN, 'float32', dims, false);
    const r = { rotaryDims: seg.rotaryDims, headDim: seg.headDim };
    q = p.apply1(rotary, [q, cos, sin], r, 'rotary.q');
    k = p.apply1(rotary, [k, cos, sin], r, 'rotary.k');
  }
  if (b.v.kvCache) {
    const kv = (name: 'k' | 'v', x: Value): Value => {
      p.addOutput(p.apply1(seqMajor, [x], undefined, `cache.${name}`), `${name}_new`, 'float32', [S, B, seg.nKvHeads, seg.headDim]);
      const past = p.input(`past_${name}`, 'float32', ['past', B, seg.nKvHeads, seg.headDim], false);
      return p.apply1(appendPast, [past, x], undefined, `past.${name}`);
    };
    k = kv('k', k);
    v = kv('v', v);
  }
  const groups = seg.nHeads / seg.nKvHeads;
  const padded = b.v.padded && b.v.kvCache;
  const ctx = p.apply1(causalAttention, padded ? [q, k, v, p.input('key_mask', 'bool', [B, 'total'], false)] : [q, k, v], {
    scale: seg.scale, softCap: seg.softcap, window: seg.slidingWindow, ...(groups === 1 ? {} : { groups, nKvHeads: seg.nKvHeads }),
    ...(padded ? { keyMask: true } : {}),
  }, 'attention');
  const merged = p.apply1(mergeHeads, [ctx], heads, 'mergeHeads');
  return seg.out ? b.keptLin(merged, seg.out, 'out') : merged;
}

function mlp(b: SegmentBuilder, seg: MlpSegment): Value {
  const h = b.norm(b.activations(), seg.ln, 'ln');
  const a = seg.gate
    ? b.p.apply1(gatedActivation, [b.keptLin(h, seg.gate, 'gate'), b.keptLin(h, seg.fcIn, 'fcIn')], { activation: seg.activation }, `gated ${seg.activation}`)
    : b.p.apply1(activationOp(seg.activation), [b.keptLin(h, seg.fcIn, 'fcIn')], undefined, seg.activation);
  return b.post(b.keptLin(a, seg.fcOut, 'fcOut'), seg.postNorm);
}

function unembed(b: SegmentBuilder, seg: UnembedSegment): Value {
  const { p, v } = b;
  let h = b.norm(b.activations(), seg.ln, 'ln');
  // The norm is per position, so the last position can be taken before it or after; after
  // keeps one op order for every variant, before would save (s−1)/s of a cheap op.
  if (v.lastOnly) h = p.apply1(lastPosition, [h], undefined, 'lastPosition');
  let y: Value;
  if (v.columns) {
    const cols = p.input('columns', 'int32', [B, 'k'], false);
    const name = seg.weight.weight;
    const w = b.stored(name);
    const hasSeq = !v.lastOnly;
    if (seg.transposed || w.half?.transposed) {
      // Rows of the [vocab, d] table (the tied embedding, or a 16-bit head held as the checkpoint
      // has it) gathered, then widened (and their factors gathered).
      if (seg.weight.bias) throw new Error('internal: a head read as [vocab, d] rows has no bias');
      const ins = w.half?.scale === 'rows' ? [h, w.value, cols, b.rowScale(name)] : [h, w.value, cols];
      y = p.apply1(selectRows, ins, w.half ? { hasSeq, scale: w.half.scale } : { hasSeq }, 'columns');
    } else {
      // Per-row factors of a [d, vocab] head scale its d rows: widen it whole for the gather.
      const perRow = w.half?.scale === 'rows';
      const ins = [h, perRow ? b.weight(name) : w.value, cols];
      if (seg.weight.bias) ins.push(b.weight(seg.weight.bias));
      y = p.apply1(selectColumns, ins, w.half && !perRow ? { hasSeq, scale: w.half.scale as number } : { hasSeq }, 'columns');
    }
  } else if (seg.transposed) {
    // A tied unembedding reading the [vocab, d] token embedding (no [d, vocab] copy).
    if (seg.weight.bias) throw new Error('internal: a transposed unembedding has no bias');
    if (v.window && !b.half.get(seg.weight.weight)?.rowChunks) throw new Error('internal: a window of a table not fed in row chunks');
    y = b.half.get(seg.weight.weight)?.rowChunks
      ? b.chunkedT(h, seg.weight.weight, undefined, 'unembed', v.window)
      : p.apply1(linearTransposed, [h, b.weight(seg.weight.weight)], undefined, 'unembed');
  } else {
    y = b.lin(h, seg.weight, 'unembed');
  }
  // Element-wise, so capping only the selected logits equals selecting from capped ones.
  return seg.softcap === undefined ? y : p.apply1(softCap, [y], { cap: seg.softcap }, 'softcap');
}

export function segmentProgram(spec: ModelSpec, seg: SegmentSpec, v: SegmentVariant = FULL_VARIANT, half: HalfWeights = new Map()): Program {
  const b = new SegmentBuilder(spec, seg, v, half);
  let y: Value;
  switch (seg.kind) {
    case 'embed': y = embed(b, seg); break;
    case 'attention': y = attention(b, seg); break;
    case 'mlp': y = mlp(b, seg); break;
    case 'project': y = b.post(b.keptLin(b.activations(), seg.linear, 'linear'), seg.postNorm); break;
    case 'scale': y = b.p.apply1(scaled, [b.activations()], { factor: seg.factor }, 'scale'); break; // as embed's scale
    case 'sum': {
      const xs = seg.inputs.map((_, i) => b.p.input(`x${i}`, 'float32', [B, S, spec.dims.dModel], true));
      y = b.p.apply1(sum, xs, { ranks: xs.map(() => 3) }, 'sum');
      break;
    }
    case 'unembed': y = unembed(b, seg); break;
  }
  b.p.setOutput(y, 'float32', outputDims(spec, seg, v));
  return b.p;
}
