// Each op's decoder-space delta against a dense float64 recompute of the formula
// x' = x + Σ_i (f'_i − f_i)·W_dec[i] on the tfjs cpu backend with the small-a SAEs; position
// modes; composition order (within a feature and across submodules); the SAE error held fixed;
// error-node ops; typed errors for bad targets.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, NotFoundError, type Dictionary, type Model } from '@sfc/core';
import { ablate, add, clamp, parsePositions, patch, scale, type Intervention, type SteerOp } from './intervention.js';
import { Steering, type TokenBatch } from './steering.js';
import { denseEdit, hostDictionary, hostForward, pairBatch, relErr, smallAPairs, type Host } from '../test/dense.js';
import { loadSmallA, type SmallA } from '../test/small-a.js';

let s: SmallA;
let model: Model;
let dicts: Map<string, Dictionary>;
const pairs = smallAPairs();
let clean: TokenBatch;
let patchIds: TokenBatch;
let reference: TokenBatch;

beforeAll(async () => {
  s = await loadSmallA();
  model = s.model;
  dicts = s.dictionaries;
  const b = pairBatch(model, pairs.slice(0, 3));
  clean = { ids: b.clean, batch: b.size, seq: b.seq };
  patchIds = { ids: b.patch!, batch: b.size, seq: b.seq };
  const r = pairBatch(model, pairs.slice(10, 18));
  reference = { ids: r.clean, batch: r.size, seq: r.seq };
});
afterAll(async () => { await s.dispose(); });

const iv = (submodule: string, feature: number | 'err', op: SteerOp, positions = 'all'): Intervention =>
  ({ submodule, feature, op, positions: parsePositions(positions) });

/** Host activations of `sub` (unsteered), its features and decoder. */
async function state(sub: string, tokens: TokenBatch = clean) {
  const { values } = await hostForward(model, tokens.ids, tokens.batch, tokens.seq);
  const x = values.get(sub)!;
  const d = await hostDictionary(model, dicts.get(sub)!, x);
  return { x, ...d, F: dicts.get(sub)!.dSae };
}

async function steered(steering: Steering, promptLength = clean.seq, withPatch = steering.needsPatch) {
  const patchState = withPatch ? await steering.capturePatch(patchIds) : undefined;
  return hostForward(model, clean.ids, clean.batch, clean.seq, steering.edits({ promptLength, patch: patchState }));
}

/** Features of `sub` that fire somewhere in the batch, and some that never do. */
function pick(f: Float32Array, F: number, active: boolean, n: number): number[] {
  const on = new Set<number>();
  for (let j = 0; j < f.length; j++) if (f[j]! > 0) on.add(j % F);
  const out: number[] = [];
  for (let i = 0; i < F && out.length < n; i++) if (on.has(i) === active) out.push(i);
  return out;
}

