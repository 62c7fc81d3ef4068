import { describe, expect, it } from 'vitest';
import type { Dictionary } from '../dictionary.js';
import { referenceOps } from '../testing/reference-ops.js';
import { effectOfOutputDelta } from './sparse-act.js';

const ops = referenceOps();
const [N, D, F] = [3, 4, 10];

/** A linear-decoder stand-in: only decoderRows is read by effectOfOutputDelta. */
function dict(wDec: Float32Array): Dictionary {
  const rows = ops.tensor(wDec, [F, D]);
  const no = () => { throw new Error('not used'); };
  return { architecture: 'relu', dIn: D, dSae: F, encode: no, decode: no, decoderRows: () => rows, decoderBias: no, encodeVjp: no, featureGradients: no, dispose: () => undefined };
}

function rand(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => { s = (s * 1103515245 + 12345) % 2 ** 31; return s / 2 ** 30 - 1; });
}

/** act[n, j] = Δf[n, j] · Σ_d g[n, d] W_dec[j, d]; res[n] = Σ_d g ⊙ Δx − Σ_j act (float64). */
function expected(g: Float32Array, w: Float32Array, df: Float32Array, dx: Float32Array): { act: number[]; res: number[] } {
  const act: number[] = [];
  const res: number[] = [];
  for (let n = 0; n < N; n++) {
    let r = 0;
    for (let d = 0; d < D; d++) r += g[n * D + d]! * dx[n * D + d]!;
    for (let j = 0; j < F; j++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += g[n * D + d]! * w[j * D + d]!;
      const a = dot * df[n * F + j]!;
      act.push(a);
      r -= a;
    }
    res.push(r);
  }
  return { act, res };
}

describe('effectOfOutputDelta', () => {
  const g = rand(N * D, 1);
  const w = rand(F * D, 2);
  const dx = rand(N * D, 3);
  const cases: [string, (n: number, j: number) => boolean][] = [
    ['a few non-zero columns (gathered decoder rows)', (n, j) => (j === 2 && n !== 1) || (j === 7 && n === 1)],
    ['most columns non-zero (whole decoder)', (_n, j) => j !== 4],
    ['no non-zero column', () => false],
  ];
  for (const [name, nonZero] of cases) {
    it(`matches the dense formula: ${name}`, async () => {
      const dfv = rand(N * F, 4).map((v, i) => (nonZero(Math.floor(i / F), i % F) ? v : 0));
      const e = expected(g, w, dfv, dx);
      const got = await effectOfOutputDelta(ops, ops.tensor(g, [N, D]), dict(w), ops.tensor(dfv, [N, F]), ops.tensor(dx, [N, D]));
      expect(got.act.shape).toEqual([N, F]);
      expect(got.res.shape).toEqual([N]);
      const act = await got.act.data();
      const res = await got.res.data();
      e.act.forEach((v, i) => expect(act[i]).toBeCloseTo(v, 5));
      e.res.forEach((v, i) => expect(res[i]).toBeCloseTo(v, 5));
    });
  }
  it('keeps leading axes: [B, S, F] in, [B, S, F] out', async () => {
    const dfv = rand(N * F, 5).map((v, i) => (i % F === 3 ? v : 0));
    const got = await effectOfOutputDelta(ops, ops.tensor(g, [1, N, D]), dict(w), ops.tensor(dfv, [1, N, F]), ops.tensor(dx, [1, N, D]));
    expect(got.act.shape).toEqual([1, N, F]);
    expect(got.res.shape).toEqual([1, N]);
    const e = expected(g, w, dfv, dx);
    const act = await got.act.data();
    e.act.forEach((v, i) => expect(act[i]).toBeCloseTo(v, 5));
  });
});
