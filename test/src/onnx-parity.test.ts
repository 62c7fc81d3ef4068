// The onnx backend against independent PyTorch references: fixtures/small-a (logits of all 40
// clean prompts, example-0 submodule outputs) and every fixtures/models/<name>/ref.json (token
// ids, logits, every submodule output, and the total gradients dm/dx_sub of
// m = logit[position, plus] − logit[position, minus] through Model.backward).

import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type Backend } from '@sfc/core';
import { onnxBackend } from '@sfc/backend-onnx';
import { FIXTURES, SMALL_A } from './paths.js';

const LOGIT_TOL = 1e-4;
/** Submodule outputs and gradients: relative to the largest reference entry. */
const REL_TOL = 1e-4;

type Nested = number | Nested[];
const flat = (x: Nested): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x]);

function maxDiff(a: ArrayLike<number>, ref: readonly number[]): number {
  expect(a.length).toBe(ref.length);
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(a[i]! - ref[i]!);
    if (!(d <= m)) m = d; // NaN becomes the maximum and fails
  }
  return m;
}

function relDiff(a: ArrayLike<number>, ref: readonly number[]): number {
  const scale = ref.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  return maxDiff(a, ref) / Math.max(scale, 1e-12);
}

interface RefJson {
  texts: string[];
  tokens: number[][];
  logits: Nested[];
  submodule_order: string[];
  submodules: Record<string, Nested[]>;
  grad_check: { text: number; position: number; plus: number; minus: number; value: number; grads: Record<string, Nested> };
}

const MODELS = join(FIXTURES, 'models');
const modelNames = existsSync(MODELS) ? readdirSync(MODELS).filter((d) => existsSync(join(MODELS, d, 'ref.json'))).sort() : [];

let backend: Backend;
let cacheDir: string;
beforeAll(async () => {
  cacheDir = mkdtempSync(join(tmpdir(), 'sfc-onnx-parity-'));
  backend = await onnxBackend({ cacheDir });
});
afterAll(async () => {
  await backend?.dispose();
  rmSync(cacheDir, { recursive: true, force: true });
});

describe('onnx parity: small-a', () => {
  const ref = JSON.parse(readFileSync(join(SMALL_A, 'ref', 'model.json'), 'utf8')) as {
    clean_ids: number[][]; clean_logits: Nested[]; example0_activations: Record<string, { x: Nested }>;
  };

  it('logits of all 40 clean prompts and the example-0 submodule outputs match PyTorch', async () => {
    const model = await Model.load(SMALL_A, backend);
    const ops = backend.ops;
    const before = ops.numTensors();
    await ops.scope(async () => {
      const batch = ref.clean_ids.length, seq = ref.clean_ids[0]!.length;
      const { values, logits } = await model.forward(ops.intTensor(ref.clean_ids.flat(), [batch, seq]));
      expect(logits!.shape).toEqual([batch, seq, model.spec.dims.vocabSize]);
      expect(maxDiff(await logits!.data(), flat(ref.clean_logits))).toBeLessThanOrEqual(LOGIT_TOL);
      for (const [sub, act] of Object.entries(ref.example0_activations)) {
        const v = values.get(sub)!;
        const per = v.shape[1]! * v.shape[2]!;
        const row0 = (await v.data()).slice(0, per);
        expect(relDiff(row0, flat(act.x)), sub).toBeLessThanOrEqual(REL_TOL);
      }
    });
    expect(ops.numTensors()).toBe(before);
    model.dispose();
  });
});

describe.each(modelNames)('onnx parity: %s', (name) => {
  const dir = join(MODELS, name);
  const ref = JSON.parse(readFileSync(join(dir, 'ref.json'), 'utf8')) as RefJson;
  let model: Model;
  beforeAll(async () => { model = await Model.load(dir, backend); });
  afterAll(() => model?.dispose());

  it('tokenizes the reference texts to the reference ids', () => {
    ref.texts.forEach((t, i) => expect(model.encode(t)).toEqual(ref.tokens[i]));
  });

  it('logits and every submodule output match PyTorch', async () => {
    const ops = backend.ops;
    await ops.scope(async () => {
      for (let i = 0; i < ref.tokens.length; i++) {
        const ids = ref.tokens[i]!;
        const { values, logits } = await model.forward(ops.intTensor(ids, [1, ids.length]));
        expect(maxDiff(await logits!.data(), flat(ref.logits[i]!)), `logits of text ${i}`).toBeLessThanOrEqual(LOGIT_TOL);
        for (const sub of ref.submodule_order) {
          expect(relDiff(await values.get(sub)!.data(), flat(ref.submodules[sub]![i]!)), `${sub} of text ${i}`).toBeLessThanOrEqual(REL_TOL);
        }
      }
    });
  });

  it('total gradients dm/dx_sub through Model.backward match PyTorch', async () => {
    const ops = backend.ops;
    const gc = ref.grad_check;
    await ops.scope(async () => {
      const ids = ref.tokens[gc.text]!;
      const s = ids.length, V = model.spec.dims.vocabSize;
      const { values, logits } = await model.forward(ops.intTensor(ids, [1, s]));
      const l = await logits!.data();
      const m = l[gc.position * V + gc.plus]! - l[gc.position * V + gc.minus]!;
      expect(Math.abs(m - gc.value)).toBeLessThanOrEqual(2 * LOGIT_TOL);
      const cot = new Float32Array(s * V);
      cot[gc.position * V + gc.plus]! += 1;
      cot[gc.position * V + gc.minus]! -= 1;
      const grads = await model.backward(values, { logits: ops.tensor(cot, [1, s, V]) }, { targets: ref.submodule_order });
      for (const sub of ref.submodule_order) {
        expect(relDiff(await grads.get(sub)!.data(), flat(gc.grads[sub]!)), `d m / d ${sub}`).toBeLessThanOrEqual(REL_TOL);
      }
    });
  });
});