describe('each op is exactly the decoder-space delta of its formula', () => {
  const sub = 'resid_0';
  const cases: [string, SteerOp, (fi: number, mu: number, fp: number) => number][] = [
    ['scale(3)', scale(3), (fi) => 3 * fi],
    ['scale(-2)', scale(-2), (fi) => -2 * fi],
    ['clamp(2)', clamp(2), () => 2],
    ['add(1.5)', add(1.5), (fi) => fi + 1.5],
    ['ablate(zero)', ablate('zero'), () => 0],
    ['ablate(mean)', ablate('mean'), (_fi, mu) => mu],
    ['patch', patch(), (_fi, _mu, fp) => fp],
  ];
  for (const [name, op, formula] of cases) {
    it(name, async () => {
      const st = await state(sub);
      const feats = [...pick(st.f, st.F, true, 4), ...pick(st.f, st.F, false, 2)];
      expect(feats.length).toBe(6);
      const steering = await Steering.create(model, dicts, feats.map((i) => iv(sub, i, op)), { reference: [reference] });
      // Reference mean over every token of the reference prompts; patch values from the patch prompts.
      const ref = await state(sub, reference);
      const pat = await state(sub, patchIds);
      const mean = (i: number) => { let t = 0; for (let j = 0; j < ref.f.length / ref.F; j++) t += ref.f[j * ref.F + i]!; return t / (ref.f.length / ref.F); };
      const targeted = new Set(feats);
      const expected = denseEdit(st.x, st.f, st.wDec, st.F, (r, p, i, fi) =>
        (targeted.has(i) ? formula(fi, mean(i), pat.f[(r * clean.seq + p) * st.F + i]!) : fi));
      const got = (await steered(steering)).values.get(sub)!.data;
      expect(relErr(got, expected)).toBeLessThan(2e-6);
      expect(relErr(got, st.x.data)).toBeGreaterThan(1e-3); // the edit did something
    });
  }

  it('several features, ops and submodules at once; untouched submodules upstream are bit-identical', async () => {
    const before = await hostForward(model, clean.ids, clean.batch, clean.seq);
    const steering = await Steering.create(model, dicts, [iv('attn_1', 3, clamp(1)), iv('mlp_1', 7, add(2)), iv('resid_1', 8, scale(4))]);
    const after = await steered(steering);
    for (const sub of ['embed', 'attn_0', 'mlp_0', 'resid_0']) expect(after.values.get(sub)!.data).toEqual(before.values.get(sub)!.data);
    expect(relErr(after.logits.data, before.logits.data)).toBeGreaterThan(1e-4);
  });
});

describe('positions', () => {
  const sub = 'mlp_0';
  const modes: [string, number, number[]][] = [
    ['all', 6, [0, 1, 2, 3, 4, 5]],
    ['prompt', 4, [0, 1, 2, 3]],
    ['1,-1', 6, [1, 5]],
    ['3:', 6, [3, 4, 5]],
    ['-2:', 4, [2, 3, 4, 5]],
  ];
  for (const [spec, promptLength, selected] of modes) {
    it(`${spec} with a ${promptLength}-token prompt steers positions ${selected.join(',')} only`, async () => {
      const st = await state(sub);
      const steering = await Steering.create(model, dicts, [iv(sub, 5, clamp(3), spec), iv(sub, 9, scale(0), spec)]);
      const got = (await steered(steering, promptLength)).values.get(sub)!;
      const sel = new Set(selected);
      const expected = denseEdit(st.x, st.f, st.wDec, st.F, (_r, p, i, fi) => (sel.has(p) && (i === 5 || i === 9) ? (i === 5 ? 3 : 0) : fi));
      expect(relErr(got.data, expected)).toBeLessThan(2e-6);
      const d = st.x.shape[2]!;
      for (let r = 0; r < clean.batch; r++) {
        for (let p = 0; p < clean.seq; p++) {
          const row = (h: ArrayLike<number>) => Array.from({ length: d }, (_, k) => h[(r * clean.seq + p) * d + k]);
          if (!sel.has(p)) expect(row(got.data)).toEqual(row(st.x.data)); // exactly untouched
          else expect(row(got.data)).not.toEqual(row(st.x.data));
        }
      }
    });
  }
});

