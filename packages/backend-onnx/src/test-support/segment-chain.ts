// Helpers of the segment-runtime tests: a whole chain run segment by segment, and a relative comparison.

import { expect } from 'vitest';
import type { ModelSpec, SegmentRuntime, Tensor, TensorOps } from '@sfc/core';

/**
 * Every segment's output along the chain, and the input cotangents of every non-embed segment's
 * VJP for the cotangent `dyOf(ops, y)` (default: ones).
 */
export async function segmentChain(ops: TensorOps, rt: SegmentRuntime, spec: ModelSpec, ids: Tensor,
  dyOf: (ops: TensorOps, y: Tensor) => Tensor = (o, y) => o.fill(y.shape, 1)): Promise<Float32Array[]> {
  const values = new Map<string, Tensor>();
  const out: Float32Array[] = [];
  for (const seg of spec.segments) {
    const inputs = seg.kind === 'embed' ? [ids] : seg.inputs.map((n) => values.get(n)!);
    const y = await rt.forward(seg.name, inputs);
    values.set(seg.name, y);
    out.push(await y.data() as Float32Array);
    if (seg.kind !== 'embed') {
      for (const g of await rt.vjp(seg.name, inputs, dyOf(ops, y))) out.push(await g.data() as Float32Array);
    }
  }
  return out;
}

/** |a − b| ≤ rel · max |b|, element by element. */
export function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, rel: number): void {
  expect(a.length).toBe(b.length);
  const scale = Math.max(1e-30, ...Array.from(b, Math.abs));
  let worst = 0;
  for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j]! - b[j]!) / scale);
  expect(worst).toBeLessThan(rel);
}
