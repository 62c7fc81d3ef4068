import { describe, expect, it } from 'vitest';
import type { TopContext } from '@sfc/core';
import { contextParts } from './top-contexts.js';

describe('contextParts', () => {
  it('shows a context as plain text: newlines as ⏎, control and bidi characters escaped', () => {
    const c = { value: 1, at: 1, tokens: ['a\n\x1b[2J', '\u202eevil\x07', ' b\r\x9b'] } as unknown as TopContext;
    const parts = contextParts(c, 80);
    expect(parts).toEqual(['a⏎\\x1b[2J', '\\u202eevil\\x07', ' b \\x9b']);
    expect(parts.join('')).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202a-\u202e]/);
  });
});
