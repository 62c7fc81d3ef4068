// Benchmark (not a test): forward and VJP time of each segment of a Pythia-70m-shaped random
// model on the onnx backend (d 512, 8 heads, MLP 2048, vocab 50304, rotary 0.25, parallel
// residual), at batch 10 × 8 tokens; the whole chain forward and backward; and the lazy
// TensorOps engine on SAE-sized work. Prints a table.
//
//   npx tsx --conditions=@sfc/source bench/onnx-segments.ts [--runs 20] [--threads 2] [--layers 6]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseModelConfig, type Tensor, type WeightTensor } from '@sfc/core';
import { onnxBackend } from '@sfc/backend-onnx';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '20' }, threads: { type: 'string', default: '2' }, layers: { type: 'string', default: '6' } },
});
const RUNS = Number(args.runs), THREADS = Number(args.threads), LAYERS = Number(args.layers);
const B = 10, S = 8;

const spec = parseModelConfig({
  model_type: 'gpt_neox', hidden_size: 512, num_attention_heads: 8, num_hidden_layers: LAYERS, intermediate_size: 2048,
  vocab_size: 50304, rotary_pct: 0.25, max_position_embeddings: 2048, use_parallel_residual: true, hidden_act: 'gelu',
});
const d = spec.dims.dModel, V = spec.dims.vocabSize;

function noise(seed: number, n: number, scale: number, center = 0): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; out[i] = center + ((x / 2 ** 32) * 2 - 1) * scale; }
  return out;
}

const weights = new Map<string, WeightTensor>();
let seed = 1;
for (const [name, shape] of spec.weightShapes) {
  const n = shape.reduce((a, b) => a * b, 1);
  weights.set(name, { shape, data: /ln\d?\.w$|final_ln\.w$/.test(name) ? noise(seed++, n, 0.1, 1) : noise(seed++, n, 0.04) });
}

const cacheDir = mkdtempSync(join(tmpdir(), 'sfc-onnx-bench-'));
const backend = await onnxBackend({ intraOpNumThreads: THREADS, cacheDir });
const ops = backend.ops;
const rt = await backend.loadModel(spec, weights);

interface Row { what: string; first: number; median: number; min: number; max: number }
const rows: Row[] = [];

/** First call (includes building the session) and then `RUNS` timed calls. */
async function time(what: string, fn: () => Promise<unknown>): Promise<void> {
  let t = performance.now();
  await ops.scope(async () => { await fn(); });
  const first = performance.now() - t;
  const ts: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    t = performance.now();
    await ops.scope(async () => { await fn(); });
    ts.push(performance.now() - t);
  }
  ts.sort((a, b) => a - b);
  rows.push({ what, first, median: ts[ts.length >> 1]!, min: ts[0]!, max: ts[ts.length - 1]! });
}

const ids = ops.intTensor(Array.from({ length: B * S }, (_, i) => (i * 7919) % V), [B, S]);
const x = ops.tensor(noise(7, B * S * d, 1), [B, S, d]);
const cot = ops.tensor(noise(8, B * S * d, 1), [B, S, d]);
const cols = ops.intTensor(Array.from({ length: B * 2 }, (_, i) => (i * 104729) % V), [B, 2]);
const metric = { lastOnly: true, columns: cols };
const metricCot = ops.tensor(Array.from({ length: B * 2 }, (_, i) => (i % 2 ? -1 : 1)), [B, 2]);
const allCot = ops.tensor(noise(9, B * S * V, 1), [B, S, V]);

await time('embed forward', () => rt.forward('embed', [ids]));
await time('attn forward', () => rt.forward('attn_0', [x]));
await time('attn VJP', () => rt.vjp('attn_0', [x], cot));
await time('mlp forward', () => rt.forward('mlp_0', [x]));
await time('mlp VJP', () => rt.vjp('mlp_0', [x], cot));
await time('resid (sum) forward', () => rt.forward('resid_0', [x, x, x]));
await time('unembed forward, all logits', () => rt.forward('unembed', [x]));
await time('unembed VJP, all logits', () => rt.vjp('unembed', [x], allCot));
await time('unembed forward, last + 2 columns', () => rt.forward('unembed', [x], { logits: metric }));
await time('unembed VJP, last + 2 columns', () => rt.vjp('unembed', [x], metricCot, { logits: metric }));

