// JSON syntax errors on one line with a position; a missing key said as such, not "undefined".
import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.js';
import { jsonSyntaxError, JsonReader, showJson } from './json-checks.js';
import { parseCircuit } from './circuit.js';

const err = (text: string) => { try { JSON.parse(text); } catch (e) { return jsonSyntaxError(e, text); } throw new Error('parsed'); };

describe('jsonSyntaxError', () => {
  it('is one line, without the quoted input, with line and column when JSON.parse gives a position', () => {
    expect(err('{"a": 1,\n "b": }')).toMatch(/^Unexpected token '}'( at line 2, column 7)?$/);
    expect(err('{"a": 1,\n "b" 2}')).toMatch(/^(Unexpected number|Expected ':' after property name) at line 2, column 6$/); // wording differs by Node version
    expect(err('{"a": 1,')).not.toContain('\n');
    for (const t of ['[1,\n2,\n]', '{\n\n x', '']) expect(err(t)).not.toMatch(/\n/);
  });

  it('JsonReader.parse reports it after the file name', () => {
    const r = new JsonReader('c.json', 'hint');
    expect(() => r.parse('{\n "x": }')).toThrow(FormatError);
    expect(() => r.parse('{\n "x": }')).toThrow(/^c\.json is not valid JSON: Unexpected token '}'( at line 2, column 7)?$/);
  });
});

describe('missing keys', () => {
  it('say "missing", never "undefined"', () => {
    expect(showJson(undefined)).toBe('nothing (the key is missing)');
    expect(() => parseCircuit('{"nodes": []}', 'c.json')).toThrow('c.json: schema is missing: not an sfc.circuit/v1 file');
    expect(() => new JsonReader('f', 'h').string(undefined, 'name')).toThrow('f: name must be a string, got nothing (the key is missing)');
  });
});
