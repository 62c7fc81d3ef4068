// Renders progress callbacks from core ({stage, done, total}) on stderr: a redrawn bar with ETA
// on a terminal, plain periodic lines otherwise (logs, CI), nothing with --quiet. Library code
// never prints; this module is where its progress becomes text.
//
// Each stage has its own clock: from its `done: 0` event (core sends one when a stage begins),
// so a finished stage says how long it took, not how long the run has taken. The ETA leaves out
// the first unit (warm-up: kernel compilation, caches) and appears once two units are done. In
// logs, every line names the stages around it, outermost first (`batches: 8/128 … › edges: 3/15`),
// so nested stages read in order.

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

interface StageState {
  event: ProgressEvent;
  start: number;
  lastPrint: number;
  /** False when the start is a guess that may be wrong (see update()): no duration is shown. */
  known: boolean;
  /** Time of its latest event (a finished stage's clock stops there). */
  lastAt: number;
  /** When the stage was first seen, and the start of its first run. */
  firstSeen: number;
  firstStart: number;
  /** When the first unit of this run of the stage was done, and the count then (the ETA's origin). */
  anchor?: { t: number; done: number };
}

const isComplete = (e: ProgressEvent) => e.total > 0 && e.done >= e.total;

export function createProgress(options: ProgressOptions): ProgressReporter {
  if (options.quiet) return { onProgress: () => undefined, finish: () => undefined };
  const { stream } = options;
  const now = options.now ?? Date.now;
  const interval = options.intervalMs ?? 2000;
  const redraw = options.redrawMs ?? 100;
  // Stages nest (submodules inside batches, rows inside submodules) or follow each other (edges
  // after submodules, steering after ablation): each keeps its own clock. A stage reported from
  // done 0 starts then. One first reported at done > 0 began at the previous event (the stage
  // before it ended then), or when the work began if it is the first; a stage that restarts (its
  // count goes back down: the next batch's submodules) began at the previous event. A stage seen
  // first after its inner stages (batches, reported once a batch is done) is found out when they
  // restart, and its clock moved back to when they first began.
  const stages = new Map<string, StageState>();
  const order: string[] = []; // first-seen order: the terminal block's lines do not move
  let drawn = 0; // TTY: lines of the block on screen
  let lastDraw = -Infinity;
  let lastLine = -Infinity; // non-TTY: time of the last printed line
  const created = now();
  let lastEvent: number | undefined;

  const update = (e: ProgressEvent, t: number): { state: StageState; fresh: boolean } => {
    const prev = stages.get(e.stage);
    let state: StageState;
    if (!prev) {
      order.push(e.stage);
      const start = e.done <= 0 ? t : lastEvent ?? created;
      // Complete at first sight after other stages: an outer stage of one unit, or a stage that
      // followed them? Unknown, so no duration is claimed.
      const known = e.done <= 0 || lastEvent === undefined || !isComplete(e);
      state = { event: e, start, known, lastAt: t, firstSeen: t, firstStart: start, lastPrint: -Infinity };
    } else if (e.done < prev.event.done) {
      state = { ...prev, event: e, start: e.done <= 0 ? t : lastEvent ?? created, known: true, anchor: undefined };
      for (const o of stages.values()) {
        // Still running, first seen after this stage first began: it is an outer stage.
        if (o !== prev && !isComplete(o.event) && o.firstSeen > prev.firstStart && o.start > prev.firstStart) {
          o.start = prev.firstStart;
          o.known = true;
        }
      }
    } else {
      state = { ...prev, event: e };
    }
    state.lastAt = t;
    if (e.done > 0 && !state.anchor) state.anchor = { t, done: e.done };
    stages.set(e.stage, state);
    lastEvent = t;
    return { state, fresh: !prev };
  };

  const draw = (t: number): void => {
    const lines = order.map((k) => stages.get(k)!).map((st) => barLine(st.event, elapsed(st, t), stream.columns || 80, eta(st, t)));
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
    const complete = isComplete(e);
    if (stream.isTTY) {
      if (fresh || complete || t - lastDraw >= redraw) draw(t);
      return;
    }
    // Logs: the first line of each stage, then one line per interval; a completed stage gets its
    // final line only if it ran long enough to matter (short inner stages would flood the log).
    const longStage = t - state.start >= interval;
    if (fresh || t - lastLine >= interval || (complete && longStage && state.lastPrint < t)) {
      stream.write(`${contextLine(state, t)}\n`);
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
      order.length = 0;
    },
  };

  /** The stages still running, outermost (earliest start) first, ending with `current`. */
  function contextLine(current: StageState, t: number): string {
    const around = [...stages.values()]
      .filter((st) => st !== current && st.start <= current.start && !isComplete(st.event))
      .sort((a, b) => a.start - b.start);
    return [...around, current].map((st) => plainLine(st === current ? st.event : { ...st.event, detail: undefined }, elapsed(st, t), eta(st, t))).join(' › ');
  }
}

const elapsed = (st: StageState, t: number): number | undefined =>
  (st.known ? (isComplete(st.event) ? st.lastAt : t) - st.start : undefined);

/** Milliseconds left, from the units after the first; null until two units are done. */
function eta(st: StageState, t: number): number | null {
  const { event: e, anchor } = st;
  if (!anchor || e.done <= anchor.done) return null;
  return ((t - anchor.t) / (e.done - anchor.done)) * (e.total - e.done);
}

/** `etaMs`: the reporter's estimate (null: not yet); without it, the average rate since the start. */
export function barLine(e: ProgressEvent, elapsedMs: number | undefined, columns: number, etaMs?: number | null): string {
  const frac = e.total > 0 ? Math.min(1, Math.max(0, e.done / e.total)) : 0;
  const filled = Math.round(frac * BAR);
  const bar = `[${'█'.repeat(filled)}${'░'.repeat(BAR - filled)}]`;
  const tail = ` ${e.done}/${e.total} ${pct(frac)} ${timing(e, elapsedMs, etaMs)}`;
  const room = Math.max(8, columns - 1 - bar.length - tail.length - 1);
  const full = e.detail ? `${e.stage} (${e.detail})` : e.stage;
  const label = full.length > room ? `${full.slice(0, room - 1)}…` : full;
  return `${label} ${bar}${tail}`;
}

export function plainLine(e: ProgressEvent, elapsedMs: number | undefined, etaMs?: number | null): string {
  const frac = e.total > 0 ? Math.min(1, e.done / e.total) : 0;
  return `${e.stage}: ${e.done}/${e.total} (${pct(frac)}) ${timing(e, elapsedMs, etaMs)}${e.detail ? ` — ${e.detail}` : ''}`;
}

export function pct(frac: number): string {
  return `${Math.floor(frac * 100)}%`;
}

/** `ETA m:ss` while running, `in m:ss` when done. */
export function timing(e: ProgressEvent, elapsedMs: number | undefined, etaMs?: number | null): string {
  if (isComplete(e)) return elapsedMs === undefined ? 'done' : `in ${duration(elapsedMs)}`;
  if (etaMs === null) return 'ETA --:--';
  if (etaMs !== undefined) return `ETA ${duration(etaMs)}`;
  if (e.done <= 0 || elapsedMs === undefined || elapsedMs <= 0) return 'ETA --:--';
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
