// Model parity against independent PyTorch references, on every backend of backends.ts:
// small-a (logits for all 40 clean prompts, last-position logits of the patch prompts, example-0
// submodule outputs) and every fixtures/models/<name>/ref.json (token ids, logits, every
// submodule output, and the total gradients dm/dx_sub of m = logit[plus] − logit[minus] at one
// position, through Model.backward, with full logits and with a 2-column logit selection).
// Then onnx against tfjs-wasm segment by segment: onnx's compiled VJPs against tfjs autodiff on
// real fixture models (GPT-NeoX parallel and sequential, GPT-2, Gemma 2/3, Llama, Mistral, Qwen 2/3),
// forward and VJP, with a position offset and every logit selection, on the same inputs and
// cotangents. Together the segments use every lowered op (layer norm, RMSNorm, linear, heads, GQA,
// q/k norms, rotary, causal and sliding-window attention, soft-caps, GELUs, SiLU, gated MLPs,
// projections, sums, selections).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, segmentWidth, valueWidth, type Backend, type LogitSelection, type Tensor } from '@sfc/core';
import { maxAbsDiff, relMaxError } from '@sfc/core/testing';
import { PARITY_BACKENDS, testBackend, type OpenBackend } from './backends.js';
import { FIXTURES, SMALL_A } from './paths.js';

const LOGIT_TOL = 1e-4;
const ACT_TOL = 1e-4;
/** Gradients: relative to the largest reference entry of that submodule. */
const GRAD_REL_TOL = 1e-4;
/** onnx against tfjs segments: relative to the largest |entry| of the tfjs result. */
const SEGMENT_TOL = 1e-5;

type Nested = number | Nested[];
const flat = (x: Nested): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x]);

/** Rows [from, from+count) of a [batch, ...] tensor's values. */
async function rows(t: Tensor, from: number, count: number): Promise<Float32Array> {
  const per = t.shape.slice(1).reduce((p, d) => p * d, 1);
  return ((await t.data()) as Float32Array).slice(from * per, (from + count) * per);
}

/** Deterministic values in [−scale, scale) (xorshift32). */
function noise(seed: number, n: number, scale = 1): Float32Array {
  let x = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return ((x / 2 ** 32) * 2 - 1) * scale; });
}

interface RefJson {
  model: string;
  submodule_order: string[];
  texts: string[];
  tokens: number[][];
  logits: Nested[];
  submodules: Record<string, Nested[]>;
  grad_check: { text: number; position: number; plus: number; minus: number; value: number; grads: Record<string, Nested> };
}

const MODELS_DIR = join(FIXTURES, 'models');
const modelNames = existsSync(MODELS_DIR)
  ? readdirSync(MODELS_DIR).filter((d) => existsSync(join(MODELS_DIR, d, 'ref.json'))).sort()
  : [];

/** Measured max |Δ| per check, printed once at the end for the report. */
const measured: string[] = [];

