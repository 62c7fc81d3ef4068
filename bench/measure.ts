// Timing and memory measurement shared by the sfc worker, and the result records every side
// (sfc backends and the PyTorch baseline) reports: wall-clock seconds per run and the peak
// resident set size, per stage where the kernel lets us reset the high-water mark.

import { readFileSync, writeFileSync } from 'node:fs';

/** Every stage the harness knows, in run order. `edges-loop` is PyTorch only (the reference's per-node loop). */
export const STAGES = ['forward', 'sae-forward', 'attrib', 'ig', 'exact', 'edges', 'edges-loop', 'eval', 'dict-top'] as const;
export type StageId = (typeof STAGES)[number];
export const DEFAULT_STAGES: readonly StageId[] = ['forward', 'sae-forward', 'attrib', 'ig', 'exact', 'edges', 'eval'];

export const STAGE_LABELS: Readonly<Record<StageId, string>> = {
  'forward': 'forward, model only',
  'sae-forward': 'forward, all SAEs spliced',
  'attrib': 'node effects, attrib',
  'ig': 'node effects, ig (10 steps)',
  'exact': 'node effects, exact (feature subset)',
  'edges': 'edges (after ig), batched',
  'edges-loop': 'edges, one backward per node',
  'eval': 'evaluation (mean ablation)',
  'dict-top': 'top contexts, 50 features × 1 MB text',
};

export interface StageResult {
  /** Wall-clock seconds of each run. */
  readonly seconds: number[];
  /**
   * CPU seconds (user + system, all threads) of each run: less sensitive than wall time to other
   * processes on the cores; about threads × wall when the work keeps every thread busy.
   */
  readonly cpuSeconds?: number[];
  /** Peak RSS during each run (MiB); absent where the high-water mark cannot be reset. */
  readonly peakRssMiB?: number[];
  /** Values both implementations compute, to check they did the same work (see report.ts). */
  readonly check?: Record<string, number>;
  /** Extra facts (e.g. discovery's IG share, rows patched). */
  readonly detail?: Record<string, number | string>;
  readonly error?: string;
}

export interface SideResult {
  readonly name: string;
  readonly available: boolean;
  /** Why the side did not run (not installed, not exported, crashed). */
  readonly reason?: string;
  readonly describe?: string;
  readonly loadSeconds?: number;
  /** RSS right after the model and SAEs were loaded (MiB). */
  readonly loadedRssMiB?: number;
  /** Peak RSS of the whole process (MiB): loading, then every stage, every run. */
  readonly peakRssMiB?: number;
  /**
   * Peak RSS of a second, fresh process that loads and runs one discovery (the `edges` stage: IG
   * and edges), i.e. what one `sfc discover` needs (MiB).
   */
  readonly discoveryPeakRssMiB?: number;
  readonly stages: Partial<Record<StageId, StageResult>>;
}

export function parseStages(list: string): StageId[] {
  const ids = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const id of ids) {
    if (!(STAGES as readonly string[]).includes(id)) throw new Error(`unknown stage '${id}'; stages: ${STAGES.join(', ')}`);
  }
  return STAGES.filter((s) => ids.includes(s));
}

function statusKiB(field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export function rssMiB(): number {
  return (statusKiB('VmRSS') ?? process.memoryUsage().rss / 1024) / 1024;
}

/** Peak RSS since the process started or the last resetPeak() (MiB). */
export function peakMiB(): number {
  return (statusKiB('VmHWM') ?? process.resourceUsage().maxRSS) / 1024;
}

let resettable: boolean | undefined;

/** Resets the kernel's RSS high-water mark (Linux ≥ 4.0: write 5 to clear_refs); false when not possible. */
export function resetPeak(): boolean {
  if (resettable === false) return false;
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    resettable = true;
  } catch {
    resettable = false;
  }
  return resettable;
}

export interface Summary { readonly median: number; readonly min: number; readonly max: number }

export function summarize(xs: readonly number[]): Summary | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, min: s[0]!, max: s[s.length - 1]! };
}
