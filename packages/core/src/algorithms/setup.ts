// Checks done before any algorithm runs: every submodule has a dictionary of its width,
// the backend can do what the method needs, batches fit the aggregation. Failing here costs
// nothing; failing after an hour of IG costs an hour.

import { requireGrad } from '../backend.js';
import type { Dictionary } from '../dictionary.js';
import { InputError, NotFoundError, ShapeError } from '../errors.js';
import type { Model } from '../model/model.js';
import type { PromptBatch } from '../data/batches.js';
import type { Metric } from './metrics.js';

export type DictionarySet = ReadonlyMap<string, Dictionary>;

export interface ResolvedSubmodule {
  readonly name: string;
  readonly dict: Dictionary;
}

/** Dictionaries by canonical submodule name (keys may be any alias), in forward order, width-checked. */
export function resolveDictionaries(model: Model, dictionaries: DictionarySet, submodules?: readonly string[]): ResolvedSubmodule[] {
  const byName = new Map<string, Dictionary>();
  for (const [key, dict] of dictionaries) byName.set(model.submodule(key).name, dict);
  const wanted = submodules ? submodules.map((s) => model.submodule(s).name) : model.submodules.map((s) => s.name);
  const order = new Map(model.submodules.map((s) => [s.name, s.order]));
  const names = [...new Set(wanted)].sort((a, b) => order.get(a)! - order.get(b)!);
  return names.map((name) => {
    // The submodule's own width: Gemma's attn_l is the concatenated heads (nHeads × headDim).
    const d = model.submodule(name).width ?? model.spec.dims.dModel;
    const dict = byName.get(name);
    if (!dict) {
      throw new NotFoundError(`no dictionary for submodule ${name}`,
        `dictionaries were given for: ${[...byName.keys()].join(', ') || 'none'}; add one for ${name} or restrict the submodules`);
    }
    if (dict.dIn !== d) {
      throw new ShapeError(`the dictionary for ${name} has input width ${dict.dIn}, but ${name} is ${d} wide`,
        'the dictionaries were trained on another model; use SAEs for this model');
    }
    return { name, dict };
  });
}

export function requirePositiveInt(value: number, what: string, hint?: string): void {
  if (!Number.isInteger(value) || value < 1) throw new InputError(`${what} must be a positive integer, got ${value}`, hint);
}

/** Batches must exist, share one length when positions are kept, and carry patches when the metric is paired. */
export function checkBatches(batches: readonly PromptBatch[], opts: { aggregation: 'sum' | 'none'; metric?: Metric; needPatch?: boolean }): void {
  if (batches.length === 0 || batches.every((b) => b.size === 0)) throw new InputError('no examples to run on', 'give at least one example');
  if (opts.aggregation === 'none') {
    // Positions counted from the start would put different tokens of different prompts at one
    // position; sfc refuses rather than pick an alignment (docs/concepts.md).
    const lens = promptLengths(batches);
    if (lens.length > 1) {
      throw new InputError(`aggregation 'none' keeps positions, but the examples have ${lens.length} different token lengths (${lens.join(', ')})`,
        'keep only the shortest length class (--min-length-only, the default for pairs), select prompts of one length, or use --aggregation sum');
    }
  }
  const paired = batches.every((b) => b.patch && b.patchAnswer);
  const mixed = !paired && batches.some((b) => b.patch);
  if (mixed) throw new InputError('some batches have patch prompts and some do not', 'run paired and single-prompt data separately');
  if ((opts.metric?.paired || opts.needPatch) && !paired) {
    throw new InputError(`${opts.metric ? `the metric '${opts.metric.name}'` : 'this computation'} needs patch prompts`, 'give paired data (patch_prefix, patch_answer)');
  }
}

/** The distinct prompt token lengths over batches (padded rows count by their real length), ascending. */
export function promptLengths(batches: readonly PromptBatch[]): number[] {
  const lens = new Set<number>();
  for (const b of batches) {
    if (b.lengths) for (const l of b.lengths) lens.add(l);
    else if (b.size > 0) lens.add(b.seq);
  }
  return [...lens].sort((a, b) => a - b);
}

export function checkGrad(model: Model, what: string): void {
  requireGrad(model.backend, what);
}
