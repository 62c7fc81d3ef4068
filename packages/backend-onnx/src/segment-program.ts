// Core's segment description (ModelSpec) → a Program of lowered ops, one per segment and
// variant (logit selection; KV cache). Graph inputs: activations `x0…`, token ids `ids`, the first
// position `offset`, per-example vocabulary ids `columns`, cached keys/values `past_k`/`past_v`,
// rotary tables `rope_cos`/`rope_sin` [seq, rotaryDims] (core's rotaryTables for the call's
// positions: every rope type, dynamic NTK included, with no frequency math in the graph), and every
// weight under its canonical name (weights are fed from tensors created once per model and shared
// by all of its graphs). A cached attention graph also outputs `k_new`/`v_new`.

import type { LinearSpec, ModelSpec, SegmentSpec } from '@sfc/core';
import type { Dim } from './onnx-graph.js';
import { activationOp } from './lowering/activation.js';
import { appendPast, causalAttention, mergeHeads, rotary, seqMajor, splitHeads } from './lowering/attention.js';
import { embeddingLookup, positionRows, sum } from './lowering/embedding.js';
import { layerNorm } from './lowering/layer-norm.js';
import { linear } from './lowering/linear.js';
import { lastPosition, selectColumns } from './lowering/logits.js';
import { Program, type Value } from './lowering/op.js';

export interface SegmentVariant {
  /** Unembed only: keep the last position. */
  readonly lastOnly: boolean;
  /** Unembed only: per-example vocabulary ids instead of the whole vocabulary. */
  readonly columns: boolean;
  /**
   * Attention only (forward only): past keys/values `past_k`, `past_v` [past, b, h, hd] are
   * prepended, and the new ones come out as `k_new`, `v_new` [s, b, h, hd].
   */
  readonly kvCache?: boolean;
}

export const FULL_VARIANT: SegmentVariant = { lastOnly: false, columns: false };

const B = 'batch';
const S = 'seq';

/** Graph inputs of a rotary attention segment: cos and sin [seq, rotaryDims] of the call's positions. */
export const ROPE_COS = 'rope_cos';
export const ROPE_SIN = 'rope_sin';

export function variantKey(v: SegmentVariant): string {
  return `${v.lastOnly ? 'last' : 'all'}-${v.columns ? 'cols' : 'vocab'}${v.kvCache ? '-kv' : ''}`;
}

/** Output dims of a segment for a variant (symbolic batch, seq and k). */
export function outputDims(spec: ModelSpec, seg: SegmentSpec, v: SegmentVariant): Dim[] {
  if (seg.kind !== 'unembed') return [B, S, spec.dims.dModel];
  const last: Dim = v.columns ? 'k' : spec.dims.vocabSize;
  return v.lastOnly ? [B, last] : [B, S, last];
}

