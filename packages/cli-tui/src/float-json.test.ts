import { describe, expect, it } from 'vitest';
import { float32Array, float32Rows, formatFloat32 } from './float-json.js';

describe('float32 JSON', () => {
  it('writes the shortest decimal that reads back as the same float32', () => {
    expect(formatFloat32(Math.fround(0.1))).toBe('0.1');
    expect(formatFloat32(1)).toBe('1');
    expect(formatFloat32(-0)).toBe('0');
    expect(formatFloat32(Math.fround(1e-30))).toBe('1e-30');
    expect(formatFloat32(NaN)).toBe('null');
    const rand = new Float32Array(20000);
    let s = 12345;
    for (let i = 0; i < rand.length; i++) { s = (s * 1103515245 + 12345) >>> 0; rand[i] = ((s / 2 ** 32) - 0.5) * 10 ** ((i % 12) - 6); }
    const back = JSON.parse(float32Array(rand)) as number[];
    for (let i = 0; i < rand.length; i++) expect(Math.fround(back[i]!)).toBe(rand[i]);
  });

  it('emits rows as valid JSON', () => {
    const data = new Float32Array([1, 2, 3, 4.5, 5, 6]);
    expect(JSON.parse([...float32Rows(data, 2, 3)].join(''))).toEqual([[1, 2, 3], [4.5, 5, 6]]);
    expect(JSON.parse([...float32Rows(data, 0, 3)].join(''))).toEqual([]);
  });
});
