// The steering panel's settings as data: which op (scale, clamp, ablate, add), its strength per
// op, and the step the +/- keys move it by. Turned into @sfc/steering's SteerOp only when a
// run is requested, so the panel never holds an op it cannot describe.

import { ablate, add, clamp, scale, type SteerOp } from '@sfc/steering';

export const TUI_OPS = ['scale', 'clamp', 'ablate', 'add'] as const;
export type TuiOp = typeof TUI_OPS[number];
export type StrengthOp = Exclude<TuiOp, 'ablate'>;

export interface SteerSettings {
  readonly op: TuiOp;
  readonly strength: Readonly<Record<StrengthOp, number>>;
}

/** Scale ×2 doubles the features; clamp 0 switches them off; add 2 pushes along the decoder rows. */
export const DEFAULT_SETTINGS: SteerSettings = { op: 'scale', strength: { scale: 2, clamp: 0, add: 2 } };

export const STRENGTH_STEP = 0.5;

export function nextOp(op: TuiOp): TuiOp {
  return TUI_OPS[(TUI_OPS.indexOf(op) + 1) % TUI_OPS.length]!;
}

/** The settings with the current op's strength moved by `steps` × STRENGTH_STEP (ablate has none). */
export function bumpStrength(s: SteerSettings, steps: number): SteerSettings {
  if (s.op === 'ablate') return s;
  // Rounded to hundredths so repeated steps never show 0.30000000000000004.
  const v = Math.round((s.strength[s.op] + steps * STRENGTH_STEP) * 100) / 100;
  return { ...s, strength: { ...s.strength, [s.op]: v } };
}

export function toSteerOp(s: SteerSettings): SteerOp {
  switch (s.op) {
    case 'scale': return scale(s.strength.scale);
    case 'clamp': return clamp(s.strength.clamp);
    case 'add': return add(s.strength.add);
    case 'ablate': return ablate('zero');
  }
}

/** `scale ×2`, `clamp =0`, `add +2·dec`, `ablate →0`. */
export function describeSettings(s: SteerSettings): string {
  switch (s.op) {
    case 'scale': return `scale ×${fmt(s.strength.scale)}`;
    case 'clamp': return `clamp =${fmt(s.strength.clamp)}`;
    case 'add': return `add ${s.strength.add >= 0 ? '+' : ''}${fmt(s.strength.add)}·dec`;
    case 'ablate': return 'ablate →0';
  }
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/0$/, '');
}
