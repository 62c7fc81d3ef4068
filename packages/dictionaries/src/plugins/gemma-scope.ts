// Gemma Scope loader: `params.npz` with W_enc [d, F], W_dec [F, d], b_enc [F], b_dec [d] and
// threshold [F] — a JumpReLU SAE that does not centre its input (apply_b_dec_to_input false):
// f = relu(x W_enc + b_enc) · 1[pre > threshold], x̂ = f W_dec + b_dec. Lower-case `w_enc`/`w_dec`
// (as some exports name them) are accepted, as SAELens' loader does.

import { join } from 'node:path';
import { FormatError, quoteName, type DictionaryPlugin } from '@sfc/core';
import { JumpReluDictionary } from '../architectures/threshold.js';
import { expectShape, type HostTensor } from '../host-weights.js';
import { readNpz, toFloat32Data } from '../formats/index.js';
import { VERSION } from '../version.js';
import { checkWidth, isFile, readByOffset } from './plugin-io.js';
import { checkFiniteWeights } from './weight-map.js';

const HINT = 'a Gemma Scope folder has params.npz with W_enc, W_dec, b_enc, b_dec and threshold';

export function gemmaScope(): DictionaryPlugin {
  return {
    meta: { name: 'gemma-scope', version: VERSION, namespace: 'gemma-scope' },
    async detect(dir) {
      return isFile(join(dir, 'params.npz')) ? { ok: true, reason: 'Gemma Scope params.npz (JumpReLU)' } : { ok: false, reason: 'no params.npz' };
    },
    async load(dir, ctx) {
      const path = join(dir, 'params.npz');
      const arrays = readByOffset(path, HINT, (src) => readNpz(src, path));
      const named = new Map<string, HostTensor>();
      for (const [k, v] of arrays) named.set(k.startsWith('w_') ? `W_${k.slice(2)}` : k, { shape: v.shape, data: toFloat32Data(v.data) });
      checkFiniteWeights(named, path);
      const need = (n: string) => {
        const t = named.get(n);
        if (!t) throw new FormatError(`${path}: no array '${n}'`, `arrays present: ${[...named.keys()].slice(0, 20).map((k) => quoteName(k)).join(', ')}; ${HINT}`);
        return t;
      };
      const W_enc = need('W_enc');
      if (W_enc.shape.length !== 2) throw new FormatError(`${path}: W_enc must be a matrix`);
      const [dIn, dSae] = W_enc.shape as [number, number];
      const dict = new JumpReluDictionary(ctx.ops, {
        W_enc,
        W_dec: expectShape(need('W_dec'), [dSae, dIn], 'W_dec', path),
        b_enc: expectShape(need('b_enc'), [dSae], 'b_enc', path),
        b_dec: expectShape(need('b_dec'), [dIn], 'b_dec', path),
        threshold: expectShape(need('threshold'), [dSae], 'threshold', path),
        applyBDecToInput: false,
      }, { source: path, format: 'gemma-scope' });
      checkWidth(dict, ctx);
      return dict;
    },
  };
}
