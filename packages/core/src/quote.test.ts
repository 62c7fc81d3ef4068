import { describe, expect, it } from 'vitest';
import { escapeControls, quoteName, sanitizeMessage, showValue } from './quote.js';

describe('quoteName', () => {
  it('escapes terminal escapes (ESC, OSC, BEL, C1) and bidi overrides', () => {
    const q = quoteName('a\x1b]0;pwned\x07b\x9bc\u202ed\ne');
    expect(q).toBe("'a\\x1b]0;pwned\\x07b\\x9bc\\u202ed\\ne'");
    expect(q).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
  });
  it('keeps printable text, quotes included escaped', () => {
    expect(quoteName("embed_in.weight")).toBe("'embed_in.weight'");
    expect(quoteName("it's")).toBe("'it\\'s'");
    expect(quoteName('Ġthe 🤗')).toBe("'Ġthe 🤗'");
  });
  it('caps long names with an ellipsis and the length', () => {
    const q = quoteName('x'.repeat(20_000_000));
    expect(q.length).toBeLessThan(200);
    expect(q).toContain('…');
    expect(q).toContain('(20000000 characters)');
  });
  it('shows non-strings by type', () => {
    expect(quoteName(undefined)).toBe('nothing');
    expect(quoteName(3)).toBe('a number');
  });
});

describe('sanitizeMessage', () => {
  it('keeps newlines, escapes other controls, caps the length', () => {
    expect(sanitizeMessage('a\nb\x1b[31mc')).toBe('a\nb\\x1b[31mc');
    expect(sanitizeMessage('y'.repeat(10_000)).length).toBeLessThan(4100);
  });
  it('escapeControls leaves plain text alone', () => {
    expect(escapeControls('plain text')).toBe('plain text');
  });
});

describe('showValue', () => {
  it('numbers as numbers, strings quoted, other JSON capped and escaped', () => {
    expect(showValue(Infinity)).toBe('Infinity');
    expect(showValue(1e9)).toBe('1000000000');
    expect(showValue('a\x1bb')).toBe("'a\\x1bb'");
    expect(showValue(null)).toBe('null');
    expect(showValue({ a: '\x9b' })).toBe('{"a":"\\x9b"}');
    expect(showValue(Array(10_000).fill(1)).length).toBeLessThan(200);
  });
});
