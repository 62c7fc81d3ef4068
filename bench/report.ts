// The benchmark's outputs: the printed table (median with min–max per stage and side, ratios
// to PyTorch next to the issue's targets, peak RSS), the cross-check of values every side
// computes, and the results file bench/results/<timestamp>.json (written atomically).

import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STAGE_LABELS, summarize, type SideResult, type StageId } from './measure.js';
import { FAST_RUNS, FAST_SECONDS, RESULTS_DIR } from './scales.js';
import type { WorkloadManifest } from './workload.js';

export const RESULTS_SCHEMA = 'sfc.bench/v1';

/** Issue 9's targets for sfc / PyTorch on the same machine. */
export const TARGETS: Partial<Record<StageId, number>> = {
  'forward': 1.0, 'sae-forward': 1.0, 'attrib': 0.5, 'ig': 0.5, 'edges': 0.1,
};

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
  /** 1-minute load average when the run started and ended (other processes on the cores). */
  readonly loadStart: number;
  loadEnd?: number;
  readonly freeMemoryGiB: number;
}

export function machine(): Machine {
  return {
    cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGiB: totalmem() / 2 ** 30, node: process.version,
    platform: `${process.platform} ${process.arch}`, loadStart: loadavg()[0]!, freeMemoryGiB: freemem() / 2 ** 30,
  };
}

export interface BenchResults {
  readonly schema: typeof RESULTS_SCHEMA;
  readonly created: string;
  readonly command: string;
  readonly machine: Machine;
  readonly workload: Pick<WorkloadManifest, 'scale' | 'saes' | 'calibration' | 'model'>;
  readonly options: { readonly examples: number; readonly runs: number; readonly pytorchRuns?: number; readonly stages: readonly StageId[]; readonly pytorchStages?: readonly StageId[] };
  readonly sides: readonly SideResult[];
}

function fmtSeconds(s: number): string {
  return s >= 100 ? s.toFixed(0) : s >= 10 ? s.toFixed(1) : s >= 1 ? s.toFixed(2) : s.toFixed(3);
}

type Metric = 'seconds' | 'cpuSeconds';

function cell(side: SideResult, id: StageId, metric: Metric): string {
  if (!side.available) return 'n/a';
  const r = side.stages[id];
  if (!r) return '—';
  const xs = r[metric] ?? [];
  const s = summarize(xs);
  if (!s) return r.error ? 'FAILED' : '—';
  const range = xs.length > 1 ? ` (${fmtSeconds(s.min)}–${fmtSeconds(s.max)})` : '';
  return `${fmtSeconds(s.median)} s${range}${r.error ? ' +FAIL' : ''}`;
}

function median(side: SideResult | undefined, id: StageId, metric: Metric): number | undefined {
  return side?.available ? summarize(side.stages[id]?.[metric] ?? [])?.median : undefined;
}

function pad(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ')).join('\n');
}

/** One row per stage, a column per side, then sfc/PyTorch ratios of the medians with the targets. */
function stageRows(res: BenchResults, metric: Metric): string[][] {
  const sides = res.sides;
  const pt = sides.find((s) => s.name === 'pytorch' && s.available);
  const sfc = sides.filter((s) => s.name !== 'pytorch' && s.available);
  const title = metric === 'seconds' ? 'wall clock' : 'CPU time (all threads)';
  const rows = [[title, ...sides.map((s) => s.name), ...(pt ? sfc.map((s) => `${s.name}/pt`) : []), ...(pt ? ['target'] : [])]];
  for (const id of res.options.stages) {
    const row = [STAGE_LABELS[id], ...sides.map((s) => cell(s, id, metric))];
    if (pt) {
      const base = median(pt, id, metric);
      for (const s of sfc) {
        const m = median(s, id, metric);
        row.push(m !== undefined && base ? (m / base).toFixed(2) : '—');
      }
      row.push(TARGETS[id] !== undefined ? `≤ ${TARGETS[id]!.toFixed(1)}` : '—');
    }
    rows.push(row);
  }
  return rows;
}

