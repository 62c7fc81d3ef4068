// Small typed readers for validating parsed JSON files: each failure is a FormatError naming the
// file and the JSON path of the bad field.

import { FormatError } from '../errors.js';

export type Json = Record<string, unknown>;

export class JsonReader {
  constructor(readonly source: string, readonly hint: string) {}

  fail(path: string, what: string): never {
    throw new FormatError(`${this.source}: ${path} ${what}`, this.hint);
  }

  parse(text: string): Json {
    let v: unknown;
    try { v = JSON.parse(text); } catch (e) {
      throw new FormatError(`${this.source} is not valid JSON: ${(e as Error).message}`, this.hint);
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
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, `must be a finite number, got ${JSON.stringify(v)}`);
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
    if (typeof v !== 'string') this.fail(path, `must be a string, got ${JSON.stringify(v)}`);
    return v as string;
  }

  boolean(v: unknown, path: string): boolean {
    if (typeof v !== 'boolean') this.fail(path, `must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  }

  oneOf<T extends string>(v: unknown, path: string, options: readonly T[]): T {
    if (typeof v !== 'string' || !options.includes(v as T)) this.fail(path, `must be one of ${options.join(', ')}, got ${JSON.stringify(v)}`);
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
