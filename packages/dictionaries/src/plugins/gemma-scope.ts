// Gemma Scope loader: `params.npz` (Gemma Scope) or `params.safetensors` (Gemma Scope 2) with
// W_enc [d, F], W_dec [F, d], b_enc [F], b_dec [d] and threshold [F] — a JumpReLU SAE that does not
// centre its input (apply_b_dec_to_input false): f = relu(x W_enc + b_enc) · 1[pre > threshold],
// x̂ = f W_dec + b_dec. Lower-case `w_enc`/`w_dec` (as some exports name them) are accepted, as
// SAELens' loader does. The files carry no hook: it comes from the folder names (gemma-scope-site.ts).

import { join } from 'node:path';
import { FormatError, quoteName, withSafetensors, type DictionaryPlugin } from '@sfc/core';
import { JumpReluDictionary } from '../architectures/threshold.js';
import { expectShape, type HostTensor } from '../host-weights.js';
import { readNpz, toFloat32Data } from '../formats/index.js';
import { VERSION } from '../version.js';
import { gemmaScopeHook } from './gemma-scope-site.js';
import { checkWidth, isFile, readByOffset } from './plugin-io.js';
import { checkFiniteWeights, weightMap } from './weight-map.js';

const HINT = 'a Gemma Scope folder has params.npz (or Gemma Scope 2\'s params.safetensors) with W_enc, W_dec, b_enc, b_dec and threshold';
const FILES = ['params.npz', 'params.safetensors'] as const;

/** The weights file of a Gemma Scope folder, if any. */
function paramsFile(dir: string): string | undefined {
  return FILES.map((f) => join(dir, f)).find(isFile);
}

/** The arrays of a params file, read by offset (files over 2 GiB work); NaN/±Inf are refused. */
function readParams(path: string): Map<string, HostTensor> {
  const named = new Map<string, HostTensor>();
  const put = (k: string, t: HostTensor) => named.set(k.startsWith('w_') ? `W_${k.slice(2)}` : k, t);
  if (path.endsWith('.npz')) {
    for (const [k, v] of readByOffset(path, HINT, (src) => readNpz(src, path))) put(k, { shape: v.shape, data: toFloat32Data(v.data) });
    checkFiniteWeights(named, path);
  } else {
    for (const [k, v] of withSafetensors(path, weightMap)) put(k, v); // the reader refuses NaN/±Inf
  }
  return named;
}

export function gemmaScope(): DictionaryPlugin {
  return {
    meta: { name: 'gemma-scope', version: VERSION, namespace: 'gemma-scope' },
    async detect(dir) {
      const file = paramsFile(dir);
      if (!file) return { ok: false, reason: 'no params.npz or params.safetensors' };
      const hook = gemmaScopeHook(dir);
      return { ok: true, reason: `Gemma Scope ${file.endsWith('.npz') ? 'params.npz' : 'params.safetensors'} (JumpReLU)`, ...(hook ? { hook } : {}) };
    },
    async load(dir, ctx) {
      const path = paramsFile(dir) ?? join(dir, FILES[0]);
      const named = readParams(path);
      const need = (n: string) => {
        const t = named.get(n);
        if (!t) throw new FormatError(`${path}: no array '${n}'`, `arrays present: ${[...named.keys()].slice(0, 20).map((k) => quoteName(k)).join(', ')}; ${HINT}`);
        return t;
      };
      const W_enc = need('W_enc');
      if (W_enc.shape.length !== 2) throw new FormatError(`${path}: W_enc must be a matrix`);
      const [dIn, dSae] = W_enc.shape as [number, number];
      const hook = gemmaScopeHook(dir);
      const dict = new JumpReluDictionary(ctx.ops, {
        W_enc,
        W_dec: expectShape(need('W_dec'), [dSae, dIn], 'W_dec', path),
        b_enc: expectShape(need('b_enc'), [dSae], 'b_enc', path),
        b_dec: expectShape(need('b_dec'), [dIn], 'b_dec', path),
        threshold: expectShape(need('threshold'), [dSae], 'threshold', path),
        applyBDecToInput: false,
      }, { source: path, format: 'gemma-scope', ...(hook ? { hook } : {}) });
      checkWidth(dict, ctx);
      return dict;
    },
  };
}
