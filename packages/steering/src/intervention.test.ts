import { describe, expect, it } from 'vitest';
import { InputError } from '@sfc/core';
import { parseFeatureId } from './feature-ref.js';
import {
  ablate, add, clamp, describeIntervention, formatPositions, interventionsFor, opStrength, parseOp, parsePositions, patch, scale, withStrength,
} from './intervention.js';
import { checkPositions, positionMask } from './positions.js';

describe('ops', () => {
  it('parses the CLI forms', () => {
    expect(parseOp('scale', '4')).toEqual(scale(4));
    expect(parseOp('clamp', 0)).toEqual(clamp(0));
    expect(parseOp('add', '-2.5')).toEqual(add(-2.5));
    expect(parseOp('ablate')).toEqual(ablate('zero'));
    expect(parseOp('ablate', 'mean')).toEqual(ablate('mean'));
    expect(parseOp('patch')).toEqual(patch());
    expect(parseOp('patch', '0.5')).toEqual(patch(0.5));
    for (const [k, v] of [['scale', undefined], ['scale', 'x'], ['clamp', 'Infinity'], ['ablate', 'resample'], ['patch', 'half'], ['boost', '1']] as const) {
      expect(() => parseOp(k, v)).toThrow(InputError);
    }
  });

  it('strength is the factor, value, α or patch fraction (1 by default); ablate has none', () => {
    expect([scale(2), clamp(3), add(-1), ablate(), patch(), patch(0.25)].map(opStrength)).toEqual([2, 3, -1, undefined, 1, 0.25]);
    expect(withStrength(scale(2), 5)).toEqual(scale(5));
    expect(withStrength(patch(), 0.5)).toEqual(patch(0.5));
    expect(() => withStrength(ablate('mean'), 5)).toThrow(InputError);
  });

  it('a position-resolved node is steered at its own position only', () => {
    const ivs = interventionsFor([parseFeatureId('resid_1/3'), parseFeatureId('resid_1/4@2'), parseFeatureId('attn_0/err')], scale(0), { kind: 'prompt' });
    expect(ivs.map(describeIntervention)).toEqual(['resid_1/3 scale(0) at prompt', 'resid_1/4 scale(0) at 2', 'attn_0/err scale(0) at prompt']);
  });
});

describe('positions', () => {
  it('parses all, prompt, last, lists and from-k', () => {
    expect(parsePositions('all')).toEqual({ kind: 'all' });
    expect(parsePositions('prompt')).toEqual({ kind: 'prompt' });
    expect(parsePositions('last')).toEqual({ kind: 'list', positions: [-1] });
    expect(parsePositions('3, 5,-1,3')).toEqual({ kind: 'list', positions: [3, 5, -1] });
    expect(parsePositions('4:')).toEqual({ kind: 'from', start: 4 });
    expect(parsePositions('-2:')).toEqual({ kind: 'from', start: -2 });
    for (const bad of ['', 'first', '1.5', '3:5', '1,,2']) expect(() => parsePositions(bad)).toThrow(InputError);
    for (const s of ['all', 'prompt', '3,5,-1', '4:', '-1:']) expect(formatPositions(parsePositions(s))).toBe(s);
  });

  it('masks are anchored to the prompt, also when the sequence grows past it', () => {
    const m = (spec: string, seq: number, prompt: number) => [...positionMask(parsePositions(spec), seq, prompt)].join('');
    expect(m('all', 6, 4)).toBe('111111');
    expect(m('prompt', 6, 4)).toBe('111100');
    expect(m('prompt', 3, 4)).toBe('111');
    expect(m('1,-1', 6, 4)).toBe('010100');
    expect(m('9', 6, 4)).toBe('000000');
    expect(m('4:', 6, 4)).toBe('000011');
    expect(m('-1:', 6, 4)).toBe('000111');
    expect(m('-9:', 6, 4)).toBe('111111');
  });

  it('a window offset…offset+seq−1 of the sequence (a cached step) gets that slice of the full mask', () => {
    for (const spec of ['all', 'prompt', '1,-1,5', '9', '4:', '-1:', '-9:', '6:']) {
      const p = parsePositions(spec);
      const full = [...positionMask(p, 10, 4)];
      for (let offset = 0; offset < 10; offset++) {
        for (let seq = 1; offset + seq <= 10; seq++) {
          expect([...positionMask(p, seq, 4, offset)], `${spec} @${offset}+${seq}`).toEqual(full.slice(offset, offset + seq));
        }
      }
    }
  });

  it('positions that can never be reached fail loudly', () => {
    expect(() => checkPositions(parsePositions('5'), 4, 4, 'x')).toThrow(/position 5 out of range/);
    expect(() => checkPositions(parsePositions('-5'), 4, 6, 'x')).toThrow(InputError);
    expect(() => checkPositions(parsePositions('6:'), 4, 6, 'x')).toThrow(/select nothing/);
    expect(() => checkPositions(parsePositions('5,-4'), 4, 6, 'x')).not.toThrow();
    expect(() => checkPositions(parsePositions('all'), 4, 4, 'x')).not.toThrow();
  });
});