export function segmentProgram(spec: ModelSpec, seg: SegmentSpec, v: SegmentVariant = FULL_VARIANT): Program {
  const p = new Program(seg.name);
  const d = spec.dims.dModel;
  const shape = (name: string): number[] => {
    const s = spec.weightShapes.get(name);
    if (!s) throw new Error(`internal: no weight shape for ${name}`);
    return [...s];
  };
  const weights = new Map<string, Value>();
  const weight = (name: string): Value => {
    let w = weights.get(name);
    if (!w) { w = p.input(name, 'float32', shape(name), false); weights.set(name, w); }
    return w;
  };
  let offset: Value | undefined;
  const offsetInput = (): Value => (offset ??= p.input('offset', 'int64', [], false));
  const lin = (x: Value, l: LinearSpec, label: string): Value =>
    p.apply1(linear, l.bias ? [x, weight(l.weight), weight(l.bias)] : [x, weight(l.weight)], undefined, label);
  const activations = (): Value => {
    const xs = seg.inputs.map((_, i) => p.input(`x${i}`, 'float32', [B, S, d], true));
    return xs.length === 1 ? xs[0]! : p.apply1(sum, xs, { ranks: xs.map(() => 3) }, 'inputs');
  };

  switch (seg.kind) {
    case 'embed': {
      const ids = p.input('ids', 'int32', [B, S], false);
      let y = p.apply1(embeddingLookup, [weight(seg.tokenEmbedding), ids], undefined, 'tokens');
      if (seg.positionEmbedding) {
        const pos = p.apply1(positionRows, [weight(seg.positionEmbedding), offsetInput(), ids], { seqAxis: 1 }, 'positions');
        y = p.apply1(sum, [y, pos], { ranks: [3, 2] }, 'add');
      }
      p.setOutput(y, 'float32', outputDims(spec, seg, v));
      break;
    }
    case 'attention': {
      const x = activations();
      const h = p.apply1(layerNorm, [x, weight(seg.ln.weight), weight(seg.ln.bias)], { eps: seg.ln.eps }, 'ln');
      const qkv = lin(h, seg.qkv, 'qkv');
      const heads = { nHeads: seg.nHeads, headDim: seg.headDim };
      let [q, k, vv] = p.apply(splitHeads, [qkv], heads, 3, 'splitHeads') as [Value, Value, Value];
      if (seg.rotary) {
        const cos = p.input(ROPE_COS, 'float32', [S, seg.rotaryDims], false);
        const sin = p.input(ROPE_SIN, 'float32', [S, seg.rotaryDims], false);
        const r = { rotaryDims: seg.rotaryDims, headDim: seg.headDim };
        q = p.apply1(rotary, [q, cos, sin], r, 'rotary.q');
        k = p.apply1(rotary, [k, cos, sin], r, 'rotary.k');
      }
      if (v.kvCache) {
        const kv = (name: 'k' | 'v', x: Value): Value => {
          p.addOutput(p.apply1(seqMajor, [x], undefined, `cache.${name}`), `${name}_new`, 'float32', [S, B, seg.nHeads, seg.headDim]);
          const past = p.input(`past_${name}`, 'float32', ['past', B, seg.nHeads, seg.headDim], false);
          return p.apply1(appendPast, [past, x], undefined, `past.${name}`);
        };
        k = kv('k', k);
        vv = kv('v', vv);
      }
      const ctx = p.apply1(causalAttention, [q, k, vv], { scale: seg.scale }, 'attention');
      const merged = p.apply1(mergeHeads, [ctx], heads, 'mergeHeads');
      p.setOutput(lin(merged, seg.out, 'out'), 'float32', outputDims(spec, seg, v));
      break;
    }
    case 'mlp': {
      const x = activations();
      const h = p.apply1(layerNorm, [x, weight(seg.ln.weight), weight(seg.ln.bias)], { eps: seg.ln.eps }, 'ln');
      const a = p.apply1(activationOp(seg.activation), [lin(h, seg.fcIn, 'fcIn')], undefined, seg.activation);
      p.setOutput(lin(a, seg.fcOut, 'fcOut'), 'float32', outputDims(spec, seg, v));
      break;
    }
    case 'sum': {
      const xs = seg.inputs.map((_, i) => p.input(`x${i}`, 'float32', [B, S, d], true));
      p.setOutput(p.apply1(sum, xs, { ranks: xs.map(() => 3) }, 'sum'), 'float32', outputDims(spec, seg, v));
      break;
    }
    case 'unembed': {
      const x = activations();
      let h = p.apply1(layerNorm, [x, weight(seg.ln.weight), weight(seg.ln.bias)], { eps: seg.ln.eps }, 'ln');
      // Layer norm is per position, so the last position can be taken before it or after; after
      // keeps one op order for every variant, before would save (s−1)/s of a cheap op.
      if (v.lastOnly) h = p.apply1(lastPosition, [h], undefined, 'lastPosition');
      let y: Value;
      if (v.columns) {
        const cols = p.input('columns', 'int32', [B, 'k'], false);
        const ins = [h, weight(seg.weight.weight), cols];
        if (seg.weight.bias) ins.push(weight(seg.weight.bias));
        y = p.apply1(selectColumns, ins, { hasSeq: !v.lastOnly }, 'columns');
      } else {
        y = lin(h, seg.weight, 'unembed');
      }
      p.setOutput(y, 'float32', outputDims(spec, seg, v));
      break;
    }
  }
  return p;
}
