// Reads every tensor of a model folder's checkpoint once, through core's openCheckpoint, and
// reports the time and peak RSS: as stored (getRaw: bf16 stays 16-bit) and widened to f32 (get).
// Tensors are dropped after reading, so the peak is the largest tensor plus the runtime.
//
//   npx tsx --conditions=@sfc/source bench/checkpoint-read.ts bench/cache/gemma2-2b/model

import { checkpointBytes, formatBytes, openCheckpoint } from '@sfc/core';
import { peakMiB, rssMiB } from './measure.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: bench/checkpoint-read.ts MODEL_DIR');
const ckpt = await openCheckpoint(dir);
const names = ckpt.names();
console.log(`${ckpt.label}: ${ckpt.files.length} file(s), ${names.length} tensors, ${formatBytes(checkpointBytes(ckpt, { widen: false }))} as stored, ${formatBytes(checkpointBytes(ckpt, { widen: true }))} in f32; RSS ${rssMiB().toFixed(0)} MiB`);
for (const mode of ['raw', 'f32'] as const) {
  const t = performance.now(), cpu = process.cpuUsage();
  let values = 0;
  for (const n of names) values += (mode === 'raw' ? ckpt.getRaw(n).data : ckpt.get(n)).length;
  const c = process.cpuUsage(cpu);
  console.log(`${mode}: ${values} values in ${((performance.now() - t) / 1000).toFixed(1)} s (CPU ${((c.user + c.system) / 1e6).toFixed(1)} s), peak RSS so far ${peakMiB().toFixed(0)} MiB`);
}
ckpt.close();
