// Core's segment description (ModelSpec) → a Program of lowered ops, one per segment and
// variant (logit selection; KV cache). Graph inputs: activations `x0…`, token ids `ids`, the first
// position `offset`, per-example vocabulary ids `columns`, cached keys/values `past_k`/`past_v`,
// rotary tables `rope_cos`/`rope_sin` [seq, rotaryDims] (core's rotaryTables for the call's
// positions: every rope type, dynamic NTK included, with no frequency math in the graph), and every
// weight under its canonical name (weights are fed from tensors created once per model and shared
// by all of its graphs). A cached attention graph also outputs `k_new`/`v_new`. The math of every
// segment field is docs/architecture.md's "segment contract".

import { segmentWidth, valueWidth, type LinearSpec, type ModelSpec, type NormSpec, type SegmentSpec } from '@sfc/core';
import type { Dim } from './onnx-graph.js';
import { activationOp, gatedActivation, softCap } from './lowering/activation.js';
import { appendPast, causalAttention, mergeHeads, rotary, seqMajor, splitHeads } from './lowering/attention.js';
import { embeddingLookup, positionRows, scaled, sum } from './lowering/embedding.js';
import { layerNorm } from './lowering/layer-norm.js';
import { linear } from './lowering/linear.js';
import { lastPosition, selectColumns } from './lowering/logits.js';
import { Program, type Value } from './lowering/op.js';
import { rmsNorm } from './lowering/rms-norm.js';

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
  if (seg.kind !== 'unembed') return [B, S, segmentWidth(spec, seg)];
  const last: Dim = v.columns ? 'k' : spec.dims.vocabSize;
  return v.lastOnly ? [B, last] : [B, S, last];
}

/** Width of input `i` of a non-embed segment: a project segment reads the concatenated heads, all others width d. */
export function inputWidth(spec: ModelSpec, seg: SegmentSpec, i: number): number {
  return seg.kind === 'project' ? valueWidth(spec, seg.inputs[i]!) : spec.dims.dModel;
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
    const xs = seg.inputs.map((_, i) => p.input(`x${i}`, 'float32', [B, S, inputWidth(spec, seg, i)], true));
    return xs.length === 1 ? xs[0]! : p.apply1(sum, xs, { ranks: xs.map(() => 3) }, 'inputs');
  };
  const norm = (x: Value, n: NormSpec, label: string): Value => n.kind === 'layernorm'
    ? p.apply1(layerNorm, [x, weight(n.weight), weight(n.bias)], { eps: n.eps }, label)
    : p.apply1(rmsNorm, [x, weight(n.weight)], { eps: n.eps, unitOffset: n.offset === 1 }, label);

  switch (seg.kind) {
    case 'embed': {
      const ids = p.input('ids', 'int32', [B, S], false);
      let y = p.apply1(embeddingLookup, [weight(seg.tokenEmbedding), ids], undefined, 'tokens');
      if (seg.scale !== undefined) y = p.apply1(scaled, [y], { factor: seg.scale }, 'scale');
      if (seg.positionEmbedding) {
        const pos = p.apply1(positionRows, [weight(seg.positionEmbedding), offsetInput(), ids], { seqAxis: 1 }, 'positions');
        y = p.apply1(sum, [y, pos], { ranks: [3, 2] }, 'add');
      }
      p.setOutput(y, 'float32', outputDims(spec, seg, v));
      break;
    }
    case 'attention': {
      const x = activations();
      const h = norm(x, seg.ln, 'ln');
      const qkv = lin(h, seg.qkv, 'qkv');
      const heads = { nHeads: seg.nHeads, headDim: seg.headDim, nKvHeads: seg.nKvHeads };
      let [q, k, vv] = p.apply(splitHeads, [qkv], heads, 3, 'splitHeads') as [Value, Value, Value];
      if (seg.qNorm) q = norm(q, seg.qNorm, 'qNorm');
      if (seg.kNorm) k = norm(k, seg.kNorm, 'kNorm');
      if (seg.rotary) {
        const cos = p.input(ROPE_COS, 'float32', [S, seg.rotaryDims], false);
        const sin = p.input(ROPE_SIN, 'float32', [S, seg.rotaryDims], false);
        const r = { rotaryDims: seg.rotaryDims, headDim: seg.headDim };
        q = p.apply1(rotary, [q, cos, sin], r, 'rotary.q');
        k = p.apply1(rotary, [k, cos, sin], r, 'rotary.k');
      }
      if (v.kvCache) {
        const kv = (name: 'k' | 'v', x: Value): Value => {
          p.addOutput(p.apply1(seqMajor, [x], undefined, `cache.${name}`), `${name}_new`, 'float32', [S, B, seg.nKvHeads, seg.headDim]);
          const past = p.input(`past_${name}`, 'float32', ['past', B, seg.nKvHeads, seg.headDim], false);
          return p.apply1(appendPast, [past, x], undefined, `past.${name}`);
        };
        k = kv('k', k);
        vv = kv('v', vv);
      }
      const groups = seg.nHeads / seg.nKvHeads;
      const ctx = p.apply1(causalAttention, [q, k, vv], {
        scale: seg.scale, softCap: seg.softcap, window: seg.slidingWindow, ...(groups === 1 ? {} : { groups, nKvHeads: seg.nKvHeads }),
      }, 'attention');
      const merged = p.apply1(mergeHeads, [ctx], heads, 'mergeHeads');
      p.setOutput(seg.out ? lin(merged, seg.out, 'out') : merged, 'float32', outputDims(spec, seg, v));
      break;
    }
    case 'mlp': {
      const x = activations();
      const h = norm(x, seg.ln, 'ln');
      const a = seg.gate
        ? p.apply1(gatedActivation, [lin(h, seg.gate, 'gate'), lin(h, seg.fcIn, 'fcIn')], { activation: seg.activation }, `gated ${seg.activation}`)
        : p.apply1(activationOp(seg.activation), [lin(h, seg.fcIn, 'fcIn')], undefined, seg.activation);
      const y = lin(a, seg.fcOut, 'fcOut');
      p.setOutput(seg.postNorm ? norm(y, seg.postNorm, 'postNorm') : y, 'float32', outputDims(spec, seg, v));
      break;
    }
    case 'project': {
      const y = lin(activations(), seg.linear, 'linear');
      p.setOutput(seg.postNorm ? norm(y, seg.postNorm, 'postNorm') : y, 'float32', outputDims(spec, seg, v));
      break;
    }
    case 'sum': {
      const xs = seg.inputs.map((_, i) => p.input(`x${i}`, 'float32', [B, S, d], true));
      p.setOutput(p.apply1(sum, xs, { ranks: xs.map(() => 3) }, 'sum'), 'float32', outputDims(spec, seg, v));
      break;
    }
    case 'unembed': {
      const x = activations();
      let h = norm(x, seg.ln, 'ln');
      // The norm is per position, so the last position can be taken before it or after; after
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
      // Element-wise, so capping only the selected logits equals selecting from capped ones.
      if (seg.softcap !== undefined) y = p.apply1(softCap, [y], { cap: seg.softcap }, 'softcap');
      p.setOutput(y, 'float32', outputDims(spec, seg, v));
      break;
    }
  }
  return p;
}
