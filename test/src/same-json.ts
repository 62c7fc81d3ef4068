// Comparing two JSON documents written by different runs of the same computation.
import { expect } from 'vitest';

/** Every number in two JSON documents agrees to `rel` relative (1e-6); everything else is equal. */
export function sameJson(a: unknown, b: unknown, path = '', rel = 1e-6): void {
  if (typeof b === 'number' && typeof a === 'number') {
    expect(Math.abs(a - b), `${path}: ${a} vs ${b}`).toBeLessThanOrEqual(rel * Math.abs(b) + 1e-9);
  } else if (Array.isArray(b)) {
    expect(Array.isArray(a) && a.length, `${path} length`).toBe(b.length);
    b.forEach((v, i) => sameJson((a as unknown[])[i], v, `${path}[${i}]`, rel));
  } else if (typeof b === 'object' && b !== null) {
    expect(Object.keys(a as object).sort(), path).toEqual(Object.keys(b).sort());
    for (const k of Object.keys(b)) sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`, rel);
  } else {
    expect(a, path).toEqual(b);
  }
}
