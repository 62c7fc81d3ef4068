import { describe, expect, it } from 'vitest';
import { BackendError } from '../errors.js';
import { stringifyFinite } from './finite-json.js';

describe('stringifyFinite (issue 16: never write a file sfc cannot read back)', () => {
  it('writes finite values as JSON.stringify does', () => {
    const v = { a: [1, 2.5, { b: -3 }], c: null, d: 'x' };
    expect(stringifyFinite(v, 'effects')).toBe(JSON.stringify(v));
  });

  it('refuses NaN and Infinity, naming the JSON path', () => {
    const err = (() => { try { stringifyFinite({ effects: { resid_0: { features: [0, 1, NaN], error: 0 } } }, 'effects'); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toBe('effects: effects.resid_0.features[2] is NaN; nothing was written (JSON has no NaN or Infinity)');
    expect(() => stringifyFinite({ metricClean: Infinity }, 'circuit')).toThrow(/circuit: metricClean is Infinity/);
  });
});