describe('composition', () => {
  it('ops on one feature apply in the order given', async () => {
    const sub = 'resid_1';
    const st = await state(sub);
    const [i] = pick(st.f, st.F, true, 1);
    for (const [ops, formula] of [[[scale(2), add(1)], (f: number) => 2 * f + 1], [[add(1), scale(2)], (f: number) => 2 * (f + 1)]] as const) {
      const steering = await Steering.create(model, dicts, ops.map((op) => iv(sub, i!, op)));
      const expected = denseEdit(st.x, st.f, st.wDec, st.F, (_r, _p, j, fj) => (j === i ? formula(fj) : fj));
      expect(relErr((await steered(steering)).values.get(sub)!.data, expected)).toBeLessThan(2e-6);
    }
  });

  it('downstream features are read after upstream edits (forward order), whatever the list order', async () => {
    const up = iv('resid_0', 21, clamp(5));
    const down = (i: number) => iv('resid_1', i, scale(3));
    // resid_1 as it is after the upstream edit alone (resid_1 itself not edited in this run).
    const upOnly = await Steering.create(model, dicts, [up]);
    const x1 = (await steered(upOnly)).values.get('resid_1')!;
    const d1 = await hostDictionary(model, dicts.get('resid_1')!, x1);
    const plain = await state('resid_1');
    const [j] = pick(d1.f, 128, true, 1);
    const both = await Steering.create(model, dicts, [down(j!), up]); // listed downstream first on purpose
    const got = (await steered(both)).values.get('resid_1')!.data;
    const expected = denseEdit(x1, d1.f, d1.wDec, 128, (_r, _p, i, fi) => (i === j ? 3 * fi : fi));
    expect(relErr(got, expected)).toBeLessThan(2e-6);
    // Reading resid_1's features without the upstream edit would give a different answer.
    const stale = denseEdit(x1, plain.f, plain.wDec, 128, (_r, _p, i, fi) => (i === j ? 3 * fi : fi));
    expect(relErr(got, stale)).toBeGreaterThan(1e-3);
  });
});

describe('the SAE error is held fixed', () => {
  it('x′ − dec(f′) equals x − dec(f): re-encoding x′ would not give f′, but the edit never re-encodes', async () => {
    const sub = 'resid_0';
    const st = await state(sub);
    const feats = pick(st.f, st.F, true, 5);
    const steering = await Steering.create(model, dicts, feats.map((i) => iv(sub, i, clamp(4))));
    const x2 = (await steered(steering)).values.get(sub)!;
    const fNew = Float32Array.from(st.f, (v, j) => (feats.includes(j % st.F) ? 4 : v));
    const [b, sq, d] = st.x.shape as [number, number, number];
    const err = (x: Host, f: Float32Array) => Float64Array.from({ length: b * sq * d }, (_, n) => {
      const row = Math.floor(n / d), k = n % d;
      let dec = st.bDec[k]!;
      for (let i = 0; i < st.F; i++) dec += f[row * st.F + i]! * st.wDec[i * d + k]!;
      return x.data[n]! - dec;
    });
    const r0 = err(st.x, st.f);
    expect(relErr(err(x2, fNew), r0)).toBeLessThan(2e-5);
    // TopK/ReLU interference: the SAE's own reading of x′ is not exactly f′.
    const reread = await hostDictionary(model, dicts.get(sub)!, x2);
    expect(relErr(reread.f, fNew)).toBeGreaterThan(1e-4);
  });

  it('error-node ops: ablate zero leaves dec(enc(x)), scale multiplies the error, patch and mean replace it', async () => {
    const sub = 'attn_0';
    const st = await state(sub);
    const pat = await state(sub, patchIds);
    const ref = await state(sub, reference);
    const [b, sq, d] = st.x.shape as [number, number, number];
    const errOf = (h: { x: Host; f: Float32Array }, n: number) => {
      const row = Math.floor(n / d), k = n % d;
      let dec = st.bDec[k]!;
      for (let i = 0; i < st.F; i++) dec += h.f[row * st.F + i]! * st.wDec[i * d + k]!;
      return h.x.data[n]! - dec;
    };
    const refTokens = ref.x.data.length / d;
    const refMean = Float64Array.from({ length: d }, (_, k) => {
      let t = 0;
      for (let j = 0; j < refTokens; j++) t += errOf(ref, j * d + k);
      return t / refTokens;
    });
    const cases: [SteerOp, (n: number) => number][] = [
      [ablate('zero'), (n) => st.x.data[n]! - errOf(st, n)],
      [scale(2), (n) => st.x.data[n]! + errOf(st, n)],
      [patch(), (n) => st.x.data[n]! - errOf(st, n) + errOf(pat, n)],
      [ablate('mean'), (n) => st.x.data[n]! - errOf(st, n) + refMean[n % d]!],
    ];
    for (const [op, want] of cases) {
      const steering = await Steering.create(model, dicts, [iv(sub, 'err', op)], { reference: [reference] });
      const got = (await steered(steering)).values.get(sub)!.data;
      expect(relErr(got, Float64Array.from({ length: b * sq * d }, (_, n) => want(n)))).toBeLessThan(1e-5);
    }
  });
});