export function formatTable(res: BenchResults): string {
  const sides = res.sides;
  const rows = stageRows(res, 'seconds');
  const mib = (v: number | undefined) => (v === undefined ? '—' : `${(v / 1024).toFixed(2)} GiB`);
  rows.push(['load model + SAEs', ...sides.map((s) => (s.available && s.loadSeconds !== undefined ? `${fmtSeconds(s.loadSeconds)} s` : 'n/a'))]);
  rows.push(['RSS after load', ...sides.map((s) => (s.available ? mib(s.loadedRssMiB) : 'n/a'))]);
  rows.push(['peak RSS, all stages, one process', ...sides.map((s) => (s.available ? mib(s.peakRssMiB) : 'n/a'))]);
  if (sides.some((s) => s.discoveryPeakRssMiB !== undefined)) {
    rows.push(['peak RSS, load + one discovery', ...sides.map((s) => (s.available ? mib(s.discoveryPeakRssMiB) : 'n/a'))]);
  }
  const { scale, saes } = res.workload;
  const lines = [
    `scale ${scale.name}: d ${scale.dModel}, ${scale.nLayers} layers, ${scale.nHeads} heads, MLP ${scale.dMlp}, vocab ${scale.vocabSize}; `
      + `${saes.submodules.length} SAEs × ${scale.dSae} features (${(saes.bytes / 2 ** 30).toFixed(2)} GiB, `
      + (res.workload.calibration.method === 'analytic' ? `L0 target ${saes.l0.mean.toFixed(0)}, thresholds set analytically); `
        : `L0 mean ${saes.l0.mean.toFixed(0)}, range ${saes.l0.min}–${saes.l0.max}); `)
      + `${res.options.examples} examples × 8 tokens; median (min–max) of ${res.options.runs} run(s)${res.options.pytorchRuns ? ` (PyTorch ${res.options.pytorchRuns})` : ''}, at least ${FAST_RUNS} for stages under ${FAST_SECONDS} s${res.options.pytorchStages ? `; PyTorch ran only ${res.options.pytorchStages.join(', ')}` : ''}`,
    `machine: ${res.machine.cpu}, ${res.machine.cores} cores, ${res.machine.memoryGiB.toFixed(0)} GiB, node ${res.machine.node}; `
      + `load average ${res.machine.loadStart.toFixed(1)} at start${res.machine.loadEnd !== undefined ? `, ${res.machine.loadEnd.toFixed(1)} at end` : ''}`,
    '',
    pad(rows),
    '',
    pad(stageRows(res, 'cpuSeconds')),
  ];
  for (const s of sides) {
    if (!s.available) lines.push(`${s.name}: not available (${s.reason})`);
    else if (s.reason) lines.push(`${s.name}: stopped: ${s.reason}`);
    for (const [id, r] of Object.entries(s.stages)) if (r?.error) lines.push(`${s.name} ${id}: ${r.error}`);
  }
  const notes = sides.flatMap((s) => {
    const e = s.stages.edges?.detail;
    return e ? [`${s.name} edges: ${e.downstreamNodes} downstream nodes, ${e.edgeEntries} edge entries over ${e.pairs} pairs`
      + (e.igSeconds !== undefined ? `; discovery ${fmtSeconds(Number(e.discoverSeconds))} s of which IG ${fmtSeconds(Number(e.igSeconds))} s` : '')] : [];
  });
  if (notes.length) lines.push('', ...notes);
  const agreement = formatChecks(res);
  if (agreement) lines.push('', agreement);
  return lines.join('\n');
}

/** Per stage and check value: each side's value and the largest relative difference between sides. */
export function formatChecks(res: BenchResults): string {
  const out: string[] = [];
  for (const id of res.options.stages) {
    const withCheck = res.sides.filter((s) => s.available && s.stages[id]?.check);
    if (withCheck.length < 2) continue;
    const keys = Object.keys(withCheck[0]!.stages[id]!.check!);
    const parts = keys.map((k) => {
      const vals = withCheck.map((s) => s.stages[id]!.check![k]!);
      const scale = Math.max(...vals.map(Math.abs), 1e-12);
      const diff = (Math.max(...vals) - Math.min(...vals)) / scale;
      return `${k} ${vals[0]!.toPrecision(6)} (rel. spread ${diff.toExponential(1)})`;
    });
    out.push(`${id}: ${parts.join(', ')}`);
  }
  return out.length ? `agreement between ${res.sides.filter((s) => s.available).map((s) => s.name).join(', ')}:\n  ${out.join('\n  ')}` : '';
}

/** Writes bench/results/<timestamp>.json through a temp file and a rename; returns the path. */
export function writeResults(res: BenchResults): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${res.created.replace(/[:.]/g, '-')}.json`);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(res, null, 2)}\n`);
  renameSync(tmp, path);
  return path;
}

/** Writes any result object to bench/results/<name>-<timestamp>.json (temp file + rename); returns the path. */
export function writeNamedResults(name: string, res: Record<string, unknown>): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(res, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
  return path;
}
