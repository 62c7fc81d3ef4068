// fixtures/small-a ships the same SAEs as dictionary_learning ae.pt files (read by the safe
// unpickler) and as SAELens safetensors: both must load to the same dictionaries, and both must
// reproduce the fixture's PyTorch features and error norms on example 0's activations.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listSubmodules, type Dictionary } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { loadDictionarySet } from '@sfc/dictionaries';
import { SMALL_A } from './paths.js';

const SUBS = listSubmodules(2, 'gpt_neox');
const model = JSON.parse(readFileSync(join(SMALL_A, 'ref', 'model.json'), 'utf8')) as {
  example0_activations: Record<string, { x: number[][]; features: [number, number, number][]; error_norm: number[] }>;
};

describe('fixtures/small-a dictionaries in both layouts', () => {
  const ops = referenceOps();
  let dl: Map<string, Dictionary>;
  let sl: Map<string, Dictionary>;

  it('loads both sets with the same submodules and architectures', async () => {
    dl = await loadDictionarySet(join(SMALL_A, 'dictionaries'), SUBS, { ops, dIn: 32 });
    sl = await loadDictionarySet(join(SMALL_A, 'saelens'), SUBS, { ops, dIn: 32 });
    expect([...dl.keys()]).toEqual(SUBS.map((s) => s.name));
    expect([...sl.keys()]).toEqual([...dl.keys()]);
    for (const [name, d] of dl) {
      expect(d.format).toBe('dictionary-learning');
      expect(sl.get(name)!.format).toBe('saelens');
      expect([d.architecture, d.dIn, d.dSae]).toEqual(['relu', 32, 128]);
    }
  });

  for (const sub of SUBS.map((s) => s.name)) {
    it(`${sub}: identical encode / decode / gradients, and the PyTorch features and error norms`, async () => {
      const ref = model.example0_activations[sub]!;
      const x = ops.tensor(ref.x.flat(), [ref.x.length, 32]);
      const [a, b] = [dl.get(sub)!, sl.get(sub)!];
      const fa = await a.encode(x).data(), fb = await b.encode(x).data();
      const close = (p: ArrayLike<number>, q: ArrayLike<number>, tol: number) => {
        let worst = 0;
        for (let i = 0; i < p.length; i++) worst = Math.max(worst, Math.abs(p[i]! - q[i]!) / Math.max(1, Math.abs(q[i]!)));
        return worst <= tol;
      };
      expect(close(fa, fb, 1e-6)).toBe(true);
      expect(close(await a.decoderRows().data(), await b.decoderRows().data(), 1e-6)).toBe(true);
      // features are float32 (data() may also return Int32Array, for integer tensors): say so, and narrow the type
      if (!(fa instanceof Float32Array)) throw new Error(`encode() returned ${fa.constructor.name}, expected Float32Array features`);
      const f = ops.tensor(fa, [ref.x.length, 128]);
      expect(close(await a.decode(f).data(), await b.decode(f).data(), 1e-6)).toBe(true);
      const ids = Int32Array.from({ length: ref.x.length }, (_, s) => ref.features.find((e) => e[0] === s)?.[1] ?? 0);
      expect(close(await a.featureGradients(x, ids).data(), await b.featureGradients(x, ids).data(), 1e-6)).toBe(true);
      // the fixture's PyTorch reference (features listed sparsely as [s, j, f])
      const dense = new Float64Array(ref.x.length * 128);
      for (const [s, j, v] of ref.features) dense[s * 128 + j] = v;
      expect(close(fa, dense, 1e-4)).toBe(true);
      const xhat = await a.decode(f).data();
      ref.error_norm.forEach((n, s) => {
        let e = 0;
        for (let i = 0; i < 32; i++) e += (ref.x[s]![i]! - xhat[s * 32 + i]!) ** 2;
        expect(Math.sqrt(e)).toBeCloseTo(n, 4);
      });
    });
  }
});
