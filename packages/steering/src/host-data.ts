// Reading tensors back to the host as the typed array the caller expects.

import type { Tensor } from '@sfc/core';

export async function f32(t: Tensor): Promise<Float32Array> {
  const v = await t.data();
  return v instanceof Float32Array ? v : Float32Array.from(v);
}

export async function i32(t: Tensor): Promise<Int32Array> {
  const v = await t.data();
  return v instanceof Int32Array ? v : Int32Array.from(v);
}
