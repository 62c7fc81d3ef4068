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
import { widen } from './lowering/widen.js';

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
}

export const FULL_VARIANT: SegmentVariant = { lastOnly: false, columns: false };

const B = 'batch';
const S = 'seq';

/** Graph inputs of a rotary attention segment: cos and sin [seq, rotaryDims] of the call's positions. */
export const ROPE_COS = 'rope_cos';
export const ROPE_SIN = 'rope_sin';

export function variantKey(v: SegmentVariant): string {
  return `${v.lastOnly ? 'last' : 'all'}-${v.columns ? 'cols' : 'vocab'}${v.kvCache ? '-kv' : ''}${v.padded ? '-pad' : ''}`;
}

/** Output dims of a segment for a variant (symbolic batch, seq and k). */
export function outputDims(spec: ModelSpec, seg: SegmentSpec, v: SegmentVariant): Dim[] {
  if (seg.kind !== 'unembed') return [B, S, segmentWidth(spec, seg)];
  const last: Dim = v.columns ? 'k' : spec.dims.vocabSize;
  return v.lastOnly ? [B, last] : [B, S, last];
}

/** Width of input `i` of a non-embed segment: a project segment reads the concatenated heads, all others width d. */
export function inputWidth(spec: ModelSpec, seg: SegmentSpec, i: number): number {
  return seg.kind === 'project' ? valueWidth(spec, seg.inputs[i]!) : spec.dims.dModel;
}

/** Scales of the weights held in 16 bits (HalfWeightTensor.scale), by canonical name; absent: float32. */
export type HalfWeights = ReadonlyMap<string, number>;

/** What every segment builder uses: the program, weights as graph inputs (one each), and the shared ops. */
class SegmentBuilder {
  readonly p: Program;
  private readonly inputs = new Map<string, Value>();
  private readonly widened = new Map<string, Value>();
  private offsetValue?: Value;

  constructor(readonly spec: ModelSpec, readonly seg: SegmentSpec, readonly v: SegmentVariant, readonly half: HalfWeights) {
    this.p = new Program(seg.name);
  }

  /** The graph input of a weight as held: float16 for a 16-bit weight (then `scale` says how to widen it). */
  stored(name: string): { value: Value; scale?: number } {
    let w = this.inputs.get(name);
    const scale = this.half.get(name);
    if (!w) {
      const shape = this.spec.weightShapes.get(name);
      if (!shape) throw new Error(`internal: no weight shape for ${name}`);
      w = this.p.input(name, scale === undefined ? 'float32' : 'float16', [...shape], false);
      this.inputs.set(name, w);
    }
    return scale === undefined ? { value: w } : { value: w, scale };
  }

  /** A weight as float32 (widened in the graph when held in 16 bits). */
  weight(name: string): Value {
    const { value, scale } = this.stored(name);
    if (scale === undefined) return value;
    let w = this.widened.get(name);
    if (!w) {
      w = this.p.apply1(widen, [value], { scale }, `widen ${name}`);
      this.widened.set(name, w);
    }
    return w;
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
    return this.p.apply1(linear, l.bias ? [x, this.weight(l.weight), this.weight(l.bias)] : [x, this.weight(l.weight)], undefined, label);
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
  if (table.scale !== undefined) y = p.apply1(widen, [y], { scale: table.scale }, 'widen tokens');
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
  const qkv = b.lin(h, seg.qkv, 'qkv');
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
  return seg.out ? b.lin(merged, seg.out, 'out') : merged;
}

function mlp(b: SegmentBuilder, seg: MlpSegment): Value {
  const h = b.norm(b.activations(), seg.ln, 'ln');
  const a = seg.gate
    ? b.p.apply1(gatedActivation, [b.lin(h, seg.gate, 'gate'), b.lin(h, seg.fcIn, 'fcIn')], { activation: seg.activation }, `gated ${seg.activation}`)
    : b.p.apply1(activationOp(seg.activation), [b.lin(h, seg.fcIn, 'fcIn')], undefined, seg.activation);
  return b.post(b.lin(a, seg.fcOut, 'fcOut'), seg.postNorm);
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
    const w = b.stored(seg.weight.weight);
    const ins = [h, w.value, cols];
    if (seg.weight.bias) ins.push(b.weight(seg.weight.bias));
    const attrs = w.scale === undefined ? { hasSeq: !v.lastOnly } : { hasSeq: !v.lastOnly, scale: w.scale };
    y = p.apply1(seg.transposed ? selectRows : selectColumns, ins, attrs, 'columns');
  } else if (seg.transposed) {
    // A tied unembedding reading the [vocab, d] token embedding (no [d, vocab] copy).
    if (seg.weight.bias) throw new Error('internal: a transposed unembedding has no bias');
    y = p.apply1(linearTransposed, [h, b.weight(seg.weight.weight)], undefined, 'unembed');
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
    case 'project': y = b.post(b.lin(b.activations(), seg.linear, 'linear'), seg.postNorm); break;
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
