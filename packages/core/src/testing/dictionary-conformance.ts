// The conformance suite every dictionary plugin runs (sfc's own loaders and third-party ones).
// Test-runner agnostic: pass your runner's `describe` and `it` (vitest, jest, node:test).
// It checks the contract algorithms rely on: detection, shapes, the linear decoder, the
// derivatives (encodeVjp against finite differences of encode, featureGradients against
// encodeVjp with one-hot cotangents), tensor hygiene and dispose().

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Dictionary, DictionaryLoadContext, DictionaryPlugin } from '../dictionary.js';
import type { Tensor, TensorOps } from '../tensor.js';
import { rng } from './fuzz.js';

export interface DictionaryConformanceOptions {
  /** A folder the plugin must recognise and load. */
  readonly dir: string;
  readonly ops: TensorOps;
  readonly describe: (name: string, fn: () => void) => void;
  readonly it: (name: string, fn: () => Promise<void>) => void;
  /** Extra load context (dIn, submodule, options). */
  readonly context?: Omit<Partial<DictionaryLoadContext>, 'ops'>;
  /** Test inputs: rows × dIn values (default: seeded N(0, inputScale²)). */
  readonly inputs?: Float32Array;
  /** Standard deviation of the generated inputs (default 1). */
  readonly inputScale?: number;
  /** Rows of test input (default 6). */
  readonly rows?: number;
  /** Relative tolerance of the derivative checks (default 2e-2 for finite differences). */
  readonly tolerance?: number;
  readonly seed?: number;
}

class ConformanceFailure extends Error {
  override name = 'ConformanceFailure';
}

function fail(msg: string): never {
  throw new ConformanceFailure(msg);
}