for (const which of PARITY_BACKENDS) describe(`${which.name} parity`, () => {
  let opened: OpenBackend;
  let backend: Backend;
  beforeAll(async () => { opened = await which.open(); backend = opened.backend; });
  afterAll(async () => { await opened?.close(); });
  const note = (what: string, d: number) => measured.push(`${which.name} ${what} ${d.toExponential(2)}`);

  describe('small-a', () => {
    const ref = JSON.parse(readFileSync(join(SMALL_A, 'ref', 'model.json'), 'utf8')) as {
      clean_ids: number[][]; clean_logits: Nested[]; patch_ids: number[][]; patch_logits_last: Nested[];
      example0_activations: Record<string, { x: Nested }>;
    };
    let model: Model;
    beforeAll(async () => { model = await Model.load(SMALL_A, backend); });
    afterAll(() => model?.dispose());

    it('logits of all clean prompts, patch last-position logits and example-0 submodule outputs match PyTorch', async () => {
      const ops = backend.ops;
      const before = ops.numTensors();
      await ops.scope(async () => {
        const batch = ref.clean_ids.length, seq = ref.clean_ids[0]!.length;
        const { values, logits } = await model.forward(ops.intTensor(ref.clean_ids.flat(), [batch, seq]));
        expect(logits!.shape).toEqual([batch, seq, model.spec.dims.vocabSize]);
        const dl = maxAbsDiff(await logits!.data(), flat(ref.clean_logits));
        note('small-a logits', dl);
        expect(dl).toBeLessThanOrEqual(LOGIT_TOL);
        const subs = Object.keys(ref.example0_activations);
        expect(subs.sort()).toEqual(model.submodules.map((s) => s.name).sort());
        for (const sub of subs) {
          const d = maxAbsDiff(await rows(values.get(sub)!, 0, 1), flat(ref.example0_activations[sub]!.x));
          note(`small-a ${sub}`, d);
          expect(d, sub).toBeLessThanOrEqual(ACT_TOL);
        }
        // Patch prompts through the last-position logit selection.
        const patch = await model.forward(ops.intTensor(ref.patch_ids.flat(), [batch, seq]), { logits: { lastOnly: true } });
        expect(patch.logits!.shape).toEqual([batch, model.spec.dims.vocabSize]);
        const dp = maxAbsDiff(await patch.logits!.data(), flat(ref.patch_logits_last));
        note('small-a patch logits (last)', dp);
        expect(dp).toBeLessThanOrEqual(LOGIT_TOL);
      });
      expect(ops.numTensors(), 'tensors left alive').toBe(before);
    });
  });

  describe.each(modelNames)('models/%s', (name) => {
    const dir = join(MODELS_DIR, name);
    const ref = JSON.parse(readFileSync(join(dir, 'ref.json'), 'utf8')) as RefJson;
    let model: Model;
    beforeAll(async () => { model = await Model.load(dir, backend); });
    afterAll(() => model?.dispose());

    it('the tokenizer reproduces the reference token ids', () => {
      ref.texts.forEach((t, i) => expect(model.encode(t), t).toEqual(ref.tokens[i]));
    });

    it('logits and every submodule output match PyTorch', async () => {
      expect(model.submodules.map((s) => s.name)).toEqual(ref.submodule_order);
      const ops = backend.ops;
      await ops.scope(async () => {
        for (let i = 0; i < ref.tokens.length; i++) {
          const ids = ref.tokens[i]!;
          const { values, logits } = await model.forward(ops.intTensor(ids, [1, ids.length]));
          const dl = maxAbsDiff(await logits!.data(), flat(ref.logits[i]!));
          note(`${name} text${i} logits`, dl);
          expect(dl, `text ${i} logits`).toBeLessThanOrEqual(LOGIT_TOL);
          for (const sub of ref.submodule_order) {
            const d = maxAbsDiff(await values.get(sub)!.data(), flat(ref.submodules[sub]![i]!));
            expect(d, `text ${i} ${sub}`).toBeLessThanOrEqual(ACT_TOL);
          }
        }
      });
    });

    it('gradients dm/dx of every submodule match PyTorch (full logits and a 2-column selection)', async () => {
      const ops = backend.ops;
      const gc = ref.grad_check;
      const ids = ref.tokens[gc.text]!;
      const seq = ids.length, V = model.spec.dims.vocabSize;
      const before = ops.numTensors();
      await ops.scope(async () => {
        const { values, logits } = await model.forward(ops.intTensor(ids, [1, seq]));
        const lv = await logits!.data();
        expect(Math.abs(lv[gc.position * V + gc.plus]! - lv[gc.position * V + gc.minus]! - gc.value)).toBeLessThanOrEqual(LOGIT_TOL);
        const cot = new Float32Array(seq * V);
        cot[gc.position * V + gc.plus]! += 1;
        cot[gc.position * V + gc.minus]! -= 1;
        const targets = ref.submodule_order;
        const grads = await model.backward(values, { logits: ops.tensor(cot, [1, seq, V]) }, { targets });
        let worst = 0;
        for (const sub of targets) {
          const d = relMaxError(await grads.get(sub)!.data(), flat(gc.grads[sub]!));
          worst = Math.max(worst, d);
          expect(d, sub).toBeLessThanOrEqual(GRAD_REL_TOL);
        }
        note(`${name} grads rel`, worst);

        // The same metric through the unembed's logit selection (last position, two columns).
        if (gc.position === seq - 1) {
          const selection = { lastOnly: true, columns: ops.intTensor([gc.plus, gc.minus], [1, 2]) };
          const sel = await model.forward(ops.intTensor(ids, [1, seq]), { logits: selection });
          const two = await sel.logits!.data();
          expect(sel.logits!.shape).toEqual([1, 2]);
          expect(Math.abs(two[0]! - two[1]! - gc.value)).toBeLessThanOrEqual(LOGIT_TOL);
          const g2 = await model.backward(sel.values, { logits: ops.tensor([1, -1], [1, 2]) }, { targets, logits: selection });
          for (const sub of targets) {
            expect(relMaxError(await g2.get(sub)!.data(), flat(gc.grads[sub]!)), `${sub} (selection)`).toBeLessThanOrEqual(GRAD_REL_TOL);
          }
        }
      });
      expect(ops.numTensors(), 'tensors left alive').toBe(before);
    });
  });
});

