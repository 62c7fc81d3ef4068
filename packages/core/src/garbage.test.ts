import { describe, expect, it } from 'vitest';
import { collectGarbage, dropped, PACE_BYTES } from './garbage.js';

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

  it('dropped collects once PACE_BYTES have built up', () => {
    collectGarbage();
    let big: Float32Array | undefined = new Float32Array(PACE_BYTES / 8).fill(1);
    const n = big.byteLength;
    big = undefined;
    const before = arrayBuffers();
    dropped(n); // half the pace
    dropped(PACE_BYTES);
    expect(before - arrayBuffers()).toBeGreaterThanOrEqual(n);
  });
});
