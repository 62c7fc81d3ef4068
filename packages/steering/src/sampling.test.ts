import { describe, expect, it } from 'vitest';
import { InputError } from '@sfc/core';
import { argmax, checkSampling, chooseToken, rowSeed, seededRandom } from './sampling.js';

describe('sampling', () => {
  it('the PRNG is deterministic per seed and uniform enough', () => {
    const a = seededRandom(7), b = seededRandom(7), c = seededRandom(8);
    const xa = Array.from({ length: 5 }, a), xb = Array.from({ length: 5 }, b), xc = Array.from({ length: 5 }, c);
    expect(xa).toEqual(xb);
    expect(xa).not.toEqual(xc);
    const r = seededRandom(1);
    const bins = new Array(10).fill(0);
    for (let i = 0; i < 20000; i++) { const u = r(); expect(u >= 0 && u < 1).toBe(true); bins[Math.floor(u * 10)]++; }
    for (const n of bins) expect(Math.abs(n - 2000)).toBeLessThan(200);
  });

  it('greedy is the argmax, lowest id on ties', () => {
    expect(argmax([0, 3, 3, 1])).toBe(1);
    expect(chooseToken([5, -1, 9, 9], { kind: 'greedy' }, () => { throw new Error('greedy draws nothing'); })).toBe(2);
  });

  it('sampling follows softmax(logits / T) and top-p keeps the smallest nucleus', () => {
    const logits = [Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)];
    const count = (topP: number | undefined, temperature = 1) => {
      const r = seededRandom(3);
      const n = [0, 0, 0, 0];
      for (let i = 0; i < 20000; i++) n[chooseToken(logits, { kind: 'sample', temperature, topP, seed: 3 }, r)]!++;
      return n.map((x) => x / 20000);
    };
    const full = count(undefined);
    [0.5, 0.3, 0.15, 0.05].forEach((p, i) => expect(full[i]).toBeCloseTo(p, 1));
    const nucleus = count(0.75); // 0.5 + 0.3 ≥ 0.75: two tokens, renormalised to 0.625 / 0.375
    expect(nucleus[2]).toBe(0);
    expect(nucleus[3]).toBe(0);
    expect(nucleus[0]).toBeCloseTo(0.625, 1);
    expect(count(0.5)).toEqual([1, 0, 0, 0]);
    const cold = count(undefined, 0.05);
    expect(cold[0]).toBeGreaterThan(0.99);
  });

  it('rejects bad settings', () => {
    expect(() => checkSampling({ kind: 'sample', temperature: 0, seed: 1 })).toThrow(InputError);
    expect(() => checkSampling({ kind: 'sample', temperature: 1, topP: 0, seed: 1 })).toThrow(InputError);
    expect(() => checkSampling({ kind: 'sample', temperature: 1, topP: 1.5, seed: 1 })).toThrow(InputError);
    expect(() => checkSampling({ kind: 'sample', temperature: 1, seed: 1.5 })).toThrow(InputError);
    expect(() => checkSampling({ kind: 'sample', temperature: 0.7, topP: 0.9, seed: 0 })).not.toThrow();
  });

  it('row seeds: prompt 0 keeps the seed, every other prompt its own stream', () => {
    for (const seed of [0, 7, 2 ** 40 + 3]) {
      expect(rowSeed(seed, 0)).toBe(seed);
      const seeds = Array.from({ length: 64 }, (_, i) => rowSeed(seed, i));
      expect(seeds.every(Number.isSafeInteger)).toBe(true);
      const firsts = seeds.map((s) => Array.from({ length: 3 }, seededRandom(s)).join());
      expect(new Set(firsts).size, 'distinct streams').toBe(64);
    }
    expect(rowSeed(7, 5)).toBe(rowSeed(7, 5));
    expect(rowSeed(7, 5)).not.toBe(rowSeed(8, 5));
    expect(() => rowSeed(7, -1)).toThrow(InputError);
  });
});
