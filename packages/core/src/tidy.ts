// Synchronous disposal of intermediates, for code that must stay synchronous (dictionary
// encode/decode, a model Edit inside a forward) where `ops.scope` (async) cannot be used:
// everything registered with `tmp` is disposed when `fn` returns or throws, except the result
// and the tensors in `keep` (an identity dictionary's encode may hand back its input).

import type { Tensor } from './tensor.js';

export function tidySync(fn: (tmp: <T extends Tensor>(t: T) => T) => Tensor, keep: readonly Tensor[] = []): Tensor {
  const temps: Tensor[] = [];
  let result: Tensor | undefined;
  try {
    result = fn((t) => { temps.push(t); return t; });
    return result;
  } finally {
    for (const t of temps) if (t !== result && !keep.includes(t) && !t.isDisposed) t.dispose();
  }
}
