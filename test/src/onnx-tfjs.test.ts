// The onnx backend's compiled VJPs against tfjs autodiff: every segment of real fixture models
// (GPT-NeoX parallel and sequential, GPT-2), forward and VJP, with a position offset and every
// logit selection — the same inputs and cotangents on both backends. Together the segments use
// every lowered op (layer norm, linear, heads, rotary, causal attention, GELUs, sums, selections).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type Backend, type LogitSelection, type Tensor } from '@sfc/core';
import { onnxBackend } from '@sfc/backend-onnx';
import { tfjsBackend } from '@sfc/backend-tfjs';
import { FIXTURES, SMALL_A } from './paths.js';

/** Relative to the largest |entry| of the tfjs result. */
const TOL = 1e-5;

function rel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0, s = 1e-12;
  for (let i = 0; i < b.length; i++) { const d = Math.abs(a[i]! - b[i]!); if (!(d <= m)) m = d; s = Math.max(s, Math.abs(b[i]!)); }
  return m / s;
}

function noise(seed: number, n: number, scale = 1): Float32Array {
  let x = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return ((x / 2 ** 32) * 2 - 1) * scale; });
}

let onnx: Backend, tfjs: Backend, cacheDir: string;
beforeAll(async () => {
  cacheDir = mkdtempSync(join(tmpdir(), 'sfc-onnx-tfjs-'));
  onnx = await onnxBackend({ cacheDir });
  tfjs = await tfjsBackend({ flavor: 'wasm' });
});
afterAll(async () => {
  await onnx?.dispose();
  await tfjs?.dispose();
  rmSync(cacheDir, { recursive: true, force: true });
});

const models: [string, string][] = [
  ['small-a (neox parallel, rotary 1/2)', SMALL_A],
  ['neox-seq-r100 (sequential, full rotary)', join(FIXTURES, 'models', 'neox-seq-r100')],
  ['gpt2-b (gelu_new, positions)', join(FIXTURES, 'models', 'gpt2-b')],
];

describe.each(models)('onnx vs tfjs segments: %s', (_label, dir) => {
  let mo: Model, mt: Model;
  beforeAll(async () => {
    mo = await Model.load(dir, onnx);
    mt = await Model.load(dir, tfjs);
  });
  afterAll(() => { mo?.dispose(); mt?.dispose(); });

  const B = 3, S = 5, OFFSET = 2;

  it('every segment: forward and VJP agree', async () => {
    const d = mo.spec.dims.dModel;
    await onnx.ops.scope(() => tfjs.ops.scope(async () => {
      for (const seg of mo.spec.segments) {
        if (seg.kind === 'unembed') continue;
        const opts = { positionOffset: OFFSET };
        if (seg.kind === 'embed') {
          const ids = Array.from({ length: B * S }, (_, i) => (i * 7 + 3) % mo.spec.dims.vocabSize);
          const yo = await mo.runtime.forward('embed', [onnx.ops.intTensor(ids, [B, S])], opts);
          const yt = await mt.runtime.forward('embed', [tfjs.ops.intTensor(ids, [B, S])], opts);
          expect(rel(await yo.data(), await yt.data()), 'embed forward').toBeLessThanOrEqual(TOL);
          continue;
        }
        const xs = seg.inputs.map((_, i) => noise(11 + i, B * S * d, 2));
        const cot = noise(97, B * S * d);
        const io = xs.map((x) => onnx.ops.tensor(x, [B, S, d]));
        const itf = xs.map((x) => tfjs.ops.tensor(x, [B, S, d]));
        const yo = await mo.runtime.forward(seg.name, io, opts);
        const yt = await mt.runtime.forward(seg.name, itf, opts);
        expect(rel(await yo.data(), await yt.data()), `${seg.name} forward`).toBeLessThanOrEqual(TOL);
        const go = await mo.runtime.vjp(seg.name, io, onnx.ops.tensor(cot, [B, S, d]), opts);
        const gt = await mt.runtime.vjp(seg.name, itf, tfjs.ops.tensor(cot, [B, S, d]), opts);
        expect(go.length).toBe(gt.length);
        for (let k = 0; k < go.length; k++) {
          expect(rel(await go[k]!.data(), await gt[k]!.data()), `${seg.name} VJP, input ${k}`).toBeLessThanOrEqual(TOL);
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
        expect(rel(await yo.data(), await yt.data()), `unembed ${name} forward`).toBeLessThanOrEqual(TOL);
        expect(rel(await go.data(), await gt.data()), `unembed ${name} VJP`).toBeLessThanOrEqual(TOL);
      }
    }));
  });
});
