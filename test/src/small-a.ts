// Shared setup for the circuit-discovery parity tests on fixtures/small-a: a backend from
// backends.ts, the model, its SAEs, the 40 examples as one batch (useSmallA), and the PyTorch
// reference outputs, as JSON and as the layouts sfc's results are compared in.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { batchExamples, Model, selectExamples, type Backend, type Dictionary, type NodeEffects, type PromptBatch } from '@sfc/core';
import { loadDictionarySet } from '@sfc/dictionaries';
import type { OpenBackend, TestBackend } from './backends.js';
import { SMALL_A } from './paths.js';

export interface SmallA {
  backend: Backend;
  model: Model;
  dictionaries: Map<string, Dictionary>;
  batches: PromptBatch[];
  opened: OpenBackend;
}

async function loadSmallA(which: TestBackend): Promise<SmallA> {
  const opened = await which.open();
  const backend = opened.backend;
  const model = await Model.load(SMALL_A, backend);
  const dictionaries = await loadDictionarySet(join(SMALL_A, 'saelens'), model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel });
  // The reference runs the file's 40 examples in file order as one batch.
  const sel = selectExamples(readFileSync(join(SMALL_A, 'data.jsonl'), 'utf8'), model.tokenizer, { numExamples: 40, seed: null });
  return { backend, model, dictionaries, batches: batchExamples(sel.examples, 40), opened };
}

async function disposeSmallA(s: SmallA | undefined): Promise<void> {
  if (!s) return;
  for (const d of s.dictionaries.values()) d.dispose();
  s.model.dispose();
  await s.opened.close();
}

/**
 * small-a on `which` for the tests of the enclosing describe (or file): loaded in a beforeAll
 * into the returned object, disposed in an afterAll.
 */
export function useSmallA(which: TestBackend): SmallA {
  const s = {} as SmallA;
  let loaded: SmallA | undefined;
  beforeAll(async () => { loaded = Object.assign(s, await loadSmallA(which)); });
  afterAll(async () => { await disposeSmallA(loaded); });
  return s;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export function ref(name: string): Json {
  return JSON.parse(readFileSync(join(SMALL_A, 'ref', `${name}.json`), 'utf8'));
}

/** A reference file's node effects (`ig_sum`: [F] + error; `ig_none`: [s][F] + [s]) as sfc's NodeEffects. */
export function refNodeEffects(name: string): Map<string, NodeEffects> {
  const expected = ref(name);
  const out = new Map<string, NodeEffects>();
  for (const sub of expected.submodules as string[]) {
    const { act, err } = expected.nodes[sub];
    const perPosition = Array.isArray(err);
    const rows: number[][] = perPosition ? act : [act];
    out.set(sub, {
      submodule: sub, dSae: rows[0]!.length, positions: perPosition ? rows.length : null,
      features: Float64Array.from(rows.flat()), error: Float64Array.from(perPosition ? err : [err]),
    });
  }
  return out;
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
