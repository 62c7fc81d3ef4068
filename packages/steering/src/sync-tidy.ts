// Synchronous disposal of intermediates for code that must stay synchronous (a model Edit runs
// inside the forward): everything registered with `tmp` is disposed when `fn` returns or
// throws, except the result. Without it a forward would hold every submodule's [b, s, dSae]
// encoding until the caller's scope ends. Tensors in `keep` are never disposed even when
// registered: an identity dictionary's encode may hand back its input.

import type { Tensor } from '@sfc/core';

export function tidy(fn: (tmp: <T extends Tensor>(t: T) => T) => Tensor, keep: readonly Tensor[] = []): Tensor {
  const temps: Tensor[] = [];
  let result: Tensor | undefined;
  try {
    result = fn((t) => { temps.push(t); return t; });
    return result;
  } finally {
    for (const t of temps) if (t !== result && !keep.includes(t) && !t.isDisposed) t.dispose();
  }
}
