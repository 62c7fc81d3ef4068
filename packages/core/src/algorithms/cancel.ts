// Cooperative cancellation of long runs. Entry points (attribute, discover, evaluate) take an
// optional AbortSignal and turn it into one CancelCheck that every loop awaits between units of
// work (a batch, a chunk of IG steps, a submodule, an edge pair or chunk, an exact-patch chunk,
// an ablation run) — never inside a tensor computation. The check throws CancelledError, and the
// tensor scopes the run is in dispose everything it made as the error unwinds them.
//
// Why the check is async: a backend whose ops and reads settle as microtasks (tfjs on the CPU)
// never lets the event loop turn during a run, so a SIGINT handler or a TUI key press — the very
// things that abort the signal — would only run once the work is over. With a signal, the check
// gives the event loop a turn every YIELD_INTERVAL_MS; without one it does nothing.

import { CancelledError } from '../errors.js';

/** Awaited between units of work; rejects with CancelledError once the run's signal has aborted. */
export type CancelCheck = () => Promise<void>;

/** Longest stretch of work without a turn of the event loop while a signal is attached. */
export const YIELD_INTERVAL_MS = 25;

const NEVER: CancelCheck = async () => undefined;

const nextTurn = (): Promise<void> => new Promise((resolve) => {
  if (typeof setImmediate === 'function') setImmediate(resolve);
  else setTimeout(resolve, 0);
});

/**
 * The check for one run: like `signal.throwIfAborted()`, but throws CancelledError naming
 * `operation` (the abort reason becomes its cause). One property read and one clock read per
 * call, plus a turn of the event loop at most every YIELD_INTERVAL_MS; a no-op without a signal.
 */
export function cancelCheck(signal: AbortSignal | undefined, operation: string): CancelCheck {
  if (!signal) return NEVER;
  const check = () => {
    if (signal.aborted) throw new CancelledError(operation, { cause: signal.reason });
  };
  let lastTurn = performance.now();
  return async () => {
    check();
    if (performance.now() - lastTurn < YIELD_INTERVAL_MS) return;
    await nextTurn();
    lastTurn = performance.now();
    check();
  };
}
