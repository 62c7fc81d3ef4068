// The scale-out rows of docs/performance.md (issue 14), one run each on the pythia70m workload:
//
//   npx tsx --conditions=@sfc/source bench/scale-rows.ts [--rows discover,shards,mixed] [--scale pythia70m|small] [--no-save]
//
// - discover: the reference's default run (feature-circuits' get_circuit.sh: 100 examples, batch
//   10, IG 10 steps, node threshold 0.1, edge threshold 0.01) as one `sfc discover` process of the
//   built CLI (packages/cli-tui/bin/sfc.js) — start, load, discovery, write — wall seconds;
// - shards: the same as 4 `sfc discover --shard i/4` processes one after the other, then
//   `sfc merge`; the merge's wall time against the single run's, and the merged circuit against
//   the single run's circuit;
// - mixed: 30 pairs of 6, 7 and 8 tokens (interleaved) in right-padded batches of 10, against the
//   same pairs as one group per length (3 batches of 10), `discover()` in one process on onnx
//   (after one untimed warm-up of each, so graph compilation is not timed).
// Before the timed CLI run, one small untimed `sfc discover` fills the onnx graph cache.
// Prints the rows with the load average and writes bench/results/scale-<timestamp>.json.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { batchExamples, discover, Model, selectExamples, type Backend, type Dictionary, type Example } from '@sfc/core';
import { loadDictionarySet } from '@sfc/dictionaries';
import { pairs } from './generate-data.js';
import { machine, writeNamedResults } from './report.js';
import { BENCH_DIR, IG_STEPS, scaleByName } from './scales.js';
import { makeBackend } from './sfc-worker.js';
import { findWorkload, type Workload } from './workload.js';

const REPO = join(BENCH_DIR, '..');
const SFC = join(REPO, 'packages', 'cli-tui', 'bin', 'sfc.js');
const ROWS = ['discover', 'shards', 'mixed'] as const;
type Row = (typeof ROWS)[number];

interface Timed { readonly seconds: number; readonly cpuSeconds: number | null; readonly peakRssMiB: number | null; readonly stderr: string }

