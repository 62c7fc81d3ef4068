// Named host tensors, whatever file they came from (safetensors, a torch state_dict, npz).

import { checkFinite, FormatError, quoteName, type SafetensorsEntry } from '@sfc/core';
import { host, type HostTensor } from '../host-weights.js';

export type WeightMap = ReadonlyMap<string, HostTensor>;

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/**
 * Every floating-point tensor of a safetensors file as f32 (integer tensors are skipped; NaN/±Inf
 * refused by the reader). F32 tensors are read without a copy (an SAE file is nearly all weights: no 2× peak);
 * nothing here writes to host tensors (host-weights.ts returns new arrays).
 */
export function weightMap(file: { readonly entries: ReadonlyMap<string, SafetensorsEntry>; getFloat32View(name: string): Float32Array }): WeightMap {
  const out = new Map<string, HostTensor>();
  for (const [name, e] of file.entries) {
    if (FLOAT_DTYPES.has(e.dtype)) out.set(name, host(e.shape, file.getFloat32View(name)));
  }
  return out;
}

/** Refuses NaN / ±Inf in any weight (docs/formats.md): they would make every output non-finite. */
export function checkFiniteWeights(w: ReadonlyMap<string, { readonly data: Float32Array }>, source: string): void {
  for (const [name, t] of w) checkFinite(t.data, `${source}: tensor ${quoteName(name)}`);
}

/**
 * The first of `names` present in `w`, or a FormatError listing the tensors the file has
 * (`hint` says what the file should have held).
 */
export function requireTensor(w: WeightMap, names: readonly [string, ...string[]], source: string, hint: string): HostTensor {
  for (const n of names) {
    const t = w.get(n);
    if (t) return t;
  }
  throw new FormatError(`${source}: no tensor ${quoteName(names[0])}`,
    `tensors present: ${[...w.keys()].slice(0, 20).map((k) => quoteName(k)).join(', ') || 'none'}; ${hint}`);
}
