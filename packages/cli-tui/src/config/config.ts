// The effective configuration: schema defaults, then sfc.config.json (found from the working
// directory upward to the repository root or the home folder, or --config FILE), then flags —
// each value remembers where it came from.
// Relative paths are resolved against the folder of the file that names them (flags: the cwd).

import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ConfigError, jsonSyntaxError, NotFoundError } from '@sfc/core';
import { UsageError } from '../error-format.js';
import { CONFIG_FIELDS, fieldAt, type FieldType } from './schema.js';
import { checkValue, isModulePath, validateConfigObject } from './validate.js';

export const CONFIG_FILE_NAME = 'sfc.config.json';

export type ValueSource =
  | { readonly kind: 'default' }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'flag'; readonly flag: string }
  /** The model and SAEs recorded in a circuit file (circuit-inputs.ts). */
  | { readonly kind: 'circuit'; readonly path: string };

export interface ConfigEntry {
  readonly path: string;
  readonly value: unknown;
  readonly source: ValueSource;
}

/** A flag value to overlay on a config key (as given on the command line, not yet validated). */
export interface FlagValue {
  readonly key: string;
  readonly flag: string;
  readonly raw: unknown;
}

export class EffectiveConfig {
  constructor(
    /** The config file used, if any. */
    readonly file: string | undefined,
    private readonly values: ReadonlyMap<string, ConfigEntry>,
  ) {}

  get<T = unknown>(path: string): T | undefined {
    return this.values.get(path)?.value as T | undefined;
  }

  /** The value, or an error saying which flag or key provides it. */
  require<T = unknown>(path: string, flag: string): T {
    const v = this.get<T>(path);
    if (v === undefined) {
      throw new UsageError(`missing ${flag}`, `pass ${flag} or set "${path}" in ${CONFIG_FILE_NAME}`);
    }
    return v;
  }

  /** The same config with these entries replacing the values of their keys. */
  with(entries: readonly ConfigEntry[]): EffectiveConfig {
    return new EffectiveConfig(this.file, new Map([...this.values, ...entries.map((e) => [e.path, e] as const)]));
  }

  source(path: string): ValueSource | undefined {
    return this.values.get(path)?.source;
  }

  /** Every key of the schema in schema order, set or not. */
  entries(): ConfigEntry[] {
    return CONFIG_FIELDS.map((f) => this.values.get(f.path) ?? { path: f.path, value: undefined, source: { kind: 'default' } });
  }
}

/**
 * The folders searched for sfc.config.json: `cwd`, then its parents up to and including the
 * repository root (the first folder with `.git`) or the home folder, whichever comes first. With
 * neither above `cwd` (e.g. under /tmp), only `cwd`: a folder someone else controls never
 * supplies the configuration.
 */
export function configSearchFolders(cwd: string, home: string = homedir()): string[] {
  const out: string[] = [];
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    out.push(dir);
    if (existsSync(join(dir, '.git')) || dir === resolve(home)) return out;
    if (dirname(dir) === dir) return [resolve(cwd)];
  }
}

/** The nearest sfc.config.json in configSearchFolders(cwd); one owned by another user is refused. */
export function findConfigFile(cwd: string, home?: string): string | undefined {
  for (const dir of configSearchFolders(cwd, home)) {
    const p = join(dir, CONFIG_FILE_NAME);
    const st = existsSync(p) ? statSync(p) : undefined;
    if (!st?.isFile()) continue;
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
      throw new ConfigError(`${p} belongs to another user (uid ${st.uid}); sfc does not use a config file it found that someone else can change`,
        `pass --config ${p} if you trust it, or run sfc from another folder`);
    }
    return p;
  }
  return undefined;
}

/** Reads and validates a config file; paths inside it become absolute. */
export async function readConfigFile(path: string): Promise<Map<string, unknown>> {
  if (!existsSync(path)) throw new NotFoundError(`config file ${path} does not exist`, `check the --config path, or create ${CONFIG_FILE_NAME} (see docs/config.md)`);
  let json: unknown;
  const text = await readFile(path, 'utf8');
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON: ${jsonSyntaxError(e, text)}`, 'fix the syntax (JSON allows no comments and no trailing commas)');
  }
  const { values, errors } = validateConfigObject(json);
  if (errors.length) {
    const msg = errors.length === 1 ? `${path}: ${errors[0]}` : `${path} has ${errors.length} problems:\n  ${errors.join('\n  ')}`;
    throw new ConfigError(msg, 'fix the values in the config file; every key is described in docs/config.md (`sfc config schema` prints the JSON Schema)');
  }
  const base = dirname(path);
  for (const [k, v] of values) values.set(k, absolutize(fieldAt(k)!.type, v, base));
  return values;
}

export interface ResolveOptions {
  readonly cwd: string;
  /** --config FILE; otherwise the file is searched from cwd upward. */
  readonly configPath?: string;
  readonly flags?: readonly FlagValue[];
}

export async function resolveConfig(options: ResolveOptions): Promise<EffectiveConfig> {
  const file = options.configPath ? resolve(options.cwd, options.configPath) : findConfigFile(options.cwd);
  const fromFile = file ? await readConfigFile(file) : new Map<string, unknown>();
  const values = new Map<string, ConfigEntry>();
  for (const f of CONFIG_FIELDS) {
    if (f.default !== undefined) values.set(f.path, { path: f.path, value: f.default, source: { kind: 'default' } });
    if (fromFile.has(f.path)) values.set(f.path, { path: f.path, value: fromFile.get(f.path), source: { kind: 'file', path: file! } });
  }
  const problems: string[] = [];
  for (const fl of options.flags ?? []) {
    if (fl.raw === undefined) continue;
    const field = fieldAt(fl.key);
    if (!field) throw new Error(`internal: flag ${fl.flag} maps to unknown config key ${fl.key}`);
    const c = checkValue(field.type, fl.raw, fl.flag, true);
    if (!c.ok) { problems.push(c.error); continue; }
    values.set(fl.key, { path: fl.key, value: absolutize(field.type, c.value, options.cwd), source: { kind: 'flag', flag: fl.flag } });
  }
  if (problems.length) throw new UsageError(problems.join('\n'), 'see `sfc <command> --help` for the accepted values');
  return new EffectiveConfig(file, values);
}

function absolutize(type: FieldType, v: unknown, base: string): unknown {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  switch (type.kind) {
    case 'path': return abs(v as string);
    case 'submoduleMap':
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, absolutize(type.of, x, base)]));
    case 'list': return (v as unknown[]).map((x) => absolutize(type.of, x, base));
    case 'backend': {
      const one = (b: string) => (isModulePath(b) ? abs(b) : b);
      return Array.isArray(v) ? v.map(one) : one(v as string);
    }
    default: return v;
  }
}

export function describeSource(s: ValueSource | undefined): string {
  if (!s || s.kind === 'default') return 'default';
  return s.kind === 'file' ? s.path : s.kind === 'circuit' ? `circuit ${s.path}` : `flag ${s.flag}`;
}
