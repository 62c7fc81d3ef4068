// Trains a ReLU SAE on a buffer of activations, backend-agnostic (core's TensorOps, analytic
// gradients from relu-sae-loss.ts, Adam from adam.ts). Recipe: Anthropic's April 2024 update as
// in dictionary_learning's StandardTrainerAprilUpdate — inputs scaled so E‖x‖² = d_in, tied init
// with decoder rows of norm 0.1, decoder-norm-weighted L1, Adam with global-norm clip 1, lr
// warmup + linear decay over the last 20 %, λ warmup. Two additions, both optional: b_dec starts
// at the data mean (SAELens `b_dec_init_method: mean`), and dead features can be resampled
// towards badly reconstructed inputs (Towards Monosemanticity; dictionary_learning's
// StandardTrainer.resample_neurons), adapted to an unconstrained decoder.
// The result is in raw activation units with unit-norm decoder rows (norms folded into the
// encoder, as SAELens' fold_W_dec_norm does): same reconstruction, features in penalty units.

import { InputError, PythonRandom, type Tensor, type TensorOps } from '@sfc/core';
import { foldDecoderNorms, host, type HostTensor } from '../host-weights.js';
import { adamInit, adamStep, type AdamState } from './adam.js';
import { PARAM_NAMES, reluSaeLossAndGrad, type ParamName, type ReluSaeParams } from './relu-sae-loss.js';
import { lrFactor, makeSchedule, sparsityFactor, type Schedule } from './schedule.js';

/** Activations of one submodule, row-major [rows, dIn]. */
export interface ActivationSet {
  readonly data: Float32Array;
  readonly rows: number;
  readonly dIn: number;
}

export interface ResampleOptions {
  /** Check every this many steps (and only before the lr decay starts). */
  readonly every: number;
  /** Rows drawn to choose new directions from (default 8 × batch). */
  readonly poolSize?: number;
}

export interface ReluSaeTrainingOptions {
  readonly dictSize: number;
  /** Sparsity coefficient λ (inputs scaled to E‖x‖² = d_in, so λ is comparable across sites). */
  readonly l1: number;
  readonly steps: number;
  /** Rows per step (default 512). */
  readonly batchSize?: number;
  /** Peak learning rate (default 1e-3). */
  readonly lr?: number;
  readonly seed?: number;
  readonly warmupSteps?: number;
  readonly sparsityWarmupSteps?: number;
  /** Start of the linear lr decay to 0; null = none (default 0.8 · steps). */
  readonly decayStart?: number | null;
  /** Global gradient-norm clip (default 1; null = none). */
  readonly clipNorm?: number | null;
  /** Scale inputs so E‖x‖² = d_in during training (default true; folded out of the result). */
  readonly normalize?: boolean;
  /** Resample dead features (default off). */
  readonly resample?: ResampleOptions;
  /** Progress callback every `logEvery` steps (default 50) and at the end. */
  readonly logEvery?: number;
  readonly onProgress?: (p: SaeTrainingProgress) => void;
}

export interface SaeTrainingProgress {
  readonly step: number;
  readonly steps: number;
  /** Over the last logged batch: fraction of variance explained, mean active features per row. */
  readonly fve: number;
  readonly l0: number;
  /** Features that did not fire in the last window of steps. */
  readonly dead: number;
}

export interface SaeTrainingRecord extends SaeTrainingProgress {
  readonly loss: number;
  readonly mse: number;
  readonly lr: number;
  readonly lambda: number;
}

export interface ReluSaeWeights {
  readonly W_enc: HostTensor;
  readonly b_enc: HostTensor;
  readonly W_dec: HostTensor;
  readonly b_dec: HostTensor;
}

export interface TrainedReluSae {
  /** Raw activation units, unit-norm decoder rows, apply_b_dec_to_input semantics. */
  readonly weights: ReluSaeWeights;
  /** The factor s the trainer multiplied inputs by (1 without normalisation). */
  readonly inputScale: number;
  readonly history: readonly SaeTrainingRecord[];
  /** Features re-initialised by resampling, in total. */
  readonly resampled: number;
  readonly seconds: number;
}

type Params = Record<ParamName, Tensor>;

/** Standard normal draws (Box–Muller) from a seeded generator. */
function gaussian(rng: PythonRandom): number {
  let u = 0;
  while (u === 0) u = rng.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.random());
}

