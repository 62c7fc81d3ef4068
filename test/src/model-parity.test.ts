// Model parity against independent PyTorch references, on the tfjs cpu and wasm flavors:
// small-a (logits for all 40 clean prompts, example-0 submodule outputs) and every
// fixtures/models/<name>/ref.json (logits, every submodule output, and the total gradients
// dm/dx_sub of m = logit[plus] − logit[minus] at one position, through Model.backward).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type Backend, type Tensor } from '@sfc/core';
import { tfjsBackend } from '@sfc/backend-tfjs';
import { FIXTURES, SMALL_A } from './paths.js';

const LOGIT_TOL = 1e-4;
const ACT_TOL = 1e-4;
/** Gradients: relative to the largest reference entry of that submodule. */
const GRAD_REL_TOL = 1e-4;

type Nested = number | Nested[];
const flat = (x: Nested): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x]);

function maxAbsDiff(a: ArrayLike<number>, ref: readonly number[]): number {
  expect(a.length).toBe(ref.length);
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(a[i]! - ref[i]!);
    if (!(d <= m)) m = d; // NaN propagates as a failure
  }
  return m;
}

const maxAbs = (xs: readonly number[]) => xs.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

/** Rows [from, from+count) of a [batch, ...] tensor's values. */
async function rows(t: Tensor, from: number, count: number): Promise<Float32Array> {
  const per = t.shape.slice(1).reduce((p, d) => p * d, 1);
  return ((await t.data()) as Float32Array).slice(from * per, (from + count) * per);
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

describe.each(['cpu', 'wasm'] as const)('tfjs-%s parity', (flavor) => {
  let backend: Backend;
  beforeAll(async () => { backend = await tfjsBackend({ flavor }); });
  afterAll(async () => { await backend?.dispose(); });

  describe('small-a', () => {
    const ref = JSON.parse(readFileSync(join(SMALL_A, 'ref', 'model.json'), 'utf8')) as {
      clean_ids: number[][]; clean_logits: Nested[]; patch_ids: number[][]; patch_logits_last: Nested[];
      example0_activations: Record<string, { x: Nested }>;
    };
    let model: Model;
    beforeAll(async () => { model = await Model.load(SMALL_A, backend); });
    afterAll(() => model?.dispose());

    it('logits of all clean prompts and example-0 submodule outputs match PyTorch', async () => {
      const ops = backend.ops;
      const before = ops.numTensors();
      await ops.scope(async () => {
        const batch = ref.clean_ids.length, seq = ref.clean_ids[0]!.length;
        const { values, logits } = await model.forward(ops.intTensor(ref.clean_ids.flat(), [batch, seq]));
        expect(logits!.shape).toEqual([batch, seq, model.spec.dims.vocabSize]);
        const dl = maxAbsDiff(await logits!.data(), flat(ref.clean_logits));
        measured.push(`${flavor} small-a logits ${dl.toExponential(2)}`);
        expect(dl).toBeLessThanOrEqual(LOGIT_TOL);
        const subs = Object.keys(ref.example0_activations);
        expect(subs.sort()).toEqual(model.submodules.map((s) => s.name).sort());
        for (const sub of subs) {
          const d = maxAbsDiff(await rows(values.get(sub)!, 0, 1), flat(ref.example0_activations[sub]!.x));
          measured.push(`${flavor} small-a ${sub} ${d.toExponential(2)}`);
          expect(d, sub).toBeLessThanOrEqual(ACT_TOL);
        }
        // Patch prompts through the last-position logit selection.
        const patch = await model.forward(ops.intTensor(ref.patch_ids.flat(), [batch, seq]), { logits: { lastOnly: true } });
        expect(patch.logits!.shape).toEqual([batch, model.spec.dims.vocabSize]);
        const dp = maxAbsDiff(await patch.logits!.data(), flat(ref.patch_logits_last));
        measured.push(`${flavor} small-a patch logits (last) ${dp.toExponential(2)}`);
        expect(dp).toBeLessThanOrEqual(LOGIT_TOL);
      });
      expect(ops.numTensors()).toBe(before);
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
          measured.push(`${flavor} ${name} text${i} logits ${dl.toExponential(2)}`);
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
          const r = flat(gc.grads[sub]!);
          const d = maxAbsDiff(await grads.get(sub)!.data(), r) / maxAbs(r);
          worst = Math.max(worst, d);
          expect(d, sub).toBeLessThanOrEqual(GRAD_REL_TOL);
        }
        measured.push(`${flavor} ${name} grads rel ${worst.toExponential(2)}`);

        // The same metric through the unembed's logit selection (last position, two columns).
        if (gc.position === seq - 1) {
          const selection = { lastOnly: true, columns: ops.intTensor([gc.plus, gc.minus], [1, 2]) };
          const sel = await model.forward(ops.intTensor(ids, [1, seq]), { logits: selection });
          const two = await sel.logits!.data();
          expect(sel.logits!.shape).toEqual([1, 2]);
          expect(Math.abs(two[0]! - two[1]! - gc.value)).toBeLessThanOrEqual(LOGIT_TOL);
          const g2 = await model.backward(sel.values, { logits: ops.tensor([1, -1], [1, 2]) }, { targets, logits: selection });
          for (const sub of targets) {
            const r = flat(gc.grads[sub]!);
            expect(maxAbsDiff(await g2.get(sub)!.data(), r) / maxAbs(r), `${sub} (selection)`).toBeLessThanOrEqual(GRAD_REL_TOL);
          }
        }
      });
      expect(ops.numTensors()).toBe(before);
    });
  });
});

afterAll(() => {
  if (process.env.SFC_PARITY_REPORT) process.stdout.write(`${measured.join('\n')}\n`);
});