/** The whole chain as core's Model runs it: submodule outputs by name. */
async function chainForward(logits: typeof metric | undefined): Promise<{ values: Map<string, Tensor>; y: Tensor }> {
  const values = new Map<string, Tensor>();
  for (const seg of spec.segments) {
    if (seg.kind === 'unembed') break;
    const ins = seg.kind === 'embed' ? [ids] : seg.inputs.map((n) => values.get(n)!);
    values.set(seg.name, await rt.forward(seg.name, ins));
  }
  const y = await rt.forward('unembed', [values.get(`resid_${LAYERS - 1}`)!], { logits });
  return { values, y };
}
await time(`model forward, ${LAYERS} layers, all logits`, () => chainForward(undefined));
await time(`model forward, ${LAYERS} layers, metric logits`, () => chainForward(metric));
await time(`model forward + backward to embed, metric`, async () => {
  const { values } = await chainForward(metric);
  const g = new Map<string, Tensor>();
  const add = (n: string, t: Tensor) => { const p = g.get(n); g.set(n, p ? ops.add(p, t) : t); };
  const [gl] = await rt.vjp('unembed', [values.get(`resid_${LAYERS - 1}`)!], metricCot, { logits: metric });
  add(`resid_${LAYERS - 1}`, gl!);
  for (let i = spec.segments.length - 2; i > 0; i--) {
    const seg = spec.segments[i]!;
    const gi = await rt.vjp(seg.name, seg.inputs.map((n) => values.get(n)!), g.get(seg.name)!);
    seg.inputs.forEach((n, k) => add(n, gi[k]!));
  }
  await g.get('embed')!.data();
});

// Lazy TensorOps at SAE scale: one ReLU SAE of 32768 features, encode + decode + error, read back.
const F = 32768;
const wEnc = ops.tensor(noise(11, d * F, 0.02), [d, F]);
const bEnc = ops.tensor(noise(12, F, 0.1), [F]);
const wDec = ops.tensor(noise(13, F * d, 0.02), [F, d]);
const x2 = ops.reshape(x, [B * S, d]);
await time('TensorOps: SAE encode+decode+error (80 × 512 → 32768)', async () => {
  const f = ops.relu(ops.add(ops.matMul(x2, wEnc), bEnc));
  const err = ops.sub(x2, ops.matMul(f, wDec));
  await Promise.all([f.data(), err.data()]);
});
const tiny = ops.tensor([1, 2, 3], [3]);
await time('TensorOps: one tiny op, data()', () => ops.add(tiny, tiny).data());
await time('TensorOps: 100 tiny ops, one data()', async () => {
  let acc = tiny;
  for (let i = 0; i < 100; i++) acc = ops.add(acc, tiny);
  await acc.data();
});

rt.dispose();
await backend.dispose();
rmSync(cacheDir, { recursive: true, force: true });

const pad = Math.max(...rows.map((r) => r.what.length));
console.log(`onnx backend, ${backend.describe()}`);
console.log(`batch ${B} × ${S} tokens, d ${d}, 8 heads, MLP ${spec.dims.dMlp}, vocab ${V}, rotary 0.25; ${RUNS} runs (ms)\n`);
console.log(`${'what'.padEnd(pad)}  first   median      min      max`);
for (const r of rows) {
  console.log(`${r.what.padEnd(pad)} ${r.first.toFixed(1).padStart(6)} ${r.median.toFixed(2).padStart(8)} ${r.min.toFixed(2).padStart(8)} ${r.max.toFixed(2).padStart(8)}`);
}
console.log(`\npeak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB (model weights ${(([...weights.values()].reduce((a, w) => a + w.data.length, 0) * 4) / 2 ** 20).toFixed(0)} MiB)`);
