import { describe, expect, it } from 'vitest';
import { collectGarbage, collections, dropped, PACE_BYTES } from './garbage.js';

// A 64 MiB array made and dropped inside a function, so no frame or interpreter register of the
// test keeps it. Only a WeakRef to it survives.
function droppedArray(): WeakRef<Float32Array> {
  return new WeakRef(new Float32Array(16 * 2 ** 20));
}

const nextJob = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('paced garbage collection', () => {
  it('collectGarbage reaches V8\'s collector: a dropped 64 MiB array is freed at once', async () => {
    const ref = droppedArray();
    // A WeakRef keeps its target alive until the job that made it ends (ECMA-262 KeepDuringJob).
    await nextJob();
    expect(collectGarbage()).toBe(true);
    expect(ref.deref()).toBeUndefined();
  });

  it('dropped collects once PACE_BYTES have built up, and not before', () => {
    collectGarbage();
    const start = collections();
    dropped(PACE_BYTES / 2);
    expect(collections()).toBe(start);
    dropped(PACE_BYTES / 2 - 1);
    expect(collections()).toBe(start);
    dropped(1);
    expect(collections()).toBe(start + 1);
    dropped(PACE_BYTES - 1); // the count starts again after a collection
    expect(collections()).toBe(start + 1);
  });
});
