import { describe, expect, it } from 'vitest';
import { CapabilityError } from '../errors.js';
import { availableMemory, checkMemory, formatBytes } from './memory-budget.js';

describe('checkMemory', () => {
  it('passes when the needs fit', () => {
    expect(() => checkMemory([{ what: 'a', bytes: 10 }, { what: 'b', bytes: 20 }], { available: 30, action: 'loading', hint: 'h' })).not.toThrow();
  });

  it('fails before any work with the bytes needed, the largest items and the hint', () => {
    const needs = Array.from({ length: 6 }, (_, i) => ({ what: `SAE resid_${i}`, bytes: (i + 1) * 2 ** 30 }));
    let err: unknown;
    try { checkMemory(needs, { available: 8 * 2 ** 30, action: 'loading 6 SAEs', hint: 'pass --submodules resid_0,resid_1' }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(CapabilityError);
    const e = err as CapabilityError;
    expect(e.message).toMatch(/^loading 6 SAEs needs 21\.0 GiB \(22548578304 bytes\) but only 8\.00 GiB is available/);
    expect(e.message).toMatch(/largest: SAE resid_5 6\.00 GiB, SAE resid_4 5\.00 GiB, SAE resid_3 4\.00 GiB, SAE resid_2 3\.00 GiB, … 6 in all/);
    expect(e.hint).toBe('pass --submodules resid_0,resid_1');
  });

  it('reports a positive amount of available memory; formats bytes', () => {
    expect(availableMemory()).toBeGreaterThan(0);
    expect(formatBytes(5 * 2 ** 20)).toBe('5.0 MiB');
    expect(formatBytes(1.5 * 2 ** 30)).toBe('1.50 GiB');
  });
});
