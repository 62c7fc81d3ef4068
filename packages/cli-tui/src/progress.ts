// Renders progress callbacks from core ({stage, done, total}) on stderr: a redrawn bar with ETA
// on a terminal, plain periodic lines otherwise (logs, CI), nothing with --quiet. Library code
// never prints; this module is where its progress becomes text.

import type { OutStream } from './io.js';

/** Structurally the same as core's ProgressEvent. */
export interface ProgressEvent {
  readonly stage: string;
  readonly done: number;
  readonly total: number;
  /** The item just finished (a submodule, an edge pair). */
  readonly detail?: string;
}

export interface ProgressReporter {
  /** Pass this as `onProgress` to core. */
  readonly onProgress: (event: ProgressEvent) => void;
  /** Ends an unfinished bar line (call when the work ends, also on failure). */
  finish(): void;
}

export interface ProgressOptions {
  readonly stream: OutStream;
  readonly quiet?: boolean;
  /** Milliseconds clock (tests inject one). */
  readonly now?: () => number;
  /** Non-TTY: at most one line per interval (besides the first and the last of a stage). */
  readonly intervalMs?: number;
  /** TTY: minimum time between redraws. */
  readonly redrawMs?: number;
}

const BAR = 24;

interface StageState { event: ProgressEvent; start: number; lastPrint: number }

export function createProgress(options: ProgressOptions): ProgressReporter {
  if (options.quiet) return { onProgress: () => undefined, finish: () => undefined };
  const { stream } = options;
  const now = options.now ?? Date.now;
  const interval = options.intervalMs ?? 2000;
  const redraw = options.redrawMs ?? 100;
  // Stages nest (submodules inside batches, rows inside submodules): each keeps its own clock,
  // restarted when its count goes back down (the next batch's submodules).
  const stages = new Map<string, StageState>();
  let drawn = 0; // TTY: lines of the block on screen
  let lastDraw = -Infinity;
  let lastLine = -Infinity; // non-TTY: time of the last printed line
  // A stage first reported with done > 0 began before that report: a new stage when the work
  // began (the reporter's creation), a restarted inner stage at the previous event.
  const created = now();
  let lastEvent = created;

  const update = (e: ProgressEvent, t: number): { state: StageState; fresh: boolean } => {
    const prev = stages.get(e.stage);
    const fresh = !prev || e.done < prev.event.done;
    const state = fresh ? { event: e, start: e.done <= 0 ? t : prev ? lastEvent : created, lastPrint: prev?.lastPrint ?? -Infinity } : { ...prev!, event: e };
    stages.set(e.stage, state);
    lastEvent = t;
    return { state, fresh: !prev };
  };

  const draw = (t: number): void => {
    const lines = [...stages.values()].map((st) => barLine(st.event, t - st.start, stream.columns || 80));
    // Back to the first line of the block, then rewrite every line in place.
    let out = drawn > 1 ? `\x1b[${drawn - 1}A` : '';
    out += lines.map((l) => `\r\x1b[2K${l}`).join('\n');
    stream.write(out);
    drawn = lines.length;
    lastDraw = t;
  };

  const onProgress = (e: ProgressEvent): void => {
    const t = now();
    const { state, fresh } = update(e, t);
    const complete = e.total > 0 && e.done >= e.total;
    if (stream.isTTY) {
      if (fresh || complete || t - lastDraw >= redraw) draw(t);
      return;
    }
    // Logs: the first line of each stage, then one line per interval; a completed stage gets its
    // final line only if it ran long enough to matter (short inner stages would flood the log).
    const longStage = t - state.start >= interval;
    if (fresh || t - lastLine >= interval || (complete && longStage && state.lastPrint < t)) {
      stream.write(`${plainLine(e, t - state.start)}\n`);
      lastLine = t;
      state.lastPrint = t;
    }
  };
  return {
    onProgress,
    finish: () => {
      if (drawn > 0) stream.write('\n');
      drawn = 0;
      stages.clear();
    },
  };
}

export function barLine(e: ProgressEvent, elapsedMs: number, columns: number): string {
  const frac = e.total > 0 ? Math.min(1, Math.max(0, e.done / e.total)) : 0;
  const filled = Math.round(frac * BAR);
  const bar = `[${'█'.repeat(filled)}${'░'.repeat(BAR - filled)}]`;
  const tail = ` ${e.done}/${e.total} ${pct(frac)} ${timing(e, elapsedMs)}`;
  const room = Math.max(8, columns - 1 - bar.length - tail.length - 1);
  const full = e.detail ? `${e.stage} (${e.detail})` : e.stage;
  const label = full.length > room ? `${full.slice(0, room - 1)}…` : full;
  return `${label} ${bar}${tail}`;
}

export function plainLine(e: ProgressEvent, elapsedMs: number): string {
  const frac = e.total > 0 ? Math.min(1, e.done / e.total) : 0;
  return `${e.stage}: ${e.done}/${e.total} (${pct(frac)}) ${timing(e, elapsedMs)}${e.detail ? ` — ${e.detail}` : ''}`;
}

export function pct(frac: number): string {
  return `${Math.floor(frac * 100)}%`;
}

/** `ETA m:ss` while running, `in m:ss` when done. */
export function timing(e: ProgressEvent, elapsedMs: number): string {
  if (e.total > 0 && e.done >= e.total) return `in ${duration(elapsedMs)}`;
  if (e.done <= 0 || elapsedMs <= 0) return 'ETA --:--';
  return `ETA ${duration((elapsedMs / e.done) * (e.total - e.done))}`;
}

/** m:ss, or h:mm:ss from an hour on. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