function checkOptions(x: ActivationSet, o: ReluSaeTrainingOptions): void {
  const positiveInt = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < 1) throw new InputError(`${what} must be a positive integer, got ${v}`);
  };
  positiveInt(o.dictSize, 'dict size');
  positiveInt(o.steps, 'steps');
  positiveInt(o.batchSize ?? 512, 'batch size');
  if (!(o.l1 >= 0) || !Number.isFinite(o.l1)) throw new InputError(`the sparsity coefficient must be a number ≥ 0, got ${o.l1}`);
  if (o.lr !== undefined && !(o.lr > 0 && Number.isFinite(o.lr))) throw new InputError(`the learning rate must be > 0, got ${o.lr}`);
  if (x.rows < 2) throw new InputError(`SAE training needs at least 2 activation rows, got ${x.rows}`, 'give a longer text file');
  if (x.data.length !== x.rows * x.dIn) throw new InputError(`activation buffer has ${x.data.length} values, expected ${x.rows} × ${x.dIn}`);
  if (o.resample) positiveInt(o.resample.every, 'resample interval');
}

/** Mean row and E‖x‖² of the buffer (float64 accumulation). */
function moments(x: ActivationSet): { mean: Float64Array; meanSq: number; variance: number } {
  const { data, rows, dIn } = x;
  const mean = new Float64Array(dIn);
  let sq = 0;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < dIn; j++) {
      const v = data[r * dIn + j]!;
      mean[j]! += v;
      sq += v * v;
    }
  }
  for (let j = 0; j < dIn; j++) mean[j]! /= rows;
  const meanSq = sq / rows;
  let mm = 0;
  for (let j = 0; j < dIn; j++) mm += mean[j]! ** 2;
  return { mean, meanSq, variance: meanSq - mm };
}

