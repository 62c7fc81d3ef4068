// Garbage collection paced by the bytes of large arrays sfc has dropped (docs/performance.md,
// "Gemma-2-2B scale", memory). V8 sizes its next collection by the heap it has, and it counts
// array buffers in that heap: with a model's weights held as gigabytes of typed arrays, it let
// the dropped outputs of onnxruntime runs (a few MiB each) pile up to 0.65 GiB during one
// integrated-gradients batch at Gemma-2-2B size before collecting them. A caller that drops large
// arrays tells `dropped(bytes)`; after every PACE_BYTES of them one full collection runs, which
// takes milliseconds at sfc's small JavaScript heap. The collector is V8's `gc`, reached the way
// Jest reaches it (the flag is set, read in a new context, and unset again); where that is not
// possible, nothing is collected early and V8 keeps its own pace.

import v8 from 'node:v8';
import vm from 'node:vm';

/** Bytes of dropped arrays between two collections. */
export const PACE_BYTES = 64 * 2 ** 20;

let collector: (() => void) | null | undefined;
let owed = 0;
let runs = 0;

/** Collections run so far by dropped() and collectGarbage() (for tests and diagnostics). */
export function collections(): number {
  return runs;
}

function gcFunction(): (() => void) | null {
  if (collector !== undefined) return collector;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    collector = typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    collector = null;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
  return collector;
}

/** Notes `bytes` of large arrays just made unreachable; collects when PACE_BYTES have built up. */
export function dropped(bytes: number): void {
  owed += bytes;
  if (owed < PACE_BYTES) return;
  collectGarbage();
}

/** Collects now (e.g. after a load that left its read buffers behind); false where V8's gc is out of reach. */
export function collectGarbage(): boolean {
  owed = 0;
  const gc = gcFunction();
  if (gc) { gc(); runs++; }
  return gc !== null;
}
