// Interventions as plain data: which feature (or SAE error node) of which submodule, what to do
// to its value (the op), and at which token positions. Also the string forms the CLI parses
// (`--op scale --value 4`, `--positions prompt|all|3,5,-1|4:`).

import { InputError } from '@sfc/core';
import { featureId, featureIndex, featureRef, type FeatureIndex, type FeatureRef } from './feature-ref.js';

/**
 * What happens to a feature's activation f at a selected position (f' is the new value):
 * scale f' = k·f; clamp f' = v; add f' = f + α (adds α × the decoder row); ablate f' = 0 or the
 * mean of f over a reference dataset; patch f' = f on another prompt at the same position, or with
 * a strength s the interpolation f' = f + s·(f_patch − f) (s = 1, the default, is the full patch).
 */
export type SteerOp =
  | { readonly kind: 'scale'; readonly factor: number }
  | { readonly kind: 'clamp'; readonly value: number }
  | { readonly kind: 'add'; readonly alpha: number }
  | { readonly kind: 'ablate'; readonly mode: 'zero' | 'mean' }
  | { readonly kind: 'patch'; readonly strength?: number };

export type OpKind = SteerOp['kind'];
export const OP_KINDS: readonly OpKind[] = ['scale', 'clamp', 'add', 'ablate', 'patch'];

/**
 * Token positions an intervention applies to. Negative numbers in `list` and `from` count from
 * the end of the prompt (-1 = its last token), so they mean the same thing during generation,
 * when the sequence grows past the prompt.
 */
export type Positions =
  | { readonly kind: 'all' }
  | { readonly kind: 'prompt' }
  | { readonly kind: 'list'; readonly positions: readonly number[] }
  | { readonly kind: 'from'; readonly start: number };

export interface Intervention {
  /** Canonical submodule name (`resid_3`). */
  readonly submodule: string;
  readonly feature: FeatureIndex;
  readonly op: SteerOp;
  readonly positions: Positions;
}

export const scale = (factor: number): SteerOp => ({ kind: 'scale', factor });
export const clamp = (value: number): SteerOp => ({ kind: 'clamp', value });
export const add = (alpha: number): SteerOp => ({ kind: 'add', alpha });
export const ablate = (mode: 'zero' | 'mean' = 'zero'): SteerOp => ({ kind: 'ablate', mode });
export const patch = (strength?: number): SteerOp => (strength === undefined ? { kind: 'patch' } : { kind: 'patch', strength });

export const ALL_POSITIONS: Positions = { kind: 'all' };

/**
 * One intervention per feature. A position-resolved node (`resid_3/12@4`, from a circuit with
 * aggregation none) is steered at its own position only, whatever `positions` says.
 */
export function interventionsFor(features: readonly FeatureRef[], op: SteerOp, positions: Positions = ALL_POSITIONS): Intervention[] {
  return features.map((f) => ({
    submodule: f.submodule,
    feature: featureIndex(f),
    op,
    positions: f.pos === null ? positions : { kind: 'list', positions: [f.pos] },
  }));
}

/** The number a sweep varies: the scale factor, clamp value, added α or patch strength (none for ablate). */
export function opStrength(op: SteerOp): number | undefined {
  switch (op.kind) {
    case 'scale': return op.factor;
    case 'clamp': return op.value;
    case 'add': return op.alpha;
    case 'patch': return op.strength ?? 1;
    default: return undefined;
  }
}

/** The same op with another strength; ablate has none. */
export function withStrength(op: SteerOp, strength: number): SteerOp {
  switch (op.kind) {
    case 'scale': return scale(strength);
    case 'clamp': return clamp(strength);
    case 'add': return add(strength);
    case 'patch': return patch(strength);
    default:
      throw new InputError(`the ${op.kind} op has no strength to sweep`, 'sweep scale, clamp, add or patch');
  }
}

function finite(value: number, what: string): number {
  if (!Number.isFinite(value)) throw new InputError(`${what} must be a finite number, got ${value}`);
  return value;
}

function parseNumber(text: string | number | undefined, what: string, hint: string): number {
  if (text === undefined || text === '') throw new InputError(`${what} needs a value`, hint);
  const v = typeof text === 'number' ? text : Number(text.trim());
  if (Number.isNaN(v)) throw new InputError(`${what}: '${text}' is not a number`, hint);
  return finite(v, what);
}

/**
 * The CLI form: `--op scale --value 4`, `--op clamp --value 0`, `--op add --value -2`,
 * `--op ablate [--value zero|mean]`, `--op patch [--value strength]`.
 */
export function parseOp(kind: string, value?: string | number): SteerOp {
  switch (kind.trim()) {
    case 'scale': return scale(parseNumber(value, 'scale', 'give the factor: --op scale --value 4'));
    case 'clamp': return clamp(parseNumber(value, 'clamp', 'give the value: --op clamp --value 0'));
    case 'add': return add(parseNumber(value, 'add', 'give α (multiples of the decoder row): --op add --value 2'));
    case 'ablate': {
      const mode = value === undefined || value === '' ? 'zero' : String(value).trim();
      if (mode !== 'zero' && mode !== 'mean') throw new InputError(`ablate: unknown mode '${value}'`, 'use --value zero or --value mean');
      return ablate(mode);
    }
    case 'patch':
      // The values come from the patch prompt; the optional value moves only part of the way there.
      return value === undefined || value === '' ? patch()
        : patch(parseNumber(value, 'patch', 'give the strength: --op patch --value 0.5 moves each feature halfway to its patch value (default 1: all the way)'));
    default:
      throw new InputError(`unknown op '${kind}'`, `ops: ${OP_KINDS.join(', ')}`);
  }
}

function parseInt32(text: string, what: string): number {
  const t = text.trim();
  if (!/^-?\d+$/.test(t)) throw new InputError(`${what}: '${text}' is not an integer position`, POSITIONS_HINT);
  return Number(t);
}

const POSITIONS_HINT = "positions: all, prompt, a list like 3,5,-1 (negative counts from the prompt's end), or K: for K and every later position (e.g. -1: = last prompt token and all generated ones)";

/** `all`, `prompt`, `3,5,-1`, `last` (= -1), `K:` (from K on). */
export function parsePositions(spec: string): Positions {
  const s = spec.trim();
  if (s === 'all') return ALL_POSITIONS;
  if (s === 'prompt') return { kind: 'prompt' };
  if (s === 'last') return { kind: 'list', positions: [-1] };
  if (s.endsWith(':')) return { kind: 'from', start: parseInt32(s.slice(0, -1), 'positions') };
  if (s === '') throw new InputError('empty positions', POSITIONS_HINT);
  const list = s.split(',').map((p) => parseInt32(p, 'positions'));
  return { kind: 'list', positions: [...new Set(list)] };
}

export function formatPositions(p: Positions): string {
  switch (p.kind) {
    case 'all': return 'all';
    case 'prompt': return 'prompt';
    case 'list': return p.positions.join(',');
    case 'from': return `${p.start}:`;
  }
}

export function formatOp(op: SteerOp): string {
  switch (op.kind) {
    case 'scale': return `scale(${op.factor})`;
    case 'clamp': return `clamp(${op.value})`;
    case 'add': return `add(${op.alpha})`;
    case 'ablate': return `ablate(${op.mode})`;
    case 'patch': return op.strength === undefined ? 'patch' : `patch(${op.strength})`;
  }
}

export function describeIntervention(i: Intervention): string {
  return `${featureId(featureRef(i.submodule, i.feature))} ${formatOp(i.op)} at ${formatPositions(i.positions)}`;
}
