// Named host tensors, whatever file they came from (safetensors, a torch state_dict, npz).

import type { SafetensorsFile } from '@sfc/core';
import { host, type HostTensor } from '../host-weights.js';

export type WeightMap = ReadonlyMap<string, HostTensor>;

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/**
 * Every floating-point tensor of a safetensors file as f32 (integer tensors are skipped). F32
 * tensors are views of the file's bytes (an SAE file is nearly all weights: no 2× peak, no copy);
 * nothing here writes to host tensors (host-weights.ts returns new arrays).
 */
export function weightMap(file: SafetensorsFile): WeightMap {
  const out = new Map<string, HostTensor>();
  for (const [name, e] of file.entries) {
    if (FLOAT_DTYPES.has(e.dtype)) out.set(name, host(e.shape, file.getFloat32View(name)));
  }
  return out;
}
