import { describe, expect, it } from 'vitest';
import { CapabilityError, EXIT_CODES, FormatError, NotFoundError, SfcError } from '@sfc/core';
import { formatError, UsageError } from './error-format.js';

describe('formatError', () => {
  it('prints message and hint of typed errors with the exit code of their family', () => {
    const f = formatError(new NotFoundError('no config.json in /m', 'a model folder has config.json'));
    expect(f.text).toBe('error: no config.json in /m\nhint: a model folder has config.json\n');
    expect(f.exitCode).toBe(EXIT_CODES.NOT_FOUND);
    expect(formatError(new FormatError('bad')).exitCode).toBe(EXIT_CODES.FORMAT);
    expect(formatError(new CapabilityError('x', 'y')).exitCode).toBe(6);
    expect(formatError(new UsageError('Unknown argument: foo')).exitCode).toBe(2);
    expect(formatError(new SfcError('INTERNAL', 'x')).text).toBe('error: x\n');
  });

  it('adds no stack trace unless verbose', () => {
    const e = new FormatError('bad header', 'hint', { cause: new Error('inner cause') });
    expect(formatError(e).text).not.toMatch(/\n\s+at /);
    const v = formatError(e, { verbose: true }).text;
    expect(v).toMatch(/\n\s+at /);
    expect(v).toContain('caused by: Error: inner cause');
  });

  it('turns unexpected errors into one line that points at --verbose', () => {
    const f = formatError(new TypeError("Cannot read properties of undefined (reading 'x')\nmore"));
    expect(f.exitCode).toBe(1);
    expect(f.text).toBe("error: unexpected failure: Cannot read properties of undefined (reading 'x')\nhint: run with --verbose for details, and report it if it persists\n");
    expect(formatError('a string').text).toContain('unexpected failure: a string');
    const v = formatError(new TypeError('t'), { verbose: true });
    expect(v.text).toMatch(/TypeError: t\n\s+at /);
    expect(v.text).not.toContain('--verbose');
  });
});

describe('formatError: terminal safety (issue 16)', () => {
  it('escapes control sequences and caps the length of any message it prints', () => {
    const f = formatError(new FormatError(`bad name \x1b]0;owned\x07 ${'x'.repeat(50_000)}`, 'hint \x1b[2J'));
    expect(f.text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    expect(f.text).toContain('\\x1b]0;owned\\x07');
    expect(f.text.length).toBeLessThan(5000);
    expect(formatError(new Error('boom \x1b[31m')).text).toContain('boom \\x1b[31m');
  });
});
