// Features from a circuit: an `sfc.circuit/v1` file (parsed and checked by @sfc/core), selected
// by top-k |effect| or an effect threshold and filtered by submodule, sign and error nodes.
// Other circuit formats come in through a CircuitReader that turns a file into circuit data:
// feature-circuits `.pt` circuits are read by @sfc/dictionaries' converter, which the CLI passes
// in here (steering depends on core only, so it cannot import that reader itself).

import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { InputError, NotFoundError, parseCircuit, parseSubmoduleName, ShapeError, type Circuit, type Dictionary, type Model } from '@sfc/core';
import { featureRef, type FeatureRef } from '../feature-ref.js';

/** Turns a circuit file sfc cannot read as JSON (e.g. a feature-circuits `.pt`) into `sfc.circuit/v1` data. */
export interface CircuitReader {
  readonly name: string;
  canRead(path: string): boolean;
  /** The circuit as `sfc.circuit/v1` data (it is checked like a file). */
  read(path: string): Promise<unknown>;
}

export interface CircuitSelection {
  /** Keep the k nodes of largest |effect| (after the filters and the threshold). */
  readonly topK?: number;
  /** Keep nodes with |effect| > threshold. */
  readonly threshold?: number;
  /** Only these submodules. */
  readonly submodules?: readonly string[];
  readonly sign?: 'positive' | 'negative' | 'any';
  /** Keep SAE error nodes (default false: clamp and add do not apply to them). */
  readonly includeErrors?: boolean;
}

export type SelectedFeature = FeatureRef & { readonly effect: number };

/** Reads an `sfc.circuit/v1` file, or any format one of `readers` accepts. */
export async function readCircuitFile(path: string, readers: readonly CircuitReader[] = []): Promise<Circuit> {
  if (!existsSync(path)) throw new NotFoundError(`circuit file ${path} does not exist`, 'give the file written by sfc discover (or sfc convert)');
  const reader = readers.find((r) => r.canRead(path));
  if (reader) return parseCircuit(JSON.stringify(await reader.read(path)), `${path} (via ${reader.name})`);
  if (/\.(pt|pth|bin)$/i.test(path)) {
    throw new InputError(`${path} looks like a PyTorch (feature-circuits) circuit, which needs the converter of @sfc/dictionaries`,
      'convert it first: sfc convert FILE.pt --out circuit.json, then pass circuit.json');
  }
  return parseCircuit(await readFile(path, 'utf8'), path);
}

/** The circuit's feature (and, on request, error) nodes that pass the filters, threshold and top-k. */
export function selectCircuitFeatures(circuit: Circuit, selection: CircuitSelection = {}): SelectedFeature[] {
  const { topK, threshold, submodules, sign = 'any', includeErrors = false } = selection;
  if (topK !== undefined && (!Number.isInteger(topK) || topK < 1)) throw new InputError(`top-k must be a positive integer, got ${topK}`, 'use e.g. --top-k 20');
  if (threshold !== undefined && !(threshold >= 0)) throw new InputError(`the threshold must be a number ≥ 0, got ${threshold}`);
  if (submodules) {
    const bad = submodules.filter((s) => !parseSubmoduleName(s));
    if (bad.length) throw new InputError(`unknown submodule${bad.length > 1 ? 's' : ''} ${bad.join(', ')} in the filter`, 'submodules are embed, attn_L, mlp_L, resid_L');
    const absent = submodules.filter((s) => !circuit.submodules.includes(s));
    if (absent.length) throw new InputError(`the circuit has no submodule ${absent.join(', ')}`, `its submodules: ${circuit.submodules.join(', ')}`);
  }
  const subs = submodules ? new Set(submodules) : undefined;
  let nodes: SelectedFeature[] = [];
  for (const n of circuit.nodes) {
    if (n.index === null || n.effect === null) continue; // the metric node y
    const isError = n.index === circuit.dSae[n.submodule];
    const e = n.effect;
    if ((!includeErrors && isError) || (subs && !subs.has(n.submodule))) continue;
    if ((sign === 'positive' && !(e > 0)) || (sign === 'negative' && !(e < 0))) continue;
    if (threshold !== undefined && !(Math.abs(e) > threshold)) continue;
    nodes.push({ ...featureRef(n.submodule, isError ? 'err' : n.index, n.pos), effect: e });
  }
  if (topK !== undefined) {
    // Stable: equal |effect| keeps file order.
    nodes = nodes.map((n, i) => ({ n, i })).sort((a, b) => Math.abs(b.n.effect) - Math.abs(a.n.effect) || a.i - b.i).slice(0, topK).map((x) => x.n);
  }
  return nodes;
}

/**
 * Throws when the loaded dictionaries are not the ones the circuit was discovered with (another
 * width for a submodule the circuit names): its feature indices would mean other features.
 */
export function checkCircuitDictionaries(circuit: Circuit, model: Model, dictionaries: ReadonlyMap<string, Dictionary>): void {
  const widths = new Map<string, number>();
  for (const [key, d] of dictionaries) widths.set(model.submodule(key).name, d.dSae);
  const bad = circuit.submodules.filter((s) => widths.has(s) && widths.get(s) !== circuit.dSae[s]);
  if (bad.length) {
    throw new ShapeError(`the circuit was discovered with other dictionaries: ${bad.map((s) => `${s} has ${circuit.dSae[s]} features in the circuit, ${widths.get(s)} loaded`).join('; ')}`,
      'load the dictionaries the circuit was discovered with');
  }
}
