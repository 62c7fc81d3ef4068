// Validation of config values against the schema (schema.ts). Values from the file must have
// the right JSON type; values from flags arrive as text and are coerced first (numbers, lists
// separated by commas, true/false). Every error names where the value came from.

import { BUILTIN_BACKENDS, CONFIG_FIELDS, describeType, NPM_NAME, SUBMODULE_KEY, type FieldType } from './schema.js';

export type Checked = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string };

const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function show(v: unknown): string {
  const s = v === undefined ? 'nothing' : typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Checks one value. `label` is the key path (`circuit.steps`) or the flag (`--steps`);
 * `fromFlag` enables coercion from command-line text.
 */
export function checkValue(type: FieldType, raw: unknown, label: string, fromFlag = false): Checked {
  const fail = (got: unknown = raw): Checked => ({ ok: false, error: `${label}: expected ${describeType(type)}, got ${show(got)}` });
  let v = raw;
  if (fromFlag && typeof v === 'string' && (type.kind === 'integer' || type.kind === 'number') && NUMERIC.test(v.trim())) v = Number(v);
  if (fromFlag && type.kind === 'boolean' && (v === 'true' || v === 'false')) v = v === 'true';
  if (fromFlag && (type.kind === 'string' || type.kind === 'path') && typeof v === 'number') v = String(v);
  switch (type.kind) {
    case 'string':
      return typeof v === 'string' ? { ok: true, value: v } : fail();
    case 'package':
      if (typeof v === 'string' && isModulePath(v)) return { ok: false, error: pathRefused(label, v) };
      return typeof v === 'string' && NPM_NAME.test(v) ? { ok: true, value: v } : fail();
    case 'path':
      return typeof v === 'string' && v.length > 0 ? { ok: true, value: v } : fail();
    case 'enum':
      return typeof v === 'string' && type.values.includes(v) ? { ok: true, value: v } : fail();
    case 'boolean':
      return typeof v === 'boolean' ? { ok: true, value: v } : fail();
    case 'integer':
    case 'number': {
      if (typeof v !== 'number' || !Number.isFinite(v)) return fail();
      if (type.kind === 'integer' && !Number.isInteger(v)) return fail();
      if (type.min !== undefined && v < type.min) return fail();
      if (type.max !== undefined && v > type.max) return fail();
      return { ok: true, value: v };
    }
    case 'list': {
      let items: unknown[];
      if (Array.isArray(v)) items = fromFlag ? v.flatMap((x) => (typeof x === 'string' ? splitList(x) : [x])) : v;
      else if (fromFlag && (typeof v === 'string' || typeof v === 'number')) items = typeof v === 'string' ? splitList(v) : [v];
      else return fail();
      if (type.minItems && items.length < type.minItems) return fail();
      const out: unknown[] = [];
      for (let i = 0; i < items.length; i++) {
        const c = checkValue(type.of, items[i], fromFlag ? `${label} item ${i + 1}` : `${label}[${i}]`, fromFlag);
        if (!c.ok) return c;
        out.push(c.value);
      }
      return { ok: true, value: out };
    }
    case 'backend': {
      const list = typeof v === 'string' ? (fromFlag ? splitList(v) : [v]) : Array.isArray(v) ? v : undefined;
      if (!list || list.length === 0) return fail();
      for (const b of list) {
        // A module file only from the command line: a config file (perhaps in a folder someone
        // else controls) must not make sfc run code from a path it names.
        if (typeof b === 'string' && isModulePath(b) && !fromFlag) return { ok: false, error: pathRefused(label, b) };
        if (typeof b !== 'string' || !isBackendId(b)) return fail(b);
      }
      return { ok: true, value: list.length === 1 ? list[0] : list };
    }
    case 'submoduleMap': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail();
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (!SUBMODULE_KEY.test(k)) return { ok: false, error: `${label}: '${k}' is not a submodule name (expected embed, attn_L, mlp_L or resid_L)` };
        const c = checkValue(type.of, x, `${label}.${k}`, fromFlag);
        if (!c.ok) return c;
        out[k] = c.value;
      }
      return { ok: true, value: out };
    }
  }
}

export function isBackendId(s: string): boolean {
  return (BUILTIN_BACKENDS as readonly string[]).includes(s) || NPM_NAME.test(s) || isModulePath(s);
}

/** A module file (`./my-backend.js`, `/abs/plugin.js`) rather than a package name. */
export function isModulePath(s: string): boolean {
  return /^(\.{1,2}[\\/]|[\\/]|[A-Za-z]:[\\/])/.test(s);
}

function pathRefused(label: string, v: string): string {
  return `${label}: ${show(v)} is a file path; sfc.config.json names plugins and backends by package name only, so that a config file never makes sfc run code from a path `
    + `(install it as a package: \`npm install ${v}\`, then use its name${label.startsWith('backend') ? `; or pass \`--backend ${v}\` on the command line` : ''})`;
}

function splitList(s: string): string[] {
  return s.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
}

/**
 * Validates a whole parsed config file. Returns the values by key path and every problem found
 * (unknown keys with a suggestion, wrong types), so the user fixes them in one go.
 */
export function validateConfigObject(json: unknown): { values: Map<string, unknown>; errors: string[] } {
  const values = new Map<string, unknown>();
  const errors: string[] = [];
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { values, errors: [`expected a JSON object at the top level, got ${show(json)}`] };
  }
  walk(json as Record<string, unknown>, '', values, errors);
  return { values, errors };
}

function walk(obj: Record<string, unknown>, prefix: string, values: Map<string, unknown>, errors: string[]): void {
  const children = childKeys(prefix);
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (!prefix && k === '$schema') continue;
    const field = CONFIG_FIELDS.find((f) => f.path === path);
    if (field) {
      if (v === null) continue; // null = unset, so a key can be cleared without deleting it
      const c = checkValue(field.type, v, path);
      if (c.ok) values.set(path, c.value); else errors.push(c.error);
    } else if (children.groups.has(k)) {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) errors.push(`${path}: expected an object, got ${show(v)}`);
      else walk(v as Record<string, unknown>, path, values, errors);
    } else {
      const known = [...children.leaves, ...children.groups];
      const near = suggest(k, known);
      errors.push(`${path}: unknown key${near ? `; did you mean '${prefix ? `${prefix}.` : ''}${near}'?` : ` (known here: ${known.join(', ')})`}`);
    }
  }
}

function childKeys(prefix: string): { leaves: Set<string>; groups: Set<string> } {
  const leaves = new Set<string>();
  const groups = new Set<string>();
  const depth = prefix ? prefix.split('.').length : 0;
  for (const f of CONFIG_FIELDS) {
    const parts = f.path.split('.');
    if (prefix && !f.path.startsWith(`${prefix}.`)) continue;
    if (parts.length === depth + 1) leaves.add(parts[depth]!);
    else groups.add(parts[depth]!);
  }
  return { leaves, groups };
}

/** The closest known key within edit distance 2 (or a case-insensitive / snake_case match). */
export function suggest(key: string, known: Iterable<string>): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, '');
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    if (norm(k) === norm(key)) return k;
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) { bestD = d; best = k; }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
