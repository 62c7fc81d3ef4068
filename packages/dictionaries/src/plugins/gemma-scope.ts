// Gemma Scope loader: `params.npz` (Gemma Scope) or `params.safetensors` (Gemma Scope 2) with
// W_enc [d, F], W_dec [F, d], b_enc [F], b_dec [d] and threshold [F] — a JumpReLU SAE that does not
// centre its input (apply_b_dec_to_input false): f = relu(x W_enc + b_enc) · 1[pre > threshold],
// x̂ = f W_dec + b_dec. Lower-case `w_enc`/`w_dec` (as some exports name them) are accepted, as
// SAELens' loader does. Gemma Scope 2 folders hold a `config.json` whose `hf_hook_point_in` names
// the site (`model.layers.3.output`, `….self_attn.o_proj.input`, `….post_feedforward_layernorm.output`,
// which Gemma 3's submodules answer to); without one the hook comes from the folder names
// (gemma-scope-site.ts). A config whose `hf_hook_point_out` differs is a transcoder: refused.

import { join } from 'node:path';
import { CapabilityError, FormatError, quoteName, withSafetensors, type DictionaryPlugin } from '@sfc/core';
import { JumpReluDictionary } from '../architectures/threshold.js';
import { expectShape, type HostTensor } from '../host-weights.js';
import { readNpz, toFloat32Data } from '../formats/index.js';
import { VERSION } from '../version.js';
import { gemmaScopeHook } from './gemma-scope-site.js';
import { checkWidth, isFile, readByOffset, readJson } from './plugin-io.js';
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

/** Gemma Scope 2's declared sites: `hf_hook_point_in` (and `_out` for transcoders) of config.json, when the folder has one. */
interface DeclaredSites { readonly in: string; readonly out?: string }

async function declaredSites(dir: string): Promise<DeclaredSites | undefined> {
  const path = join(dir, 'config.json');
  if (!isFile(path)) return undefined;
  const cfg = await readJson(path, HINT);
  const site = (key: string): string | undefined => {
    const v = typeof cfg === 'object' && cfg !== null ? (cfg as Record<string, unknown>)[key] : undefined;
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v.length === 0) throw new FormatError(`${path}: ${key} must be a module path such as 'model.layers.3.output', got ${quoteName(v)}`);
    return v;
  };
  const input = site('hf_hook_point_in');
  if (input === undefined) return undefined; // a config.json of something else: the folder names decide
  const out = site('hf_hook_point_out');
  return { in: input, ...(out !== undefined ? { out } : {}) };
}

function refuseTranscoder(sites: DeclaredSites | undefined, path: string): void {
  if (sites?.out !== undefined && sites.out !== sites.in) {
    throw new CapabilityError(`${path}: a transcoder (reads ${quoteName(sites.in)}, writes ${quoteName(sites.out)}); sfc's dictionaries reconstruct the value they read`,
      'use Gemma Scope 2\'s SAEs (resid_post, attn_out, mlp_out) instead of its transcoders');
  }
}

export function gemmaScope(): DictionaryPlugin {
  return {
    meta: { name: 'gemma-scope', version: VERSION, namespace: 'gemma-scope' },
    async detect(dir) {
      const file = paramsFile(dir);
      if (!file) return { ok: false, reason: 'no params.npz or params.safetensors' };
      const kind = `Gemma Scope ${file.endsWith('.npz') ? 'params.npz' : 'params.safetensors'} (JumpReLU)`;
      let sites: DeclaredSites | undefined;
      try {
        sites = await declaredSites(dir);
      } catch (e) {
        return { ok: true, reason: `${kind} with a config.json that loading will refuse: ${(e as Error).message}` };
      }
      const hook = sites?.in ?? gemmaScopeHook(dir);
      return { ok: true, reason: sites ? `${kind}, site from config.json` : kind, ...(hook ? { hook } : {}) };
    },
    async load(dir, ctx) {
      const path = paramsFile(dir) ?? join(dir, FILES[0]);
      const sites = await declaredSites(dir);
      refuseTranscoder(sites, join(dir, 'config.json'));
      const named = readParams(path);
      const need = (n: string) => {
        const t = named.get(n);
        if (!t) throw new FormatError(`${path}: no array '${n}'`, `arrays present: ${[...named.keys()].slice(0, 20).map((k) => quoteName(k)).join(', ')}; ${HINT}`);
        return t;
      };
      const W_enc = need('W_enc');
      if (W_enc.shape.length !== 2) throw new FormatError(`${path}: W_enc must be a matrix`);
      const [dIn, dSae] = W_enc.shape as [number, number];
      const hook = sites?.in ?? gemmaScopeHook(dir);
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
