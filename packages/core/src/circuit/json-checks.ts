// Small typed readers for validating parsed JSON files: each failure is a FormatError naming the
// file and the JSON path of the bad field.

import { FormatError } from '../errors.js';

export type Json = Record<string, unknown>;

/**
 * JSON.parse's complaint about `text` on one line, with the line and column when it gives a
 * position (V8 quotes the whole input, newlines included, in some messages: that part is left out).
 */
export function jsonSyntaxError(e: unknown, text: string): string {
  let msg = e instanceof Error ? e.message : String(e);
  const quoted = /^(Unexpected token .+?), ".*" is not valid JSON$/s.exec(msg);
  if (quoted) msg = quoted[1]!;
  const at = / in JSON at position (\d+)(?: \(line \d+ column \d+\))?$/.exec(msg);
  if (at) {
    const before = text.slice(0, Number(at[1]));
    const line = before.split('\n').length;
    msg = `${msg.slice(0, at.index)} at line ${line}, column ${before.length - before.lastIndexOf('\n')}`;
  }
  return msg.replace(/\s+/g, ' ').trim();
}

/** A value for an error message: `nothing` for a missing key, else its JSON. */
export function showJson(v: unknown): string {
  return v === undefined ? 'nothing (the key is missing)' : JSON.stringify(v);
}

export class JsonReader {
  constructor(readonly source: string, readonly hint: string) {}

  fail(path: string, what: string): never {
    throw new FormatError(`${this.source}: ${path} ${what}`, this.hint);
  }

  parse(text: string): Json {
    let v: unknown;
    try { v = JSON.parse(text); } catch (e) {
      throw new FormatError(`${this.source} is not valid JSON: ${jsonSyntaxError(e, text)}`, this.hint);
    }
    return this.object(v, '(top level)');
  }

  object(v: unknown, path: string): Json {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'must be an object');
    return v as Json;
  }

  array(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.fail(path, 'must be an array');
    return v as unknown[];
  }

  number(v: unknown, path: string): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, `must be a finite number, got ${showJson(v)}`);
    return v as number;
  }

  numberOrNull(v: unknown, path: string): number | null {
    return v === null ? null : this.number(v, path);
  }

  int(v: unknown, path: string, min = 0): number {
    const n = this.number(v, path);
    if (!Number.isInteger(n) || n < min) this.fail(path, `must be an integer ≥ ${min}, got ${n}`);
    return n;
  }

  intOrNull(v: unknown, path: string, min = 0): number | null {
    return v === null ? null : this.int(v, path, min);
  }

  string(v: unknown, path: string): string {
    if (typeof v !== 'string') this.fail(path, `must be a string, got ${showJson(v)}`);
    return v as string;
  }

  boolean(v: unknown, path: string): boolean {
    if (typeof v !== 'boolean') this.fail(path, `must be true or false, got ${showJson(v)}`);
    return v as boolean;
  }

  oneOf<T extends string>(v: unknown, path: string, options: readonly T[]): T {
    if (typeof v !== 'string' || !options.includes(v as T)) this.fail(path, `must be one of ${options.join(', ')}, got ${showJson(v)}`);
    return v as T;
  }

  optionalObject(v: unknown, path: string): Json | undefined {
    return v === undefined || v === null ? undefined : this.object(v, path);
  }
}

/**
 * The shortest decimal that reads back as the same float32: effects are float32 computations, so
 * more digits would only print rounding noise, and files stay compact.
 */
export function compactNumber(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x === 0 ? 0 : x;
  const f = Math.fround(x);
  for (let p = 1; p < 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === f) return y;
  }
  return Number(x.toPrecision(9));
}