describe('bad input is a typed error listing what was expected', () => {
  it('unknown submodule, missing dictionary, index out of range, ops the error node lacks', async () => {
    await expect(Steering.create(model, dicts, [iv('resid_7', 1, scale(2))])).rejects.toMatchObject({
      code: 'NOT_FOUND', hint: expect.stringContaining('embed, attn_0, mlp_0, resid_0, attn_1, mlp_1, resid_1'),
    });
    const partial = new Map([...dicts].filter(([k]) => k !== 'mlp_1'));
    const missing = Steering.create(model, partial, [iv('mlp_1', 1, scale(2))]);
    await expect(missing).rejects.toBeInstanceOf(NotFoundError);
    await expect(missing).rejects.toMatchObject({ hint: expect.stringContaining('resid_1') });
    await expect(Steering.create(model, dicts, [iv('resid_0', 128, scale(2))])).rejects.toMatchObject({
      code: 'INPUT', message: expect.stringContaining('resid_0/128'), hint: expect.stringContaining('indices 0..127'),
    });
    await expect(Steering.create(model, dicts, [iv('resid_0', -1, scale(2))])).rejects.toBeInstanceOf(InputError);
    await expect(Steering.create(model, dicts, [iv('resid_0', 'err', clamp(1))])).rejects.toMatchObject({ hint: expect.stringContaining('scale, ablate or patch') });
    await expect(Steering.create(model, dicts, [iv('resid_0', 'err', add(1))])).rejects.toBeInstanceOf(InputError);
    await expect(Steering.create(model, dicts, [iv('resid_0', 1, scale(Number.NaN))])).rejects.toBeInstanceOf(InputError);
    await expect(Steering.create(model, dicts, [])).rejects.toBeInstanceOf(InputError);
    // Aliases resolve to the canonical submodule.
    const alias = await Steering.create(model, dicts, [iv('blocks.0.hook_resid_post', 1, scale(2))]);
    expect(alias.interventions[0]!.submodule).toBe('resid_0');
  });

  it('ablate mean without reference prompts; patch without a patch prompt; unreachable positions', async () => {
    await expect(Steering.create(model, dicts, [iv('resid_0', 1, ablate('mean'))])).rejects.toMatchObject({ code: 'INPUT', hint: expect.stringContaining('--data') });
    const p = await Steering.create(model, dicts, [iv('resid_0', 1, patch())]);
    expect(() => p.validate(6, 6, undefined, 3)).toThrow(/patch prompt/);
    expect(() => p.validate(6, 6, { batch: 2, seq: 6 }, 3)).toThrow(/2 patch prompts for 3/);
    expect(() => p.validate(6, 8, { batch: 1, seq: 6 }, 3)).toThrow(/patching position 7/);
    expect(() => p.validate(6, 6, { batch: 1, seq: 6 }, 3)).not.toThrow();
    const far = await Steering.create(model, dicts, [iv('resid_0', 1, scale(2), '9')]);
    expect(() => far.validate(6, 6)).toThrow(/position 9 out of range/);
  });
});

describe('resources', () => {
  it('a steered forward inside a scope leaks no tensors', async () => {
    const steering = await Steering.create(model, dicts, [iv('resid_0', 3, clamp(1)), iv('attn_1', 'err', scale(0)), iv('mlp_0', 4, patch())]);
    const n0 = model.ops.numTensors();
    await steered(steering);
    expect(model.ops.numTensors()).toBe(n0);
  });
});
