// Splicing SAEs into the forward pass: each submodule's output x is replaced by dec(enc(x)) —
// the SAE error dropped — through core's forward `edits`. The quick end-to-end check of a set of
// SAEs: how much of a metric survives when the model runs on reconstructions only.

import type { Dictionary, Edit } from '@sfc/core';

/** One edit per dictionary: x ↦ decode(encode(x)). Intermediates belong to the caller's scope. */
export function spliceEdits(dicts: ReadonlyMap<string, Dictionary>): Map<string, Edit> {
  return new Map([...dicts].map(([name, d]) => [name, (x) => d.decode(d.encode(x))]));
}
