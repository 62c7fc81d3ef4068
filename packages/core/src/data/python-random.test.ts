import { describe, expect, it } from 'vitest';
import { PythonRandom } from './python-random.js';

// Expected values printed by CPython 3 (`random.Random(seed)`), the implementation being matched.
describe('PythonRandom (CPython random.Random)', () => {
  it('matches getrandbits(32) after int seeding', () => {
    const r = new PythonRandom(12);
    expect([0, 1, 2].map(() => Number(r.getrandbits(32)))).toEqual([2038265566, 1155324522, 2823822892]);
    const z = new PythonRandom(0);
    expect([0, 1].map(() => Number(z.getrandbits(32)))).toEqual([3626764237, 1654615998]);
  });

  it('seeds multi-word ints and negative ints like CPython', () => {
    const r = new PythonRandom(2 ** 40 + 5);
    expect([Number(r.getrandbits(32)), Number(r.getrandbits(32))]).toEqual([2166296868, 2220160828]);
    expect(r.getrandbits(70)).toBe(1100602817210008945321n);
    expect(r.random()).toBe(0.027427945516699803);
    const n = new PythonRandom(-7);
    expect(Number(n.getrandbits(5))).toBe(10);
    expect(n.randbelow(10 ** 12)).toBe(167279807972);
  });

  it('shuffles like random.Random(seed).shuffle', () => {
    expect(new PythonRandom(3).shuffle([...Array(10).keys()])).toEqual([1, 5, 6, 0, 9, 4, 7, 2, 8, 3]);
    // The check value from the issue: a 480-line file shuffled with seed 12.
    const idx = new PythonRandom(12).shuffle([...Array(480).keys()]);
    expect(idx.slice(0, 8)).toEqual([315, 80, 88, 388, 438, 309, 324, 399]);
    expect([...idx].sort((a, b) => a - b)).toEqual([...Array(480).keys()]);
  });

  it('rejects non-integer seeds', () => {
    expect(() => new PythonRandom(1.5)).toThrow(/integer/);
  });
});
