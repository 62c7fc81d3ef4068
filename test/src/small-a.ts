// Shared setup for the circuit-discovery parity tests on fixtures/small-a: the tfjs backend
// (wasm, the fast one on CPU), the model, its SAEs, the 40 examples as one batch, and the
// PyTorch reference outputs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { batchExamples, Model, selectExamples, type Backend, type Dictionary, type PromptBatch } from '@sfc/core';
import { tfjsBackend } from '@sfc/backend-tfjs';
import { loadDictionarySet } from '@sfc/dictionaries';
import { SMALL_A } from './paths.js';

export interface SmallA {
  backend: Backend;
  model: Model;
  dictionaries: Map<string, Dictionary>;
  batches: PromptBatch[];
}

export async function loadSmallA(): Promise<SmallA> {
  const backend = await tfjsBackend({ flavor: 'wasm' });
  const model = await Model.load(SMALL_A, backend);
  const dictionaries = await loadDictionarySet(join(SMALL_A, 'saelens'), model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel });
  // The reference runs the file's 40 examples in file order as one batch.
  const sel = selectExamples(readFileSync(join(SMALL_A, 'data.jsonl'), 'utf8'), model.tokenizer, { numExamples: 40, seed: null });
  return { backend, model, dictionaries, batches: batchExamples(sel.examples, 40) };
}

export async function disposeSmallA(s: SmallA | undefined): Promise<void> {
  if (!s) return;
  for (const d of s.dictionaries.values()) d.dispose();
  s.model.dispose();
  await s.backend.dispose();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export function ref(name: string): Json {
  return JSON.parse(readFileSync(join(SMALL_A, 'ref', `${name}.json`), 'utf8'));
}

/** max |a − r| / max |r| over two equally long vectors. */
export function relMaxError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} ≠ ${expected.length}`);
  let maxDiff = 0, maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i]! - expected[i]!));
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}

/** Node vector [act..., err] (sum) or per position [act_s..., err_s] flattened (none), reference layout. */
export function refNodeVector(node: Json): number[] {
  if (typeof node.err === 'number') return [...node.act, node.err];
  return (node.act as number[][]).flatMap((row, s) => [...row, node.err[s]]);
}

export function ourNodeVector(features: Float64Array, error: Float64Array, dSae: number, positions: number | null): number[] {
  const P = positions ?? 1;
  const out: number[] = [];
  for (let p = 0; p < P; p++) out.push(...features.subarray(p * dSae, (p + 1) * dSae), error[p]!);
  return out;
}
