import { describe, expect, it } from 'vitest';
import { InputError } from '@sfc/core';
import { bar, cell, describeError, fit, percent, showToken, signed } from './format.js';

describe('format', () => {
  it('signs numbers so columns line up', () => {
    expect(signed(0.2582)).toBe('+0.258');
    expect(signed(-0.1146)).toBe('-0.115');
    expect(signed(-0.0001)).toBe('+0.000'); // no "-0.000"
    expect(signed(12.345)).toBe('+12.3');
    expect(signed(-250.2)).toBe('-250');
    expect(signed(0.25, 4)).toBe('+0.2500');
  });

  it('draws bars in eighths of a cell, at least a sliver for nonzero values', () => {
    expect(bar(1, 1, 4)).toBe('████');
    expect(bar(-0.5, 1, 4)).toBe('██');
    expect(bar(0.3125, 1, 2)).toBe('▋'); // 5 eighths
    expect(bar(1e-9, 1, 4)).toBe('▏');
    expect(bar(0, 1, 4)).toBe('');
    expect(bar(2, 1, 3)).toBe('███'); // clamped
    expect(bar(1, 0, 3)).toBe('');
  });

  it('cuts and pads cells to a width', () => {
    expect(fit('resid_0/116', 6)).toBe('resid…');
    expect(fit('abc', 3)).toBe('abc');
    expect(cell('ab', 4)).toBe('ab  ');
    expect(cell('abcdef', 4)).toBe('abc…');
    expect(cell('x', 0)).toBe('');
  });

  it('shows tokens and probabilities', () => {
    expect(showToken(' are')).toBe('·are');
    expect(showToken('a\nb\t')).toBe('a\\nb\\t');
    expect(percent(Math.log(0.607))).toBe('60.7%');
    expect(percent(Math.log(0.0821))).toBe('8.21%');
    expect(percent(0)).toBe('100%');
  });

  it('describes failures in one line, with the hint of typed errors', () => {
    expect(describeError(new InputError('bad answer', 'use one token'))).toBe('bad answer — use one token');
    expect(describeError(new InputError('bad answer'))).toBe('bad answer');
    expect(describeError(new Error('first\nsecond'))).toBe('first');
    expect(describeError('text')).toBe('text');
  });
});
