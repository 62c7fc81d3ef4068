// Small file helpers shared by the embedded-artifact scripts: atomic writes, JSON lines,
// content hashes and a minimal `--flag value` parser.

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Writes through a temp file and a rename, so a reader never sees half a file. */
export function writeAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function writeJson(path: string, value: unknown): void {
  writeAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

export function readJsonLines<T>(path: string): T[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l, i) => {
    try { return JSON.parse(l) as T; } catch (e) { throw new Error(`${path}:${i + 1}: ${(e as Error).message}`); }
  });
}

export function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** `--name value` and `--flag` arguments; unknown names are an error listing the known ones. */
export function parseArgs(argv: readonly string[], known: Record<string, string | number | boolean>): Record<string, string | number | boolean> {
  const out = { ...known };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}'`);
    const key = a.slice(2);
    if (!(key in known)) throw new Error(`unknown option --${key}; known: ${Object.keys(known).map((k) => `--${k}`).join(' ')}`);
    if (typeof known[key] === 'boolean') { out[key] = true; continue; }
    const v = argv[++i];
    if (v === undefined) throw new Error(`--${key} needs a value`);
    if (typeof known[key] === 'number') {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new Error(`--${key} must be a number, got '${v}'`);
      out[key] = n;
    } else out[key] = v;
  }
  return out;
}
