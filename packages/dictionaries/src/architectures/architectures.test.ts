import { describe, expect, it } from 'vitest';
import { InputError, ShapeError, type Tensor } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { host } from '../host-weights.js';
import {
  BatchTopKDictionary, GatedDictionary, IdentityDictionary, JumpReluDictionary, MatryoshkaBatchTopKDictionary, ReluDictionary, TopKDictionary,
} from './index.js';
import { withInputNormalization } from './input-normalization.js';

// dIn = 2, dSae = 3 with W_enc = [[1,0,1],[0,1,1]] so pre = [x0, x1, x0+x1] + b_enc.
const W_enc = host([2, 3], Float32Array.from([1, 0, 1, 0, 1, 1]));
const W_dec = host([3, 2], Float32Array.from([1, 0, 0, 1, 0.5, 0.5]));
const zeros = (n: number) => host([n], new Float32Array(n));
const base = { W_enc, W_dec, b_enc: zeros(3), b_dec: zeros(2), applyBDecToInput: false };
const vals = async (t: Tensor) => Array.from(await t.data());

describe('architectures', () => {
  it('relu centres the input only when asked', async () => {
    const ops = referenceOps();
    const b_dec = host([2], Float32Array.from([1, 1]));
    const x = ops.tensor([2, 0.5], [1, 2]);
    expect(await vals(new ReluDictionary(ops, { ...base, b_dec }).encode(x))).toEqual([2, 0.5, 2.5]);
    expect(await vals(new ReluDictionary(ops, { ...base, b_dec, applyBDecToInput: true }).encode(x))).toEqual([1, 0, 0.5]);
  });

  it('jumprelu keeps only pre strictly above the threshold', async () => {
    const ops = referenceOps();
    const d = new JumpReluDictionary(ops, { ...base, threshold: host([3], Float32Array.from([0.5, 0.5, -1])) });
    // pre = [0.5, 0.25, 0.75]: feature 0 sits exactly on its threshold → 0 (strict >)
    expect(await vals(d.encode(ops.tensor([0.5, 0.25], [1, 2])))).toEqual([0, 0, 0.75]);
    // a negative threshold never lets a negative pre through (relu first)
    expect(await vals(d.encode(ops.tensor([-0.5, -0.25], [1, 2])))).toEqual([0, 0, 0]);
    expect(await vals(d.featureGradients(ops.tensor([0.5, 0.25, 0.6, 0.25], [2, 2]), Int32Array.from([0, 0])))).toEqual([0, 0, 1, 0]);
  });

  it('topk keeps the k largest per row, relu applied', async () => {
    const ops = referenceOps();
    const d = new TopKDictionary(ops, { ...base, k: 2 });
    expect(await vals(d.encode(ops.tensor([3, -1, 1, 2], [2, 2])))).toEqual([3, 0, 2, 0, 2, 3]);
    // fewer than k positive: the negative pre is "selected" but relu makes it 0 and its gradient 0
    expect(await vals(d.encode(ops.tensor([-3, -1], [1, 2])))).toEqual([0, 0, 0]);
    expect(await vals(d.featureGradients(ops.tensor([-3, -1], [1, 2]), Int32Array.from([1])))).toEqual([0, 0]);
    expect(() => new TopKDictionary(ops, { ...base, k: 4 })).toThrow(ShapeError);
  });

  it('topk with a selection scale ranks by pre·scale and keeps relu(pre) (lm-saes 2.x decoder-norm gating)', async () => {
    const ops = referenceOps();
    // x = [3, -1]: pre = [3, -1, 2]; scores with scale [0.5, 1, 2] are [1.5, -1, 4] → features 2 then 0.
    const d = new TopKDictionary(ops, { ...base, k: 1, selectionScale: host([3], Float32Array.from([0.5, 1, 2])) });
    expect(await vals(d.encode(ops.tensor([3, -1], [1, 2])))).toEqual([0, 0, 2]);
    expect(await vals(d.featureGradients(ops.tensor([3, -1, 3, -1], [2, 2]), Int32Array.from([2, 0])))).toEqual([1, 1, 0, 0]);
    // a zero scale never selects (lm-saes would divide 0 by 0 there)
    const z = new TopKDictionary(ops, { ...base, k: 2, selectionScale: host([3], Float32Array.from([0, 1, 1])) });
    expect(await vals(z.encode(ops.tensor([3, 1], [1, 2])))).toEqual([0, 1, 4]);
    expect(() => new TopKDictionary(ops, { ...base, k: 1, selectionScale: host([3], Float32Array.from([1, -1, 1])) })).toThrow(/finite and ≥ 0/);
    expect(() => new TopKDictionary(ops, { ...base, k: 1, selectionScale: host([2], Float32Array.from([1, 1])) })).toThrow(ShapeError);
  });

  it('topk works on [batch, seq, d] inputs', async () => {
    const ops = referenceOps();
    const d = new TopKDictionary(ops, { ...base, k: 1 });
    expect(await vals(d.encode(ops.tensor([3, -1, 1, 2], [1, 2, 2])))).toEqual([3, 0, 0, 0, 0, 3]);
  });

  it('batchtopk thresholds relu(pre) with its scalar; an untrained threshold (-1) is plain relu', async () => {
    const ops = referenceOps();
    const x = ops.tensor([0.2, 0.6], [1, 2]);
    expect((await vals(new BatchTopKDictionary(ops, { ...base, threshold: 0.5 }).encode(x))).map((v) => +v.toFixed(6))).toEqual([0, 0.6, 0.8]);
    expect((await vals(new BatchTopKDictionary(ops, { ...base, threshold: -1 }).encode(x))).map((v) => +v.toFixed(6))).toEqual([0.2, 0.6, 0.8]);
  });

  it('matryoshka zeroes the features of inactive groups', async () => {
    const ops = referenceOps();
    const d = new MatryoshkaBatchTopKDictionary(ops, { ...base, threshold: 0, groupSizes: [2, 1], activeGroups: 1 });
    expect(await vals(d.encode(ops.tensor([1, 2], [1, 2])))).toEqual([1, 2, 0]);
    expect(() => new MatryoshkaBatchTopKDictionary(ops, { ...base, threshold: 0, groupSizes: [2, 2] })).toThrow(/sum to d_sae = 3/);
  });

  it('gated multiplies the gate by relu of the rescaled magnitude path', async () => {
    const ops = referenceOps();
    const d = new GatedDictionary(ops, {
      W_enc, W_dec, b_dec: zeros(2), applyBDecToInput: false,
      b_gate: host([3], Float32Array.from([0, -5, 0])), b_mag: host([3], Float32Array.from([0, 0, -10])), r_mag: host([3], Float32Array.from([Math.log(2), 0, 0])),
    });
    // gate pre = [1, 1-5, 2] → [1, 0, 1]; mag = [2·1, 1, 2-10] → relu [2, 1, 0]
    expect(await vals(d.encode(ops.tensor([1, 1], [1, 2])))).toEqual([2, 0, 0]);
    expect((await vals(d.featureGradients(ops.tensor([1, 1], [1, 2]), Int32Array.from([0])))).map((v) => +v.toFixed(6))).toEqual([2, 0]);
  });

  it('decode is f·W_dec + b_dec for vectors and batches', async () => {
    const ops = referenceOps();
    const d = new ReluDictionary(ops, { ...base, b_dec: host([2], Float32Array.from([1, -1])) });
    expect(await vals(d.decode(ops.tensor([1, 2, 2], [3])))).toEqual([3, 2]);
    expect(d.decode(ops.tensor([1, 2, 2, 0, 0, 0], [1, 2, 3])).shape).toEqual([1, 2, 2]);
  });

  it('rejects inconsistent weights and wrong inputs with typed errors', () => {
    const ops = referenceOps();
    expect(() => new ReluDictionary(ops, { ...base, b_enc: zeros(4) })).toThrow(ShapeError);
    expect(() => new ReluDictionary(ops, { ...base, W_enc: host([3, 2], W_enc.data) })).toThrow(/W_enc has shape \[3, 2\], expected \[2, 3\]/);
    const d = new ReluDictionary(ops, base);
    expect(() => d.encode(ops.tensor([1, 2, 3], [1, 3]))).toThrow(ShapeError);
    expect(() => d.featureGradients(ops.tensor([1, 2], [1, 2]), Int32Array.from([3]))).toThrow(InputError);
    expect(() => d.featureGradients(ops.tensor([1, 2], [1, 2]), Int32Array.from([0, 1]))).toThrow(ShapeError);
    d.dispose();
    expect(() => d.encode(ops.tensor([1, 2], [1, 2]))).toThrow(/after dispose/);
  });

  it('dispose frees every tensor it owns, the VJP keeps nothing, and dispose is idempotent', async () => {
    const ops = referenceOps();
    const d = new GatedDictionary(ops, { W_enc, W_dec, b_dec: zeros(2), applyBDecToInput: true, b_gate: zeros(3), b_mag: zeros(3), r_mag: zeros(3) });
    const x = ops.tensor([1, 2], [1, 2]);
    const cot = ops.fill([1, 3], 1);
    const before = ops.numTensors();
    const g = d.encodeVjp(x, cot);
    expect(g.shape).toEqual([1, 2]);
    d.featureGradients(x, Int32Array.from([2])).dispose();
    expect(ops.numTensors()).toBe(before + 1); // only the result
    const live = ops.numTensors();
    d.dispose();
    d.dispose();
    expect(live - ops.numTensors()).toBe(6); // W_dec, b_dec, W_enc, W_mag, b_gate, b_mag — no cached transposes
  });

  it('identity: features are coordinates, error 0, one-hot gradients', async () => {
    const ops = referenceOps();
    const d = new IdentityDictionary(ops, 3);
    const x = ops.tensor([1, -2, 3], [1, 3]);
    expect(await vals(d.decode(d.encode(x)))).toEqual([1, -2, 3]);
    expect(await vals(d.decoderRows())).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    expect(await vals(d.featureGradients(x, Int32Array.from([2])))).toEqual([0, 0, 1]);
    expect(await vals(d.encodeVjp(x, ops.tensor([4, 5, 6], [1, 3])))).toEqual([4, 5, 6]);
    expect(() => new IdentityDictionary(ops, 0)).toThrow(ShapeError);
  });

  it('input normalisation: raw-unit features and a bias-free decoder', async () => {
    const ops = referenceOps();
    const inner = new ReluDictionary(ops, { ...base, b_dec: host([2], Float32Array.from([0.5, 0.5])) });
    const d = withInputNormalization(ops, inner, 'constant_norm_rescale');
    // x = [3, 4]: ‖x‖ = 5, s = 5/√2; x_n = x/s; inner f = relu(x_n W) = [3, 4, 7]/s; φ = f·s = [3, 4, 7]
    expect((await vals(d.encode(ops.tensor([3, 4], [1, 2])))).map((v) => +v.toFixed(5))).toEqual([3, 4, 7]);
    expect(await vals(d.decoderBias())).toEqual([0, 0]);
    expect(await vals(d.decode(ops.tensor([1, 0, 2], [3])))).toEqual([2, 1]);
    expect(d.details?.normalizeActivations).toBe('constant_norm_rescale');
  });
});