function sameShape(t: Tensor, shape: readonly number[], what: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    fail(`${what} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, rel: number, abs: number, what: string): void {
  if (a.length !== b.length) fail(`${what}: ${a.length} values vs ${b.length}`);
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= abs + rel * Math.max(Math.abs(b[i]!), scale * 1e-3))) {
      fail(`${what}: element ${i} is ${a[i]} but expected ${b[i]} (|diff| ${d.toExponential(2)})`);
    }
  }
}

function gaussian(seed: number): () => number {
  const uniform = rng(seed >>> 0 || 1).next;
  return () => Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform());
}

async function read(t: Tensor): Promise<Float64Array> {
  return Float64Array.from(await t.data());
}

/**
 * Registers the suite: `describe('dictionary plugin <name> conformance', …)` with one `it`
 * per property. Loads the dictionary once and disposes it in the last test.
 */
export function runDictionaryPluginConformance(plugin: DictionaryPlugin, options: DictionaryConformanceOptions): void {
  const { ops, dir } = options;
  const rows = options.rows ?? 6;
  const tol = options.tolerance ?? 2e-2;
  const rand = gaussian(options.seed ?? 1234);
  let dict: Dictionary | undefined;
  let tensorsBeforeLoad = 0;
  const ctx = (): DictionaryLoadContext => ({ ops, ...options.context });
  const loaded = async (): Promise<Dictionary> => {
    if (!dict) {
      tensorsBeforeLoad = ops.numTensors();
      dict = await plugin.load(dir, ctx());
    }
    return dict;
  };
  let inputs: Float32Array | undefined;
  const input = (d: Dictionary): Float32Array => {
    if (!inputs) {
      inputs = options.inputs ?? Float32Array.from({ length: rows * d.dIn }, () => rand() * (options.inputScale ?? 1));
      if (inputs.length % d.dIn !== 0) fail(`inputs have ${inputs.length} values, not a multiple of dIn = ${d.dIn}`);
    }
    return inputs;
  };
  /** Σ_j cot_j f_j(x) per row, in float64. */
  const weighted = async (d: Dictionary, x: Float32Array, cot: Float64Array): Promise<{ s: Float64Array; active: Uint8Array }> => {
    const n = x.length / d.dIn;
    const xt = ops.tensor(x, [n, d.dIn]);
    const f = d.encode(xt);
    const fv = await read(f);
    xt.dispose();
    f.dispose();
    const s = new Float64Array(n);
    const active = new Uint8Array(fv.length);
    for (let r = 0; r < n; r++) for (let j = 0; j < d.dSae; j++) {
      s[r]! += cot[r * d.dSae + j]! * fv[r * d.dSae + j]!;
      active[r * d.dSae + j] = fv[r * d.dSae + j] !== 0 ? 1 : 0;
    }
    return { s, active };
  };

  options.describe(`dictionary plugin ${plugin.meta?.name ?? '?'} conformance`, () => {
    options.it('declares meta', async () => {
      if (typeof plugin.meta?.name !== 'string' || plugin.meta.name === '') fail('meta.name must be a non-empty string');
      for (const k of ['version', 'namespace'] as const) {
        const v = plugin.meta[k];
        if (v !== undefined && typeof v !== 'string') fail(`meta.${k} must be a string when given`);
      }
    });

    options.it('detects its folder and declines an empty one with a reason', async () => {
      const yes = await plugin.detect(dir);
      if (!yes.ok) fail(`detect(${dir}) said no: ${yes.reason}`);
      if (typeof yes.reason !== 'string') fail('detect() must give a reason string');
      const empty = mkdtempSync(join(tmpdir(), 'sfc-conformance-'));
      try {
        const no = await plugin.detect(empty);
        if (no.ok) fail('detect() accepted an empty folder');
        if (typeof no.reason !== 'string' || no.reason.length === 0) fail('detect() must say why it declines (reason)');
      } finally {
        rmSync(empty, { recursive: true, force: true });
      }
    });

    options.it('loads a dictionary with consistent shapes', async () => {
      const d = await loaded();
      if (typeof d.architecture !== 'string' || !d.architecture) fail('architecture must be a non-empty string');
      for (const k of ['dIn', 'dSae'] as const) if (!Number.isInteger(d[k]) || d[k] < 1) fail(`${k} must be a positive integer, got ${d[k]}`);
      if (options.context?.dIn !== undefined && d.dIn !== options.context.dIn) fail(`dIn ${d.dIn} differs from the context's ${options.context.dIn}`);
      sameShape(d.decoderRows(), [d.dSae, d.dIn], 'decoderRows()');
      sameShape(d.decoderBias(), [d.dIn], 'decoderBias()');
      const n = input(d).length / d.dIn;
      const x = ops.tensor(input(d), [n, d.dIn]);
      const f = d.encode(x);
      sameShape(f, [n, d.dSae], 'encode([N, dIn])');
      const x3 = ops.reshape(x, [1, n, d.dIn]);
      const f3 = d.encode(x3);
      sameShape(f3, [1, n, d.dSae], 'encode([1, N, dIn])');
      close(await read(f3), await read(f), 1e-5, 1e-6, 'encode of a 3-D batch vs the same rows in 2-D');
      const fv = await read(f);
      if (!fv.some((v) => v !== 0)) fail('no feature is active on the test inputs; pass inputs or inputScale that activate some');
      if (fv.some((v) => !Number.isFinite(v))) fail('encode produced non-finite values');
      for (const t of [x, f, x3, f3]) t.dispose();
    });

    options.it('decodes linearly: decode(f) = f·decoderRows() + decoderBias(), so x = decode(encode(x)) + error', async () => {
      const d = await loaded();
      const n = input(d).length / d.dIn;
      const x = ops.tensor(input(d), [n, d.dIn]);
      const f = d.encode(x);
      const xhat = d.decode(f);
      sameShape(xhat, [n, d.dIn], 'decode(encode(x))');
      const product = ops.matMul(f, d.decoderRows());
      const manual = ops.add(product, d.decoderBias());
      close(await read(xhat), await read(manual), 1e-5, 1e-6, 'decode(f) vs f·W_dec + b_dec');
      const zero = ops.zeros([1, d.dSae]);
      const atZero = d.decode(zero);
      close(await read(atZero), await read(d.decoderBias()), 1e-6, 1e-7, 'decode(0) vs decoderBias()');
      const err = ops.sub(x, xhat);
      const back = ops.add(xhat, err);
      close(await read(back), Float64Array.from(input(d)), 1e-6, 1e-6, 'decode(encode(x)) + error');
      for (const t of [x, f, xhat, product, manual, zero, atZero, err, back]) t.dispose();
    });

    options.it('encodeVjp matches finite differences of encode (selection held fixed)', async () => {
      const d = await loaded();
      const x = input(d);
      const n = x.length / d.dIn;
      const cot = Float64Array.from({ length: n * d.dSae }, () => rand());
      const dir = Float64Array.from({ length: x.length }, () => rand());
      let xnorm = 0;
      for (const v of x) xnorm = Math.max(xnorm, Math.abs(v));
      const eps = 1e-3 * Math.max(xnorm, 1e-3);
      const plus = Float32Array.from(x, (v, i) => v + eps * dir[i]!);
      const minus = Float32Array.from(x, (v, i) => v - eps * dir[i]!);
      const [p, m] = [await weighted(d, plus, cot), await weighted(d, minus, cot)];
      const xt = ops.tensor(x, [n, d.dIn]);
      const ct = ops.tensor(Float32Array.from(cot), [n, d.dSae]);
      const g = d.encodeVjp(xt, ct);
      sameShape(g, [n, d.dIn], 'encodeVjp');
      const gv = await read(g);
      let checked = 0;
      for (let r = 0; r < n; r++) {
        // A row whose active set changes between x − εv and x + εv has no derivative there.
        let same = true;
        for (let j = 0; j < d.dSae && same; j++) same = p.active[r * d.dSae + j] === m.active[r * d.dSae + j];
        if (!same) continue;
        const fd = (p.s[r]! - m.s[r]!) / (2 * eps);
        let an = 0, mag = 0;
        for (let i = 0; i < d.dIn; i++) { an += gv[r * d.dIn + i]! * dir[r * d.dIn + i]!; mag += Math.abs(gv[r * d.dIn + i]! * dir[r * d.dIn + i]!); }
        if (Math.abs(fd - an) > tol * Math.max(mag, 1e-6) + 1e-4) fail(`row ${r}: directional derivative ${an} from encodeVjp, ${fd} by finite differences`);
        checked++;
      }
      if (checked < Math.ceil(n / 2)) fail(`only ${checked} of ${n} rows kept their active set under a ±${eps} step; use smoother inputs`);
      for (const t of [xt, ct, g]) t.dispose();
    });

    options.it('featureGradients equals encodeVjp with one-hot cotangents', async () => {
      const d = await loaded();
      const x = input(d);
      const n = x.length / d.dIn;
      const xt = ops.tensor(x, [n, d.dIn]);
      const ft = d.encode(xt);
      const f = await read(ft);
      ft.dispose();
      // Per row: an active feature when there is one (else feature r mod dSae), so both cases are covered.
      const feats = Int32Array.from({ length: n }, (_, r) => {
        if (r % 2 === 1) return (r * 7919) % d.dSae;
        let best = -1;
        for (let j = 0; j < d.dSae; j++) if (f[r * d.dSae + j] !== 0 && (best < 0 || Math.abs(f[r * d.dSae + j]!) > Math.abs(f[r * d.dSae + best]!))) best = j;
        return best < 0 ? r % d.dSae : best;
      });
      const onehot = new Float32Array(n * d.dSae);
      feats.forEach((j, r) => { onehot[r * d.dSae + j] = 1; });
      const ct = ops.tensor(onehot, [n, d.dSae]);
      const viaVjp = d.encodeVjp(xt, ct);
      const direct = d.featureGradients(xt, feats);
      sameShape(direct, [n, d.dIn], 'featureGradients');
      close(await read(direct), await read(viaVjp), 1e-4, 1e-6, 'featureGradients vs encodeVjp(one-hot)');
      for (const t of [xt, ct, viaVjp, direct]) t.dispose();
    });

    options.it('encodeFeatures, where provided, equals those columns of encode', async () => {
      const d = await loaded();
      if (!d.encodeFeatures) return; // optional (TopK-style selections cannot provide it)
      const x = input(d);
      const n = x.length / d.dIn;
      const xt = ops.tensor(x, [n, d.dIn]);
      const ft = d.encode(xt);
      const f = await read(ft);
      const feats = Int32Array.from(new Set([0, d.dSae - 1, (7919 % d.dSae), Math.floor(d.dSae / 2)]));
      const sel = d.encodeFeatures(xt, feats);
      sameShape(sel, [n, feats.length], 'encodeFeatures');
      const want = new Float32Array(n * feats.length);
      for (let r = 0; r < n; r++) feats.forEach((j, c) => { want[r * feats.length + c] = f[r * d.dSae + j]!; });
      close(await read(sel), want, 1e-4, 1e-5, 'encodeFeatures vs encode');
      for (const t of [xt, ft, sel]) t.dispose();
    });

    options.it('leaves no intermediate tensors behind', async () => {
      const d = await loaded();
      const x = input(d);
      const n = x.length / d.dIn;
      const before = ops.numTensors();
      const xt = ops.tensor(x, [n, d.dIn]);
      const outs = [d.encode(xt)];
      outs.push(d.decode(outs[0]!));
      const ct = ops.fill([n, d.dSae], 1);
      outs.push(d.encodeVjp(xt, ct));
      outs.push(d.featureGradients(xt, new Int32Array(n)));
      for (const t of [xt, ct, ...outs]) t.dispose();
      const after = ops.numTensors();
      if (after !== before) fail(`${after - before} tensors leaked by encode/decode/encodeVjp/featureGradients (results disposed by the caller)`);
    });

    options.it('dispose() frees the dictionary\'s tensors', async () => {
      const d = await loaded();
      d.dispose();
      dict = undefined;
      const leaked = ops.numTensors() - tensorsBeforeLoad;
      if (leaked > 0) fail(`${leaked} tensors still alive after dispose()`);
      d.dispose(); // idempotent
    });
  });
}