const segmentModels: [string, string][] = [
  ['small-a (neox parallel, rotary 1/2)', SMALL_A],
  ['neox-seq-r100 (sequential, full rotary)', join(FIXTURES, 'models', 'neox-seq-r100')],
  ['gpt2-b (gelu_new, positions)', join(FIXTURES, 'models', 'gpt2-b')],
  ['neox-rope-yarn (yarn: scaled cos/sin)', join(FIXTURES, 'models', 'neox-rope-yarn')],
  ['neox-nobias (attention_bias false)', join(FIXTURES, 'models', 'neox-nobias')],
  ['gemma2-a (soft-caps, window, z output, project segments)', join(FIXTURES, 'models', 'gemma2-a')],
  ['gemma3-a (q/k norms, MQA, local/global rope)', join(FIXTURES, 'models', 'gemma3-a')],
  ['llama-a (GQA, llama3 rope, untied)', join(FIXTURES, 'models', 'llama-a')],
  ['mistral-bf16 (sliding window, MQA, BF16)', join(FIXTURES, 'models', 'mistral-bf16')],
  ['qwen2-a (q/k/v bias, tied)', join(FIXTURES, 'models', 'qwen2-a')],
  ['qwen3-a (q/k norms)', join(FIXTURES, 'models', 'qwen3-a')],
];