describe('weights handed over (DecoderWeights.handOver, TensorOps.adopt)', () => {
  /** referenceOps with an `adopt` that records what it was given (and keeps it, as onnx does). */
  function adoptingOps() {
    const ops = referenceOps();
    const adopted: Float32Array[] = [];
    const spy = new Proxy(ops, {
      get(target, key, receiver) {
        if (key === 'adopt') return (values: Float32Array, shape: readonly number[]) => { adopted.push(values); return target.tensor(values, shape); };
        const v = Reflect.get(target, key, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    return { ops: spy, adopted };
  }

  it('adopts a handed-over W_dec and the transposed encoder rows; copies a view into a larger buffer and anything not handed over', async () => {
    const { ops, adopted } = adoptingOps();
    const dec = Float32Array.from([1, 0, 0, 1, 0.5, 0.5]);
    const d = new ReluDictionary(ops, { ...base, W_dec: host([3, 2], dec), handOver: true });
    expect(adopted).toContain(dec);
    expect(adopted.length).toBe(2); // W_dec and W_encᵀ (made at load)
    expect(await vals(d.encode(ops.tensor([2, 0.5], [1, 2])))).toEqual([2, 0.5, 2.5]);

    const shared = new Float32Array(12);
    shared.set(dec, 6);
    const { ops: ops2, adopted: adopted2 } = adoptingOps();
    new ReluDictionary(ops2, { ...base, W_dec: host([3, 2], shared.subarray(6)), handOver: true });
    expect(adopted2.some((a) => a.buffer === shared.buffer)).toBe(false);

    const { ops: ops3, adopted: adopted3 } = adoptingOps();
    new ReluDictionary(ops3, { ...base, W_dec: host([3, 2], dec) });
    expect(adopted3).not.toContain(dec);
  });
});
