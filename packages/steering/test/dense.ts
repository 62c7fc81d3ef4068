// Test helpers: small-a prompt batches and host-side (float64) recomputation of what an
// intervention must do, to check the backend path against the formula.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Dictionary, Edit, Model, Tensor } from '@sfc/core';
import type { ScoreBatch } from '../src/scoring.js';
import { SMALL_A } from './small-a.js';

export interface Pair { clean: string; patch: string; cleanAnswer: string; patchAnswer: string }

export function smallAPairs(): Pair[] {
  return readFileSync(join(SMALL_A, 'data.jsonl'), 'utf8').trim().split('\n').map((l) => {
    const r = JSON.parse(l);
    return { clean: r.clean_prefix, patch: r.patch_prefix, cleanAnswer: r.clean_answer, patchAnswer: r.patch_answer };
  });
}

export function pairBatch(model: Model, pairs: readonly Pair[]): ScoreBatch {
  const clean = model.encodeBatch(pairs.map((p) => p.clean));
  const patch = model.encodeBatch(pairs.map((p) => p.patch));
  const one = (t: string) => { const ids = model.encode(t); if (ids.length !== 1) throw new Error(`'${t}' is ${ids.length} tokens`); return ids[0]!; };
  return {
    size: pairs.length, seq: clean.seq, clean: clean.ids, patch: patch.ids,
    cleanAnswer: Int32Array.from(pairs, (p) => one(p.cleanAnswer)), patchAnswer: Int32Array.from(pairs, (p) => one(p.patchAnswer)),
  };
}

export interface Host { readonly shape: readonly number[]; readonly data: Float32Array }

async function host(t: Tensor): Promise<Host> {
  const d = await t.data();
  return { shape: [...t.shape], data: d instanceof Float32Array ? d : Float32Array.from(d) };
}

/** Every submodule's output (after edits) and the last-position logits, on the host. */
export async function hostForward(model: Model, ids: Int32Array, batch: number, seq: number, edits?: ReadonlyMap<string, Edit>):
  Promise<{ values: Map<string, Host>; logits: Host }> {
  const values = new Map<string, Host>();
  let logits: Host | undefined;
  await model.ops.scope(async () => {
    const r = await model.forward(model.tokens(ids, batch, seq), { edits, logits: { lastOnly: true } });
    for (const [k, v] of r.values) values.set(k, await host(v));
    logits = await host(r.logits!);
  });
  return { values, logits: logits! };
}

/** The dictionary's encode and decoder rows of a host activation, on the host. */
export async function hostDictionary(model: Model, dict: Dictionary, x: Host): Promise<{ f: Float32Array; wDec: Float32Array; bDec: Float32Array }> {
  let out: { f: Float32Array; wDec: Float32Array; bDec: Float32Array } | undefined;
  await model.ops.scope(async () => {
    const f = (await host(dict.encode(model.ops.tensor(x.data, x.shape)))).data;
    out = { f, wDec: (await host(dict.decoderRows())).data, bDec: (await host(dict.decoderBias())).data };
  });
  return out!;
}

/** x + Σ_i (f'_i − f_i)·W_dec[i] over every feature, in float64, where fNew gives f' per (row, pos, feature). */
export function denseEdit(x: Host, f: Float32Array, wDec: Float32Array, F: number,
  fNew: (row: number, pos: number, i: number, fi: number) => number): Float64Array {
  const [b, s, d] = x.shape as [number, number, number];
  const out = Float64Array.from(x.data);
  for (let r = 0; r < b; r++) {
    for (let p = 0; p < s; p++) {
      for (let i = 0; i < F; i++) {
        const fi = f[(r * s + p) * F + i]!;
        const delta = fNew(r, p, i, fi) - fi;
        if (delta === 0) continue;
        for (let k = 0; k < d; k++) out[(r * s + p) * d + k]! += delta * wDec[i * d + k]!;
      }
    }
  }
  return out;
}

/** max |a − b| / max(|b|, 1e-6). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 1e-6;
  for (let i = 0; i < b.length; i++) { num = Math.max(num, Math.abs(a[i]! - b[i]!)); den = Math.max(den, Math.abs(b[i]!)); }
  return num / den;
}