export async function trainReluSae(ops: TensorOps, x: ActivationSet, options: ReluSaeTrainingOptions): Promise<TrainedReluSae> {
  checkOptions(x, options);
  const t0 = performance.now();
  const { dIn: d, rows } = x;
  const F = options.dictSize;
  const B = Math.min(options.batchSize ?? 512, rows);
  const lr = options.lr ?? 1e-3;
  const clip = options.clipNorm === null ? undefined : options.clipNorm ?? 1;
  const logEvery = Math.max(1, options.logEvery ?? 50);
  const schedule: Schedule = makeSchedule(options.steps, options);
  const rng = new PythonRandom(options.seed ?? 0);

  const stats = moments(x);
  const s = options.normalize === false || stats.meanSq <= 0 ? 1 : Math.sqrt(d / stats.meanSq);
  const varianceScaled = stats.variance * s * s; // E‖x − x̄‖² in training units

  // Tied init (April update): random directions of norm 0.1, W_enc = W_decᵀ, b_enc = 0.
  const wDec = new Float32Array(F * d);
  for (let j = 0; j < F; j++) {
    let n = 0;
    for (let i = 0; i < d; i++) { const g = gaussian(rng); wDec[j * d + i] = g; n += g * g; }
    n = Math.sqrt(n) || 1;
    for (let i = 0; i < d; i++) wDec[j * d + i]! *= 0.1 / n;
  }
  const wEnc = new Float32Array(d * F);
  for (let j = 0; j < F; j++) for (let i = 0; i < d; i++) wEnc[i * F + j] = wDec[j * d + i]!;
  const bDec = Float32Array.from(stats.mean, (m) => m * s);

  const scaled = s === 1 ? x.data : Float32Array.from(x.data, (v) => v * s);
  let params: Params = {
    W_enc: ops.tensor(wEnc, [d, F]),
    b_enc: ops.zeros([F]),
    W_dec: ops.tensor(wDec, [F, d]),
    b_dec: ops.tensor(bDec, [d]),
  };
  let adam: AdamState<ParamName> = adamInit(ops, params);
  let fired = ops.zeros([F]);
  const lastFired = new Int32Array(F); // last step (1-based) a feature fired in, 0 = never
  const history: SaeTrainingRecord[] = [];
  let resampled = 0;

  // Each epoch uploads the rows in a fresh seeded permutation and steps through contiguous
  // slices of it (a gather of random rows is several times slower than a slice on tfjs-wasm).
  // A tail shorter than a batch is skipped; the next permutation covers it.
  let epoch: Tensor | undefined, cursor = rows;
  // Called outside step scopes (the epoch tensor must outlive them); returns the batch's first row.
  const nextBatch = (): number => {
    if (cursor + B > rows) {
      const perm = Int32Array.from({ length: rows }, (_, k) => k);
      for (let k = rows - 1; k > 0; k--) { const r = rng.randbelow(k + 1); const t = perm[k]!; perm[k] = perm[r]!; perm[r] = t; }
      const buf = new Float32Array(rows * d);
      for (let k = 0; k < rows; k++) buf.set(scaled.subarray(perm[k]! * d, (perm[k]! + 1) * d), k * d);
      epoch?.dispose();
      epoch = ops.tensor(buf, [rows, d]);
      cursor = 0;
    }
    const start = cursor;
    cursor += B;
    return start;
  };
  const disposeAll = (...groups: Readonly<Record<string, Tensor>>[]) => {
    for (const g of groups) for (const t of Object.values(g)) t.dispose();
  };

  try {
    for (let step = 0; step < schedule.steps; step++) {
      const lrNow = lr * lrFactor(schedule, step);
      const lambda = options.l1 * sparsityFactor(schedule, step);
      const log = (step + 1) % logEvery === 0 || step === schedule.steps - 1;
      const start = nextBatch();
      const r = await ops.scope(async () => {
        const xb = ops.slice(epoch!, [start, 0], [B, d]);
        const { terms, grads } = reluSaeLossAndGrad(ops, params, xb, lambda);
        const upd = adamStep(ops, params, grads, adam, lrNow, clip !== undefined ? { clipNorm: clip } : {});
        const active = ops.greater(terms.features, ops.zeros([F]));
        const firedNext = ops.add(fired, ops.sum(active, 0));
        const out: Record<string, Tensor | Record<string, Tensor>> = { params: upd.params, m: upd.state.m, v: upd.state.v, fired: firedNext };
        if (log) out.scalars = { loss: terms.loss, mse: terms.mse, l0: ops.scale(ops.sum(active), 1 / B) };
        return out;
      });
      disposeAll(params, adam.m, adam.v);
      fired.dispose();
      params = r.params as Params;
      adam = { m: r.m as Params, v: r.v as Params, t: adam.t + 1 };
      fired = r.fired as Tensor;

      if (log) {
        const sc = r.scalars as Record<'loss' | 'mse' | 'l0', Tensor>;
        const [loss, mse, l0] = await Promise.all([sc.loss, sc.mse, sc.l0].map(async (t) => (await t.data())[0]!));
        disposeAll(sc);
        const counts = await fired.data();
        for (let j = 0; j < F; j++) if (counts[j]! > 0) lastFired[j] = step + 1;
        fired.dispose();
        fired = ops.zeros([F]);
        const window = options.resample?.every ?? Math.max(logEvery, Math.floor(schedule.steps / 10));
        const dead = countDead(lastFired, step + 1, window);
        const rec: SaeTrainingRecord = {
          step: step + 1, steps: schedule.steps, loss: loss!, mse: mse!, l0: l0!, lr: lrNow, lambda,
          fve: varianceScaled > 0 ? 1 - mse! / varianceScaled : 0, dead,
        };
        history.push(rec);
        options.onProgress?.({ step: rec.step, steps: rec.steps, fve: rec.fve, l0: rec.l0, dead: rec.dead });
      }

      const rs = options.resample;
      if (rs && (step + 1) % rs.every === 0 && (schedule.decayStart === undefined || step + 1 < schedule.decayStart)) {
        if (!log) {
          const counts = await fired.data();
          for (let j = 0; j < F; j++) if (counts[j]! > 0) lastFired[j] = step + 1;
          fired.dispose();
          fired = ops.zeros([F]);
        }
        const dead: number[] = [];
        for (let j = 0; j < F; j++) if (step + 1 - lastFired[j]! >= rs.every) dead.push(j);
        if (dead.length) {
          const res = await resampleDead(ops, epoch!, rows, params, adam, dead, rng, rs.poolSize ?? 8 * B);
          params = res.params;
          adam = res.adam;
          for (const j of dead.slice(0, res.count)) lastFired[j] = step + 1; // a fresh start
          resampled += res.count;
        }
      }
    }

    const host4 = Object.fromEntries(await Promise.all(PARAM_NAMES.map(async (k) => [k, await params[k].data() as Float32Array]))) as Record<ParamName, Float32Array>;
    // Undo the input scale: the SAE saw s·x, so W_enc·s, W_dec/s, b_dec/s give the same features.
    const raw = {
      W_enc: host([d, F], Float32Array.from(host4.W_enc, (v) => v * s)),
      b_enc: host([F], host4.b_enc),
      W_dec: host([F, d], Float32Array.from(host4.W_dec, (v) => v / s)),
      b_dec: host([d], Float32Array.from(host4.b_dec, (v) => v / s)),
    };
    const folded = foldDecoderNorms(raw);
    return {
      weights: { W_enc: folded.W_enc, b_enc: folded.b_enc, W_dec: folded.W_dec, b_dec: raw.b_dec },
      inputScale: s,
      history,
      resampled,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    disposeAll(params, adam.m, adam.v);
    epoch?.dispose();
    fired.dispose();
  }
}

function countDead(lastFired: Int32Array, step: number, window: number): number {
  let n = 0;
  for (const f of lastFired) if (step - f >= window) n++;
  return n;
}

/**
 * Re-initialises dead features from rows the SAE reconstructs worst: rows drawn without
 * replacement with probability ∝ ‖x − x̂‖²; the decoder row points at the centred row with the
 * mean norm of the living rows, the encoder column at it with 0.2 × the living mean norm,
 * b_enc = 0, and those entries' Adam moments are reset.
 */
/** `X` holds the (scaled) training rows, in any order. */
async function resampleDead(ops: TensorOps, X: Tensor, rows: number, params: Params, adam: AdamState<ParamName>, dead: number[],
  rng: PythonRandom, poolSize: number): Promise<{ params: Params; adam: AdamState<ParamName>; count: number }> {
  const [d, F] = params.W_enc.shape as [number, number];
  const pool = Math.min(poolSize, rows);
  const idx = Int32Array.from({ length: pool }, () => rng.randbelow(rows));
  const { xc, err } = await ops.scope(async () => {
    const xb = ops.gather(X, ops.intTensor(idx, [pool]), 0);
    const xHat = ops.add(ops.matMul(ops.relu(ops.add(ops.matMul(ops.sub(xb, params.b_dec), params.W_enc), params.b_enc)), params.W_dec), params.b_dec);
    return { xc: ops.sub(xb, params.b_dec), err: ops.sum(ops.square(ops.sub(xb, xHat)), 1) };
  });
  const xcH = await xc.data() as Float32Array;
  const errH = Float64Array.from(await err.data() as Float32Array);
  xc.dispose();
  err.dispose();

  const h = Object.fromEntries(await Promise.all(PARAM_NAMES.map(async (k) => [k, Float32Array.from(await params[k].data() as Float32Array)]))) as Record<ParamName, Float32Array>;
  const m = Object.fromEntries(await Promise.all(PARAM_NAMES.map(async (k) => [k, Float32Array.from(await adam.m[k].data() as Float32Array)]))) as Record<ParamName, Float32Array>;
  const v = Object.fromEntries(await Promise.all(PARAM_NAMES.map(async (k) => [k, Float32Array.from(await adam.v[k].data() as Float32Array)]))) as Record<ParamName, Float32Array>;

  const isDead = new Uint8Array(F);
  for (const j of dead) isDead[j] = 1;
  let decNorm = 0, encNorm = 0, alive = 0;
  for (let j = 0; j < F; j++) {
    if (isDead[j]) continue;
    let dn = 0, en = 0;
    for (let i = 0; i < d; i++) { dn += h.W_dec[j * d + i]! ** 2; en += h.W_enc[i * F + j]! ** 2; }
    decNorm += Math.sqrt(dn); encNorm += Math.sqrt(en); alive++;
  }
  decNorm = alive ? decNorm / alive : 0.1;
  encNorm = alive ? encNorm / alive : 0.1;

  // Weighted sampling without replacement, one row per dead feature while rows with error remain.
  let count = 0;
  for (const j of dead) {
    let total = 0;
    for (const e of errH) total += e;
    if (!(total > 0)) break;
    let u = rng.random() * total, r = 0;
    while (r < pool - 1 && (u -= errH[r]!) > 0) r++;
    errH[r] = 0;
    let n = 0;
    for (let i = 0; i < d; i++) n += xcH[r * d + i]! ** 2;
    n = Math.sqrt(n);
    if (!(n > 0)) continue;
    for (let i = 0; i < d; i++) {
      const u1 = xcH[r * d + i]! / n;
      h.W_dec[j * d + i] = u1 * decNorm;
      h.W_enc[i * F + j] = u1 * encNorm * 0.2;
      m.W_dec[j * d + i] = 0; v.W_dec[j * d + i] = 0;
      m.W_enc[i * F + j] = 0; v.W_enc[i * F + j] = 0;
    }
    h.b_enc[j] = 0; m.b_enc[j] = 0; v.b_enc[j] = 0;
    count++;
  }
  const upload = (g: Record<ParamName, Float32Array>): Params =>
    Object.fromEntries(PARAM_NAMES.map((k) => [k, ops.tensor(g[k], params[k].shape)])) as Params;
  const next = { params: upload(h), adam: { m: upload(m), v: upload(v), t: adam.t }, count };
  for (const g of [params, adam.m, adam.v]) for (const t of Object.values(g)) t.dispose();
  return next;
}
