import { describe, expect, it } from 'vitest';
import { bumpStrength, DEFAULT_SETTINGS, describeSettings, nextOp, toSteerOp, TUI_OPS } from './steer-settings.js';

describe('steering settings', () => {
  it('cycles the four ops', () => {
    expect(TUI_OPS.map(nextOp)).toEqual(['clamp', 'ablate', 'add', 'scale']);
  });

  it('moves the strength in steps of 0.5 without float noise; ablate has none', () => {
    let s = DEFAULT_SETTINGS;
    for (let i = 0; i < 7; i++) s = bumpStrength({ ...s, op: 'clamp' }, -1);
    expect(s.strength.clamp).toBe(-3.5);
    s = { op: 'scale', strength: { scale: 0.1, clamp: 0, add: 0 } };
    s = bumpStrength(bumpStrength(s, 1), 1);
    expect(s.strength.scale).toBe(1.1);
    const ablate = { ...DEFAULT_SETTINGS, op: 'ablate' as const };
    expect(bumpStrength(ablate, 1)).toBe(ablate);
  });

  it('turns into @sfc/steering ops and one-line descriptions', () => {
    const s = { op: 'scale' as const, strength: { scale: 2.5, clamp: -1, add: 0.25 } };
    expect(toSteerOp(s)).toEqual({ kind: 'scale', factor: 2.5 });
    expect(toSteerOp({ ...s, op: 'clamp' })).toEqual({ kind: 'clamp', value: -1 });
    expect(toSteerOp({ ...s, op: 'add' })).toEqual({ kind: 'add', alpha: 0.25 });
    expect(toSteerOp({ ...s, op: 'ablate' })).toEqual({ kind: 'ablate', mode: 'zero' });
    expect(describeSettings(s)).toBe('scale ×2.5');
    expect(describeSettings({ ...s, op: 'clamp' })).toBe('clamp =-1');
    expect(describeSettings({ ...s, op: 'add' })).toBe('add +0.25·dec');
    expect(describeSettings({ ...s, op: 'add', strength: { ...s.strength, add: -2 } })).toBe('add -2·dec');
    expect(describeSettings({ ...s, op: 'ablate' })).toBe('ablate →0');
  });
});
