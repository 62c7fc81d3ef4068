// Dev tool (never part of `npm test`): steered side-by-side generation, batched against one prompt
// at a time, on embedded/agreement — 16 prompts × 20 new tokens, sampled, of one length and of
// mixed lengths. Run from the repo root:
//   npx tsx --conditions=@sfc/source packages/steering/test/generation-bench.ts onnx|wasm
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Model } from '@sfc/core';
import { tfjsBackend } from '@sfc/backend-tfjs';
import { onnxBackend } from '@sfc/backend-onnx';
import { loadDictionarySet } from '@sfc/dictionaries';
import { clamp, generateSideBySide, generateSideBySideBatch, groupByLength, interventionsFor, parseFeatureId, parsePositions, Steering } from '../src/index.js';

const DIR = fileURLToPath(new URL('../../../embedded/agreement', import.meta.url));
const which = process.argv[2] ?? 'onnx';
const cacheDir = which === 'onnx' ? mkdtempSync(join(tmpdir(), 'sfc-generation-bench-')) : undefined;
const backend = cacheDir ? await onnxBackend({ intraOpNumThreads: 1, cacheDir }) : await tfjsBackend({ flavor: 'wasm' });
const model = await Model.load(join(DIR, 'model'), backend);
const dictionaries = await loadDictionarySet(join(DIR, 'saes'), model.submodules, { ops: backend.ops, dIn: model.spec.dims.dModel });
const steering = await Steering.create(model, dictionaries,
  interventionsFor(['resid_1/3', 'attn_1/5', 'mlp_0/7'].map(parseFeatureId), clamp(4), parsePositions('all')));
const prefixes = (file: string, n: number): string[] => readFileSync(join(DIR, 'data', file), 'utf8').trim().split('\n').slice(0, n)
  .map((line) => (JSON.parse(line) as { clean_prefix: string }).clean_prefix);
const workloads: [string, string[]][] = [
  ['16 rc prompts', prefixes('rc_test.jsonl', 16)],
  ['16 mixed prompts', ['simple', 'rc', 'nounpp', 'within_rc'].flatMap((d) => prefixes(`${d}_test.jsonl`, 4))],
];
const options = { maxNewTokens: 20, sampling: { kind: 'sample' as const, temperature: 1, seed: 3 } };
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [name, texts] of workloads) {
  const groups = groupByLength(texts.map((t) => model.encode(t).length));
  await generateSideBySideBatch(model, texts, steering, options); // warm-up (onnx compiles its graphs)
  const alone: number[] = [], batched: number[] = [];
  for (let run = 0; run < 5; run++) {
    let t = performance.now();
    for (const text of texts) await generateSideBySide(model, text, steering, options);
    alone.push(performance.now() - t);
    t = performance.now();
    await generateSideBySideBatch(model, texts, steering, options);
    batched.push(performance.now() - t);
  }
  console.log(`${which} | ${name} | groups ${groups.map((g) => `${g.rows.length}×${g.length} tokens`).join(', ')} | `
    + `one at a time ${(median(alone) / 1000).toFixed(3)} s | batched ${(median(batched) / 1000).toFixed(3)} s | ${(median(alone) / median(batched)).toFixed(1)}×`);
}
for (const d of dictionaries.values()) d.dispose();
model.dispose();
await backend.dispose();
if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
