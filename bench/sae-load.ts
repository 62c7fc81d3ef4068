// Loads a workload's SAEs (every submodule folder of bench/cache/<scale>/saes) on a backend's ops,
// without the model, and reports the time and RSS: what a set of SAEs costs by itself.
//
//   npx tsx --conditions=@sfc/source bench/sae-load.ts --scale gemma2-2b [--backend onnx] [--count N]

import { parseArgs } from 'node:util';
import { formatBytes, listSubmodules } from '@sfc/core';
import { loadDictionarySet } from '@sfc/dictionaries';
import { peakMiB, rssMiB } from './measure.js';
import { scaleByName } from './scales.js';
import { makeBackend } from './sfc-worker.js';
import { findWorkload } from './workload.js';

const { values } = parseArgs({ options: { scale: { type: 'string', default: 'gemma2-small' }, backend: { type: 'string', default: 'onnx' }, count: { type: 'string' } } });
const scale = scaleByName(values.scale!);
const w = findWorkload(scale);
if (!w) throw new Error(`no ${scale.name} workload: run npm run bench -- --scale ${scale.name} (or bench/generate.ts) first`);
const backend = await makeBackend(values.backend!);
if (typeof backend === 'string') throw new Error(backend);
const gemma = scale.architecture === 'gemma2';
const subs = listSubmodules(scale.nLayers, scale.architecture ?? 'gpt_neox', { embed: !gemma, dModel: scale.dModel, attnWidth: gemma ? scale.nHeads * scale.headDim! : scale.dModel });
const before = rssMiB();
const t = performance.now(), cpu = process.cpuUsage();
const only = w.manifest.saes.submodules.slice(0, values.count === undefined ? undefined : Number(values.count));
const set = await loadDictionarySet(w.saeDir, subs, { ops: backend.ops, dIn: scale.dModel, only });
const c = process.cpuUsage(cpu);
console.log(`${set.size} SAEs (of ${w.manifest.saes.submodules.length}; ${formatBytes(w.manifest.saes.bytes * set.size / w.manifest.saes.submodules.length)} of files) on ${values.backend}: ${((performance.now() - t) / 1000).toFixed(1)} s `
  + `(CPU ${((c.user + c.system) / 1e6).toFixed(1)} s); RSS ${before.toFixed(0)} → ${rssMiB().toFixed(0)} MiB, peak ${peakMiB().toFixed(0)} MiB`);
for (const d of set.values()) d.dispose();
await backend.dispose();
