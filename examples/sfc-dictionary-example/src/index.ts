// sfc-dictionary-example: a third-party dictionary plugin for a made-up "toy" SAE format
// (toy.json + weights.f32, see README.md). It depends on @sfc/core only, as a peer.

import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import {
  FormatError, InputError, NotFoundError, ShapeError,
  type Dictionary, type DictionaryLoadContext, type DictionaryPlugin, type Tensor, type TensorOps,
} from '@sfc/core';

export interface ToyWeights {
  readonly dIn: number;
  readonly dSae: number;
  /** [dIn, dSae] row-major. */
  readonly W_enc: Float32Array;
  readonly b_enc: Float32Array;
  /** [dSae, dIn] row-major. */
  readonly W_dec: Float32Array;
  readonly b_dec: Float32Array;
  readonly hook?: string;
}

const META_FILE = 'toy.json';
const WEIGHTS_FILE = 'weights.f32';

/** Writes a toy dictionary folder (each file via a temp file + rename, so readers never see half a file). */
export function writeToyDictionary(dir: string, w: ToyWeights): void {
  mkdirSync(dir, { recursive: true });
  const parts = [w.W_enc, w.b_enc, w.W_dec, w.b_dec];
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    const le = new Uint8Array(p.byteLength);
    const view = new DataView(le.buffer);
    p.forEach((v, i) => view.setFloat32(i * 4, v, true));
    bytes.set(le, off);
    off += p.byteLength;
  }
  const atomic = (name: string, data: string | Uint8Array) => {
    writeFileSync(join(dir, `${name}.tmp`), data);
    renameSync(join(dir, `${name}.tmp`), join(dir, name));
  };
  atomic(WEIGHTS_FILE, bytes);
  atomic(META_FILE, JSON.stringify({ format: 'toy-sae', version: 1, d_in: w.dIn, d_sae: w.dSae, ...(w.hook ? { hook: w.hook } : {}) }, null, 1));
}

interface ToyMeta { d_in: number; d_sae: number; hook?: string }

function readMeta(dir: string): ToyMeta {
  const path = join(dir, META_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new FormatError(`${path} is not valid JSON: ${(e as Error).message}`, 'rewrite it with writeToyDictionary');
  }
  const m = raw as Record<string, unknown>;
  if (m.format !== 'toy-sae' || m.version !== 1) throw new FormatError(`${path}: not a toy-sae v1 file`, 'expected {"format": "toy-sae", "version": 1, …}');
  for (const k of ['d_in', 'd_sae'] as const) {
    if (!Number.isSafeInteger(m[k]) || (m[k] as number) < 1) throw new FormatError(`${path}: ${k} must be a positive integer`);
  }
  return { d_in: m.d_in as number, d_sae: m.d_sae as number, ...(typeof m.hook === 'string' ? { hook: m.hook } : {}) };
}

/** f = relu(x W_enc + b_enc); x̂ = f W_dec + b_dec. ∂f_j/∂x = 1[pre_j > 0] W_enc[:, j]. */
class ToyDictionary implements Dictionary {
  readonly architecture = 'relu';
  readonly format = 'toy-sae';
  readonly details = {};
  readonly hook?: string;
  private readonly wEnc: Tensor;
  private readonly wEncT: Tensor;
  private readonly bEnc: Tensor;
  private readonly wDec: Tensor;
  private readonly bDec: Tensor;

  constructor(private readonly ops: TensorOps, readonly dIn: number, readonly dSae: number, w: ToyWeights, readonly source: string) {
    if (w.hook !== undefined) this.hook = w.hook;
    this.wEnc = ops.tensor(w.W_enc, [dIn, dSae]);
    this.wEncT = ops.transpose(this.wEnc);
    this.bEnc = ops.tensor(w.b_enc, [dSae]);
    this.wDec = ops.tensor(w.W_dec, [dSae, dIn]);
    this.bDec = ops.tensor(w.b_dec, [dIn]);
  }

  private check(x: Tensor, width: number): void {
    if (this.wEnc.isDisposed) throw new InputError('toy dictionary used after dispose()');
    if (x.shape[x.shape.length - 1] !== width) throw new ShapeError(`toy dictionary: expected last axis ${width}, got [${x.shape.join(', ')}]`);
  }

  private pre(x: Tensor): Tensor {
    const xw = this.ops.matMul(x, this.wEnc);
    try { return this.ops.add(xw, this.bEnc); } finally { xw.dispose(); }
  }

