// Where a workload's memory goes, phase by phase (docs/performance.md, "Gemma-2-2B scale",
// Memory): loads the cached workload on the onnx backend, runs one attrib and one IG over some
// submodules, and after each phase prints the RSS, its high-water mark, and V8's array-buffer
// bytes — the weights and sfc's values live there; the RSS above them is native (onnxruntime,
// glibc's kept buffers). During IG it samples both every 10 ms and prints the RSS peak with the
// array-buffer bytes at that moment. With --snapshot FILE it writes a V8 heap snapshot after
// attrib (what holds the live arrays), then stops.
//
//   npx tsx --conditions=@sfc/source bench/memory-phases.ts --scale gemma2-2b [--ig resid_0] [--max-rows N]
//
// Try glibc settings from outside, e.g. `MALLOC_MMAP_THRESHOLD_=1048576 npx tsx …`.

import { writeHeapSnapshot } from 'node:v8';
import { parseArgs } from 'node:util';
import { attribute, batchExamples, collectGarbage, loadExamples, Model } from '@sfc/core';
import { loadDictionarySet } from '@sfc/dictionaries';
import { peakMiB, resetPeak, rssMiB } from './measure.js';
import { scaleByName } from './scales.js';
import { makeBackend } from './sfc-worker.js';
import { findWorkload } from './workload.js';

const { values } = parseArgs({
  options: { scale: { type: 'string', default: 'gemma2-2b' }, ig: { type: 'string', default: 'resid_0' }, 'max-rows': { type: 'string' }, snapshot: { type: 'string' } },
});
const scale = scaleByName(values.scale!);
const w = findWorkload(scale);
if (!w) throw new Error(`no workload for scale ${scale.name}; run \`npm run bench -- --scale ${scale.name}\` once (it generates one)`);

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
const t0 = performance.now();
const log = (phase: string) => {
  const m = process.memoryUsage();
  console.error(`${((performance.now() - t0) / 1000).toFixed(1)} s  ${phase}: RSS ${rssMiB().toFixed(0)} MiB, peak ${peakMiB().toFixed(0)} MiB, array buffers ${mib(m.arrayBuffers)} MiB, JS heap ${mib(m.heapUsed)} MiB`);
};

const backend = await makeBackend('onnx', scale);
if (typeof backend === 'string') throw new Error(backend);
const model = await Model.load(w.modelDir, backend);
log('model loaded');
const dicts = await loadDictionarySet(w.saeDir, model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel, only: w.manifest.saes.submodules });
log('SAEs loaded');
const sel = await loadExamples(w.dataFile, model.tokenizer, { numExamples: scale.examples, seed: null, minLengthOnly: false });
const batches = batchExamples(sel.examples, scale.examples);

resetPeak();
const attribCpu = process.cpuUsage();
await model.ops.scope(async () => { await attribute(model, dicts, batches, { method: { kind: 'attrib' }, submodules: [...dicts.keys()] }); });
const attribUsed = process.cpuUsage(attribCpu);
log(`attrib (${((attribUsed.user + attribUsed.system) / 1e6).toFixed(1)} CPU-s, the first: sessions are created)`);
collectGarbage();
log('attrib, then a full collection');
if (values.snapshot) {
  writeHeapSnapshot(values.snapshot);
  console.error(`heap snapshot: ${values.snapshot} (${model.ops.numTensors()} live tensors)`);
  process.exit(0);
}

const subs = values.ig!.split(',');
resetPeak();
let maxRss = 0, buffersAtMax = 0;
const sampler = setInterval(() => {
  const r = rssMiB();
  if (r > maxRss) { maxRss = r; buffersAtMax = process.memoryUsage().arrayBuffers; }
}, 10);
const cpu = process.cpuUsage();
await model.ops.scope(async () => {
  await attribute(model, dicts, batches, {
    method: { kind: 'ig', steps: 10 }, submodules: subs, ...(values['max-rows'] ? { maxRows: Number(values['max-rows']) } : {}),
  });
});
clearInterval(sampler);
const used = process.cpuUsage(cpu);
log(`ig over ${subs.join(', ')} (${((used.user + used.system) / 1e6).toFixed(1)} CPU-s)`);
console.error(`  sampled during ig: RSS peak ${maxRss.toFixed(0)} MiB, array buffers then ${mib(buffersAtMax)} MiB`);
// onnxruntime may keep worker threads alive.
process.exit(0);
