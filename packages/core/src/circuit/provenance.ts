// What a circuit (or effects/eval file) was computed with: the model (folder, name,
// architecture, content hash) and each SAE (folder, format, content hash), recorded under the
// files' `model` and `dictionaries` metadata (docs/formats.md, "Model and SAE records"). Reading
// is tolerant: files written before the record, or by other tools, simply have none.

import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { contentHash, modelContentHash } from '../content-hash.js';
import type { Dictionary } from '../dictionary.js';
import type { Model } from '../model/model.js';
import type { RunMetadata } from './effects-file.js';
import type { Json } from './json-checks.js';

export interface ModelRecord {
  readonly path: string;
  /** A short display name: config.json's `_name_or_path`, else the folder name. */
  readonly name: string;
  readonly architecture: string;
  readonly hash: string;
}

export interface SaeRecord {
  readonly path: string;
  readonly format: string;
  readonly hash: string;
}

export interface InputRecord {
  readonly model?: ModelRecord;
  /** SAE folders by submodule. */
  readonly saes: Readonly<Record<string, SaeRecord>>;
  /** The dictionaries folder the run named, if any. */
  readonly folder?: string;
}

const GENERIC_NAMES = new Set(['model', 'models', 'checkpoint', 'weights', 'hf']);

/** A display name for a model folder: config `_name_or_path` (its last part), else the folder name (with its parent when generic, e.g. agreement/model). */
export async function modelDisplayName(dir: string): Promise<string> {
  try {
    const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const n = cfg._name_or_path;
    if (typeof n === 'string' && n.trim() && !n.startsWith('/') && !n.startsWith('.')) return n.split('/').pop()!;
  } catch { /* the folder name below */ }
  const base = basename(dir);
  return GENERIC_NAMES.has(base.toLowerCase()) ? `${basename(dirname(dir))}/${base}` : base;
}

/** The folder a dictionary was loaded from (its `source` is a folder or a file in it), if it exists. */
export function dictionaryFolder(d: Dictionary): string | undefined {
  if (!d.source || !existsSync(d.source)) return undefined;
  return statSync(d.source).isDirectory() ? d.source : dirname(d.source);
}

/** The record of a loaded model and its dictionaries, for a file's `model` and `dictionaries` metadata. */
export async function recordInputs(model: Model, dictionaries: ReadonlyMap<string, Dictionary>, folder: string | null): Promise<Required<Pick<RunMetadata, 'model' | 'dictionaries'>>> {
  const saes: Record<string, Json> = {};
  for (const [sub, d] of dictionaries) {
    const dir = dictionaryFolder(d);
    if (dir) saes[sub] = { path: dir, format: `${d.format ?? 'unknown'}/${d.architecture}`, hash: await contentHash(dir) };
  }
  return {
    model: {
      path: model.dir, name: await modelDisplayName(model.dir), architecture: model.spec.architecture,
      backend: model.backend.name, hash: await modelContentHash(model.dir),
    },
    dictionaries: {
      folder, formats: Object.fromEntries([...dictionaries].map(([k, d]) => [k, `${d.format ?? 'unknown'}/${d.architecture}`])), saes,
    },
  };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The model and SAE record of a file's metadata; parts without a path and a hash are left out. */
export function readInputRecord(meta: RunMetadata): InputRecord {
  const m = meta.model as Json | undefined;
  const path = str(m?.path);
  const hash = str(m?.hash);
  const model: ModelRecord | undefined = m && path && hash
    ? { path, hash, name: str(m.name) ?? basename(path), architecture: str(m.architecture) ?? 'unknown' }
    : undefined;
  const d = meta.dictionaries as Json | undefined;
  const saes: Record<string, SaeRecord> = {};
  const rec = d?.saes;
  if (rec && typeof rec === 'object' && !Array.isArray(rec)) {
    for (const [sub, v] of Object.entries(rec as Json)) {
      const o = v as Json | null;
      const p = str(o?.path);
      const h = str(o?.hash);
      if (p && h) saes[sub] = { path: p, hash: h, format: str(o!.format) ?? 'unknown' };
    }
  }
  const folder = str(d?.folder);
  return { ...(model ? { model } : {}), saes, ...(folder ? { folder } : {}) };
}