const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/** Runs the built CLI once: wall seconds of the whole process, and its CPU seconds and peak RSS when GNU time is there. */
function sfc(args: readonly string[]): Timed {
  const cmd = [process.execPath, SFC, ...args];
  const t0 = performance.now();
  const r = GNU_TIME
    ? spawnSync(GNU_TIME, ['-f', 'SFC-TIME %e %U %S %M', ...cmd], { encoding: 'utf8', maxBuffer: 1 << 26 })
    : spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`sfc ${args.slice(0, 2).join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const m = /SFC-TIME (\S+) (\S+) (\S+) (\d+)\s*$/.exec(r.stderr);
  return { seconds, cpuSeconds: m ? Number(m[2]) + Number(m[3]) : null, peakRssMiB: m ? Number(m[4]) / 1024 : null, stderr: r.stderr };
}

const fmt = (t: Timed) => `${t.seconds.toFixed(1)} s wall${t.cpuSeconds === null ? '' : ` (${t.cpuSeconds.toFixed(1)} CPU-s, peak ${(t.peakRssMiB! / 1024).toFixed(2)} GiB)`}`;
const record = (t: Timed) => ({ seconds: t.seconds, cpuSeconds: t.cpuSeconds, peakRssMiB: t.peakRssMiB });

const load = () => loadavg().map((x) => Number(x.toFixed(2)));

function inputs(w: Workload, data: string): string[] {
  return ['--model', w.modelDir, '--dictionaries', w.saeDir, '--data', data, '--backend', 'onnx', '--steps', String(IG_STEPS),
    '--node-threshold', '0.1', '--edge-threshold', '0.01', '--quiet'];
}

/** Largest relative difference between two circuits' node effects and edge weights (same nodes and edges required). */
function circuitDifference(a: string, b: string): number {
  const ca = JSON.parse(readFileSync(a, 'utf8')), cb = JSON.parse(readFileSync(b, 'utf8'));
  if (ca.nodes.length !== cb.nodes.length || ca.edges.length !== cb.edges.length) return Infinity;
  let worst = 0;
  const rel = (x: number, y: number) => Math.abs(x - y) / Math.max(Math.abs(y), 1e-30);
  ca.nodes.forEach((n: { id: string; effect: number | null }, i: number) => {
    if (n.id !== cb.nodes[i].id) worst = Infinity;
    else if (n.effect !== null) worst = Math.max(worst, rel(n.effect, cb.nodes[i].effect));
  });
  ca.edges.forEach((e: { source: string; target: string; weight: number }, i: number) => {
    const f = cb.edges[i];
    worst = e.source === f.source && e.target === f.target ? Math.max(worst, rel(e.weight, f.weight)) : Infinity;
  });
  return worst;
}

async function cliRows(w: Workload, tmp: string, rows: readonly Row[]): Promise<Record<string, unknown>> {
  const data = join(tmp, 'data100.jsonl');
  writeFileSync(data, `${pairs(100).map((p) => JSON.stringify(p)).join('\n')}\n`);
  const base = [...inputs(w, data), '--num-examples', '100', '--batch-size', '10'];
  const out: Record<string, unknown> = {};
  const warm = sfc(['discover', ...inputs(w, data), '--num-examples', '10', '--batch-size', '10', '--out', join(tmp, 'warm.json')]);
  console.error(`[scale] warm-up discover (10 examples): ${warm.seconds.toFixed(1)} s`);
  let single: number | undefined;
  if (rows.includes('discover') || rows.includes('shards')) {
    const l0 = load();
    const r = sfc(['discover', ...base, '--out', join(tmp, 'single.json')]);
    single = r.seconds;
    out.discover = { ...record(r), loadStart: l0, loadEnd: load() };
    console.error(`[scale] discover, 100 examples, batch 10, one process: ${fmt(r)} (load ${l0.join(' ')} → ${load().join(' ')})`);
  }
  if (rows.includes('shards')) {
    const l0 = load();
    const shards = [0, 1, 2, 3].map((i) => sfc(['discover', ...base, '--shard', `${i}/4`, '--out', join(tmp, `part-${i}.json`)]));
    const merge = sfc(['merge', ...[0, 1, 2, 3].map((i) => join(tmp, `part-${i}.json`)), '--out', join(tmp, 'merged.json'), '--quiet']);
    const diff = circuitDifference(join(tmp, 'merged.json'), join(tmp, 'single.json'));
    const partBytes = [0, 1, 2, 3].map((i) => readFileSync(join(tmp, `part-${i}.json`)).length);
    out.shards = { shards: shards.map(record), merge: record(merge), mergeOverSingle: merge.seconds / single!, maxRelDifference: diff, partBytes, loadStart: l0, loadEnd: load() };
    console.error(`[scale] 4 shards: ${shards.map(fmt).join('; ')}`);
    console.error(`[scale] merge ${fmt(merge)} = ${(100 * merge.seconds / single!).toFixed(1)}% of the single run; `
      + `merged vs single max rel diff ${diff.toExponential(2)}; partials ${partBytes.map((b) => (b / 2 ** 20).toFixed(1)).join(', ')} MiB (load → ${load().join(' ')})`);
  }
  return out;
}

/** 30 pairs: pair i of the workload with 0, 1 or 2 adjectives dropped (8, 7, 6 tokens), interleaved. */
function mixedPairs(): Record<string, string>[] {
  return pairs(30).map((p, i) => {
    const drop = (s: string) => {
      const words = s.split(' ');
      const keep = i % 3 === 0 ? words : i % 3 === 1 ? words.filter((_, k) => k !== 1) : words.filter((_, k) => k !== 1 && k !== 5);
      return keep.join(' ');
    };
    return { ...p, clean_prefix: drop(p.clean_prefix!), patch_prefix: drop(p.patch_prefix!) };
  });
}

async function mixedRow(w: Workload, backend: Backend): Promise<Record<string, unknown>> {
  const model = await Model.load(w.modelDir, backend);
  const dicts: Map<string, Dictionary> = await loadDictionarySet(w.saeDir, model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel });
  try {
    const text = mixedPairs().map((p) => JSON.stringify(p)).join('\n');
    const sel = selectExamples(text, model.tokenizer, { numExamples: 30, seed: null, minLengthOnly: false });
    const lengths = [...new Set(sel.examples.map((e) => e.cleanIds.length))].sort();
    if (sel.examples.length !== 30 || lengths.length !== 3) throw new Error(`mixed data: ${sel.examples.length} examples of lengths ${lengths.join(', ')}`);
    const padded = batchExamples(sel.examples, 10);
    const groups = lengths.map((n) => batchExamples(sel.examples.filter((e: Example) => e.cleanIds.length === n), 10));
    const options = { steps: IG_STEPS, nodeThreshold: 0.1 };
    const cpu = { padded: 0, groups: 0 };
    const time = async (fn: () => Promise<unknown>, side: keyof typeof cpu) => {
      const t0 = performance.now(), c0 = process.cpuUsage();
      await fn();
      const c = process.cpuUsage(c0);
      cpu[side] += (c.user + c.system) / 1e6;
      return (performance.now() - t0) / 1000;
    };
    // Untimed warm-up of every shape (onnx compiles a graph per shape once).
    await discover(model, dicts, padded, options);
    for (const g of groups) await discover(model, dicts, g, options);
    const l0 = load();
    const paddedSeconds = await time(() => discover(model, dicts, padded, options), 'padded');
    const groupSeconds: number[] = [];
    for (const g of groups) groupSeconds.push(await time(() => discover(model, dicts, g, options), 'groups'));
    const total = groupSeconds.reduce((a, b) => a + b, 0);
    console.error(`[scale] mixed lengths ${lengths.join('/')}: padded batches ${paddedSeconds.toFixed(1)} s; one group per length ${groupSeconds.map((s) => s.toFixed(1)).join(' + ')} = ${total.toFixed(1)} s; `
      + `ratio ${(paddedSeconds / total).toFixed(2)} wall, ${(cpu.padded / cpu.groups).toFixed(2)} CPU (${cpu.padded.toFixed(1)} / ${cpu.groups.toFixed(1)} CPU-s) (load ${l0.join(' ')} → ${load().join(' ')})`);
    return {
      lengths, paddedBatches: padded.map((b) => `${b.size}×${b.seq}`), paddedSeconds, groupSeconds, ratio: paddedSeconds / total,
      cpuSeconds: cpu, cpuRatio: cpu.padded / cpu.groups, loadStart: l0, loadEnd: load(),
    };
  } finally {
    for (const d of dicts.values()) d.dispose();
    model.dispose();
  }
}

const { values } = parseArgs({ options: {
  rows: { type: 'string', default: ROWS.join(',') }, scale: { type: 'string', default: 'pythia70m' }, 'no-save': { type: 'boolean', default: false },
} });
const rows = values.rows!.split(',') as Row[];
for (const r of rows) if (!ROWS.includes(r)) throw new Error(`unknown row ${r} (known: ${ROWS.join(', ')})`);
const w = findWorkload(scaleByName(values.scale!));
if (!w) throw new Error(`no ${values.scale} workload: run \`npx tsx --conditions=@sfc/source bench/generate.ts --scale ${values.scale}\` once`);
const result: Record<string, unknown> = { schema: 'sfc.bench-scale/v1', scale: values.scale, machine: machine(), created: new Date().toISOString() };
const tmp = mkdtempSync(join(tmpdir(), 'sfc-scale-rows-'));
try {
  if (rows.includes('discover') || rows.includes('shards')) Object.assign(result, await cliRows(w, tmp, rows));
  if (rows.includes('mixed')) {
    const backend = await makeBackend('onnx');
    if (typeof backend === 'string') throw new Error(backend);
    try { result.mixed = await mixedRow(w, backend); } finally { await backend.dispose(); }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
result.loadEnd = load();
console.log(JSON.stringify(result, null, 2));
if (!values['no-save']) console.error(`[scale] wrote ${writeNamedResults('scale', result)}`);