  encode(x: Tensor): Tensor {
    this.check(x, this.dIn);
    const pre = this.pre(x);
    try { return this.ops.relu(pre); } finally { pre.dispose(); }
  }

  decode(f: Tensor): Tensor {
    this.check(f, this.dSae);
    const fw = this.ops.matMul(f, this.wDec);
    try { return this.ops.add(fw, this.bDec); } finally { fw.dispose(); }
  }

  decoderRows(): Tensor { return this.wDec; }
  decoderBias(): Tensor { return this.bDec; }

  encodeVjp(x: Tensor, cotangent: Tensor): Tensor {
    this.check(x, this.dIn);
    const pre = this.pre(x);
    const zero = this.ops.zeros([1]);
    const mask = this.ops.greater(pre, zero);
    const masked = this.ops.mul(cotangent, mask);
    try { return this.ops.matMul(masked, this.wEncT); } finally { for (const t of [pre, zero, mask, masked]) t.dispose(); }
  }

  featureGradients(x: Tensor, features: Int32Array): Tensor {
    this.check(x, this.dIn);
    const n = features.length;
    if (x.shape.length !== 2 || x.shape[0] !== n) throw new ShapeError('toy dictionary: featureGradients needs x [N, dIn] and N features');
    const ops = this.ops;
    const temps: Tensor[] = [];
    const t = <T extends Tensor>(v: T) => { temps.push(v); return v; };
    try {
      const idx = t(ops.intTensor(features, [n]));
      const cols = t(ops.gather(this.wEncT, idx, 0));
      const pre = t(ops.add(t(ops.sum(t(ops.mul(x, cols)), 1)), t(ops.gather(this.bEnc, idx, 0))));
      const on = t(ops.reshape(t(ops.greater(pre, t(ops.zeros([1])))), [n, 1]));
      return ops.mul(cols, on);
    } finally {
      for (const v of temps) v.dispose();
    }
  }

  dispose(): void {
    for (const v of [this.wEnc, this.wEncT, this.bEnc, this.wDec, this.bDec]) v.dispose();
  }
}

export interface ToyPluginOptions {
  /** Refuse folders whose toy.json has no hook. */
  readonly requireHook?: boolean;
}

/** The plugin factory (the package's default export, as sfc's config loader expects). */
export function toyDictionaryPlugin(options: ToyPluginOptions = {}): DictionaryPlugin {
  return {
    meta: { name: 'sfc-dictionary-example', version: '0.1.0', namespace: 'toy' },

    async detect(dir: string) {
      if (!existsSync(join(dir, META_FILE))) return { ok: false, reason: `no ${META_FILE}` };
      try {
        const m = readMeta(dir);
        if (options.requireHook && !m.hook) return { ok: false, reason: `${META_FILE} has no hook` };
        return { ok: true, reason: `toy SAE ${m.d_in}→${m.d_sae}`, ...(m.hook ? { hook: m.hook } : {}) };
      } catch (e) {
        return { ok: false, reason: (e as Error).message };
      }
    },

    async load(dir: string, ctx: DictionaryLoadContext) {
      const m = readMeta(dir);
      const wPath = join(dir, WEIGHTS_FILE);
      if (!existsSync(wPath)) throw new NotFoundError(`${wPath} does not exist`, 'a toy dictionary folder has toy.json and weights.f32');
      const expected = 4 * (2 * m.d_in * m.d_sae + m.d_sae + m.d_in);
      const size = statSync(wPath).size;
      if (size !== expected) throw new FormatError(`${wPath} has ${size} bytes, expected ${expected} for d_in ${m.d_in}, d_sae ${m.d_sae}`);
      if (ctx.dIn !== undefined && ctx.dIn !== m.d_in) {
        throw new ShapeError(`toy dictionary ${dir}${ctx.submodule ? ` for '${ctx.submodule}'` : ''} has d_in ${m.d_in}, the model ${ctx.dIn}`);
      }
      const buf = readFileSync(wPath);
      const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      let off = 0;
      const take = (n: number) => {
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++, off += 4) out[i] = view.getFloat32(off, true);
        return out;
      };
      const w: ToyWeights = {
        dIn: m.d_in, dSae: m.d_sae,
        W_enc: take(m.d_in * m.d_sae), b_enc: take(m.d_sae), W_dec: take(m.d_sae * m.d_in), b_dec: take(m.d_in),
        ...(m.hook ? { hook: m.hook } : {}),
      };
      return new ToyDictionary(ctx.ops, m.d_in, m.d_sae, w, dir);
    },
  };
}

export default toyDictionaryPlugin;
