// Temporary (reviewer): discover on small-a, tfjs-cpu, with and without an (unaborted) signal.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { batchExamples, discover, Model, selectExamples } from '@sfc/core';
import { loadDictionarySet } from '@sfc/dictionaries';
import { tfjsBackend } from '@sfc/backend-tfjs';
const SMALL_A = '/work/main/fixtures/small-a';
const backend = await tfjsBackend({ flavor: 'cpu' });
const model = await Model.load(SMALL_A, backend);
const dictionaries = await loadDictionarySet(join(SMALL_A, 'saelens'), model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel });
const sel = selectExamples(readFileSync(join(SMALL_A, 'data.jsonl'), 'utf8'), model.tokenizer, { numExamples: 40, seed: null });
const batches = batchExamples(sel.examples, Number(process.env.BS ?? 40));
const run = async (signal?: AbortSignal) => {
  const c0 = process.cpuUsage(); const t0 = performance.now();
  const r = await discover(model, dictionaries, batches, { steps: 10, ...(signal ? { signal } : {}) });
  const t = performance.now() - t0; const c = process.cpuUsage(c0);
  return { wall: t, cpu: (c.user + c.system) / 1000, edges: r.edges.size };
};
await run(); // warm-up
const rows: string[] = [];
for (let i = 0; i < 3; i++) {
  for (const withSignal of [false, true]) {
    const r = await run(withSignal ? new AbortController().signal : undefined);
    rows.push(`${withSignal ? 'signal   ' : 'no signal'} wall ${r.wall.toFixed(0)} ms cpu ${r.cpu.toFixed(0)} ms`);
    console.log(rows.at(-1));
  }
}
