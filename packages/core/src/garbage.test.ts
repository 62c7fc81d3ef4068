import { describe, expect, it } from 'vitest';
import { collectGarbage, collections, dropped, PACE_BYTES } from './garbage.js';

const arrayBuffers = () => process.memoryUsage().arrayBuffers;

describe('paced garbage collection', () => {
  it('collectGarbage reaches V8\'s collector: a dropped 64 MiB array is freed at once', () => {
    let big: Float32Array | undefined = new Float32Array(16 * 2 ** 20).fill(1);
    const held = arrayBuffers();
    expect(big.length).toBe(16 * 2 ** 20);
    big = undefined;
    expect(collectGarbage()).toBe(true);
    expect(held - arrayBuffers()).toBeGreaterThanOrEqual(60 * 2 ** 20);
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