describe('onnx vs tfjs-wasm, segment by segment', () => {
  let oo: OpenBackend, ot: OpenBackend, onnx: Backend, tfjs: Backend;
  beforeAll(async () => {
    oo = await testBackend('onnx').open();
    ot = await testBackend('tfjs-wasm').open();
    onnx = oo.backend;
    tfjs = ot.backend;
  });
  afterAll(async () => {
    await oo?.close();
    await ot?.close();
  });

  describe.each(segmentModels)('%s', (_label, dir) => {
    let mo: Model, mt: Model;
    beforeAll(async () => {
      mo = await Model.load(dir, onnx);
      mt = await Model.load(dir, tfjs);
    });
    afterAll(() => { mo?.dispose(); mt?.dispose(); });

    const B = 3, S = 5, OFFSET = 2;

    it('every segment: forward and VJP agree', async () => {
      const spec = mo.spec;
      await onnx.ops.scope(() => tfjs.ops.scope(async () => {
        for (const seg of spec.segments) {
          if (seg.kind === 'unembed') continue;
          const opts = { positionOffset: OFFSET };
          if (seg.kind === 'embed') {
            const ids = Array.from({ length: B * S }, (_, i) => (i * 7 + 3) % mo.spec.dims.vocabSize);
            const yo = await mo.runtime.forward('embed', [onnx.ops.intTensor(ids, [B, S])], opts);
            const yt = await mt.runtime.forward('embed', [tfjs.ops.intTensor(ids, [B, S])], opts);
            expect(relMaxError(await yo.data(), await yt.data()), 'embed forward').toBeLessThanOrEqual(SEGMENT_TOL);
            continue;
          }
          // Widths: d, except Gemma's attention output and its projection's input (heads × head_dim).
          const wi = valueWidth(spec, seg.inputs[0]!), wo = segmentWidth(spec, seg);
          const xs = seg.inputs.map((_, i) => noise(11 + i, B * S * wi, 2));
          const cot = noise(97, B * S * wo);
          const io = xs.map((x) => onnx.ops.tensor(x, [B, S, wi]));
          const itf = xs.map((x) => tfjs.ops.tensor(x, [B, S, wi]));
          const yo = await mo.runtime.forward(seg.name, io, opts);
          const yt = await mt.runtime.forward(seg.name, itf, opts);
          expect(relMaxError(await yo.data(), await yt.data()), `${seg.name} forward`).toBeLessThanOrEqual(SEGMENT_TOL);
          const go = await mo.runtime.vjp(seg.name, io, onnx.ops.tensor(cot, [B, S, wo]), opts);
          const gt = await mt.runtime.vjp(seg.name, itf, tfjs.ops.tensor(cot, [B, S, wo]), opts);
          expect(go.length).toBe(gt.length);
          for (let k = 0; k < go.length; k++) {
            expect(relMaxError(await go[k]!.data(), await gt[k]!.data()), `${seg.name} VJP, input ${k}`).toBeLessThanOrEqual(SEGMENT_TOL);
          }
        }
      }));
    });

    it('unembed under every logit selection: forward and VJP agree', async () => {
      const d = mo.spec.dims.dModel, V = mo.spec.dims.vocabSize;
      const cols = Array.from({ length: B * 2 }, (_, i) => (i * 13 + 1) % V);
      const variants: [string, (o: Backend) => LogitSelection | undefined, number[]][] = [
        ['all', () => undefined, [B, S, V]],
        ['last', () => ({ lastOnly: true }), [B, V]],
        ['columns', (o) => ({ columns: o.ops.intTensor(cols, [B, 2]) }), [B, S, 2]],
        ['last + columns', (o) => ({ lastOnly: true, columns: o.ops.intTensor(cols, [B, 2]) }), [B, 2]],
      ];
      await onnx.ops.scope(() => tfjs.ops.scope(async () => {
        const x = noise(5, B * S * d, 2);
        for (const [name, sel, shape] of variants) {
          const cot = noise(31, shape.reduce((a, b) => a * b, 1));
          const run = async (m: Model, b: Backend): Promise<[Tensor, Tensor]> => {
            const xt = b.ops.tensor(x, [B, S, d]);
            const logits = sel(b);
            const y = await m.runtime.forward('unembed', [xt], { logits });
            const [g] = await m.runtime.vjp('unembed', [xt], b.ops.tensor(cot, shape), { logits });
            return [y, g!];
          };
          const [yo, go] = await run(mo, onnx);
          const [yt, gt] = await run(mt, tfjs);
          expect(yo.shape).toEqual(shape);
          expect(relMaxError(await yo.data(), await yt.data()), `unembed ${name} forward`).toBeLessThanOrEqual(SEGMENT_TOL);
          expect(relMaxError(await go.data(), await gt.data()), `unembed ${name} VJP`).toBeLessThanOrEqual(SEGMENT_TOL);
        }
      }));
    });
  });
});

afterAll(() => {
  if (process.env.SFC_PARITY_REPORT) process.stdout.write(`${measured.join('\n')}\n`);
});
