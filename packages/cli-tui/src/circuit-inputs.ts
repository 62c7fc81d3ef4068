// The model and SAEs of a command that opens a circuit: precedence flag > circuit > config file
// (docs/config.md, "A circuit's own model"). A circuit that records its model and SAEs (paths and
// content hashes, core's provenance) supplies them when no flag names them; a flag or config file
// that names a different model or different SAEs is refused here, before anything loads, naming
// both. Circuits without the record (older files, feature-circuits .pt) change nothing.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CIRCUIT_SCHEMA, ConfigError, contentHash, modelContentHash, NotFoundError, readInputRecord,
  type InputRecord, type RunMetadata,
} from '@sfc/core';
import { describeSource, type ConfigEntry, type EffectiveConfig } from './config/config.js';

/** The record of an sfc.circuit/v1 file, or undefined when the file is absent, not JSON or not a circuit (the command reports that). */
export async function readCircuitRecord(path: string): Promise<InputRecord | undefined> {
  if (!existsSync(path) || !statSync(path).isFile()) return undefined;
  let o: unknown;
  try { o = JSON.parse(await readFile(path, 'utf8')); } catch { return undefined; }
  if (typeof o !== 'object' || o === null || (o as { schema?: unknown }).schema !== CIRCUIT_SCHEMA) return undefined;
  return readInputRecord(o as RunMetadata);
}

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();

function fromCircuit(key: string, value: unknown, circuit: string): ConfigEntry {
  return { path: key, value, source: { kind: 'circuit', path: circuit } };
}

function shortHash(h: string): string {
  return h.replace(/^[^:]*:/, '').slice(0, 12);
}

/** Where a configured value came from, as a subject: "flag --model", "/p/sfc.config.json". */
function who(config: EffectiveConfig, key: string): string {
  return describeSource(config.source(key));
}

async function modelEntry(config: EffectiveConfig, record: InputRecord, circuit: string): Promise<ConfigEntry | undefined> {
  const m = record.model;
  if (!m) return undefined;
  const given = config.get<string>('model');
  if (given === undefined) {
    if (!isDir(m.path)) {
      throw new NotFoundError(`the circuit ${circuit} was discovered on model ${m.name} at ${m.path}, which does not exist`,
        `pass --model DIR with that model (content hash ${shortHash(m.hash)}…)`);
    }
    return fromCircuit('model', m.path, circuit);
  }
  const hash = given === m.path ? m.hash : await modelContentHash(given);
  if (hash !== m.hash) {
    throw new ConfigError(
      `${who(config, 'model')} names model ${given} (content hash ${shortHash(hash)}…), but the circuit ${circuit} was discovered on model ${m.name} at ${m.path} (content hash ${shortHash(m.hash)}…)`,
      config.source('model')?.kind === 'flag'
        ? `drop --model to use the circuit's own model, or open a circuit discovered on ${given}`
        : `pass --model ${m.path} (or drop "model" from the config file) to use the circuit's own model, or open a circuit discovered on ${given}`);
  }
  if (config.source('model')?.kind === 'flag') return undefined;
  return isDir(m.path) ? fromCircuit('model', m.path, circuit) : undefined;
}

/** Content hashes of the folders under `dir` (depth 1 and 2: submodule folders and their run-id children). */
async function folderHashes(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (d: string, depth: number) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      out.set(await contentHash(p), p);
      if (depth < 2) await visit(p, depth + 1);
    }
  };
  if (isDir(dir)) await visit(dir, 1);
  return out;
}

async function saeEntries(config: EffectiveConfig, record: InputRecord, circuit: string): Promise<ConfigEntry[]> {
  const saes = Object.entries(record.saes);
  if (!saes.length) return [];
  const folder = config.get<string>('dictionaries.folder');
  const overrides = config.get<Record<string, string>>('dictionaries.submodules') ?? {};
  const configured = folder !== undefined || Object.keys(overrides).length > 0;
  if (configured) {
    let inFolder: Map<string, string> | undefined;
    const wrong: string[] = [];
    for (const [sub, sae] of saes) {
      const dir = overrides[sub];
      const ok = dir !== undefined ? isDir(dir) && (await contentHash(dir)) === sae.hash
        : (inFolder ??= await folderHashes(folder!)).has(sae.hash);
      if (!ok) wrong.push(`${sub} (${sae.path}, content hash ${shortHash(sae.hash)}…)`);
    }
    if (wrong.length) {
      const key = folder !== undefined ? 'dictionaries.folder' : 'dictionaries.submodules';
      const named = folder !== undefined ? `SAEs in ${folder}` : `SAE folders ${Object.values(overrides).join(', ')}`;
      throw new ConfigError(
        `${who(config, key)} names ${named}, which do not hold the SAEs the circuit ${circuit} was discovered with: ${wrong.join('; ')}`,
        config.source(key)?.kind === 'flag' ? 'drop --dictionaries to use the circuit\'s own SAEs, or open a circuit discovered with these SAEs'
          : 'drop the dictionaries from the config file (or pass --dictionaries with the circuit\'s SAE folder) to use the circuit\'s own SAEs');
    }
    if (config.source('dictionaries.folder')?.kind === 'flag' || config.source('dictionaries.submodules')?.kind === 'flag') return [];
  }
  const missing = saes.filter(([, s]) => !isDir(s.path));
  if (missing.length) {
    if (configured) return []; // the configured SAEs hold the same content
    throw new NotFoundError(`the circuit ${circuit} was discovered with SAEs that no longer exist: ${missing.map(([sub, s]) => `${sub} at ${s.path}`).join(', ')}`,
      'pass --dictionaries DIR with the same SAEs');
  }
  return [
    ...(record.folder !== undefined && isDir(record.folder) ? [fromCircuit('dictionaries.folder', record.folder, circuit)] : []),
    fromCircuit('dictionaries.submodules', Object.fromEntries(saes.map(([sub, s]) => [sub, s.path])), circuit),
  ];
}

/**
 * The config with the circuit's model and SAEs applied: flags win, the circuit's record comes
 * next, the config file's values last — and a flag or file naming other content is an error.
 */
export async function applyCircuitInputs(config: EffectiveConfig, circuitPath: string): Promise<EffectiveConfig> {
  const record = await readCircuitRecord(circuitPath);
  if (!record) return config;
  const model = await modelEntry(config, record, circuitPath);
  const saes = await saeEntries(config, record, circuitPath);
  const entries = [...(model ? [model] : []), ...saes];
  return entries.length ? config.with(entries) : config;
}
