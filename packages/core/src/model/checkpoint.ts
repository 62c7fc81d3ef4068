// A model folder's weight files: `model.safetensors`, or `model.safetensors.index.json` with its
// shards. Only the headers are read when a checkpoint is opened; a tensor's bytes are read by
// position when it is asked for, so files of any size work (no whole-file read, which Node refuses
// past 2 GiB) and a tensor nobody asks for is never read. Each file is a SafetensorsReader (the
// same header validation and NaN/±Inf refusal as SAE files). See docs/formats.md (checkpoints).

import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FormatError, NotFoundError, SecurityError } from '../errors.js';
import { quoteName } from '../quote.js';
import { jsonSyntaxError } from '../circuit/json-checks.js';
import type { SafetensorsDType, SafetensorsLimits } from '../formats/safetensors.js';
import { SafetensorsReader, type RawTensor } from '../formats/safetensors-reader.js';
import type { TensorSource } from './weights.js';

export type { RawTensor };

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface Checkpoint extends TensorSource {
  /** The weight file(s), in the order the index names them. */
  readonly files: readonly string[];
  /** For messages: the single file, or the index. */
  readonly label: string;
  dtype(name: string): SafetensorsDType;
  /** Bytes the tensor takes on disk. */
  byteSize(name: string): number;
  /** The tensor as stored (F32, BF16, F16), no upcast; other dtypes and NaN/±Inf values are refused. */
  getRaw(name: string): RawTensor;
  /** Closes the files; reading afterwards is an error. Idempotent. */
  close(): void;
}

/**
 * Bytes the checkpoint's floating-point tensors take in memory: as stored (`widen` false), or
 * with every BF16/F16 tensor upcast to f32 (`widen` true).
 */
export function checkpointBytes(ckpt: Checkpoint, options: { readonly widen: boolean; readonly names?: readonly string[] }): number {
  let total = 0;
  for (const n of options.names ?? ckpt.names()) {
    const dt = ckpt.dtype(n);
    const b = ckpt.byteSize(n);
    total += options.widen && (dt === 'BF16' || dt === 'F16') ? b * 2 : b;
  }
  return total;
}

/**
 * Opens the weights of a Hugging Face model folder: `model.safetensors.index.json` and its shards
 * when the index is present, else `model.safetensors`. Every header is validated, and every
 * tensor the index names must be in the shard it names; no tensor bytes are read.
 */
export async function openCheckpoint(dir: string, limits?: SafetensorsLimits): Promise<Checkpoint> {
  const indexPath = join(dir, INDEX_FILE);
  if (existsSync(indexPath)) return openSharded(dir, indexPath, limits);
  const single = join(dir, SINGLE_FILE);
  if (!existsSync(single)) {
    const hint = existsSync(join(dir, 'pytorch_model.bin')) || existsSync(join(dir, 'pytorch_model.bin.index.json'))
      ? 'only pytorch_model.bin is present; convert it to safetensors (transformers: model.save_pretrained(dir, safe_serialization=True))'
      : `put the ${SINGLE_FILE} (or ${INDEX_FILE} and its shards) that goes with config.json in the folder`;
    throw new NotFoundError(`no ${SINGLE_FILE} in ${dir}`, hint);
  }
  const reader = SafetensorsReader.open(single, limits);
  return makeCheckpoint(single, [reader], new Map([...reader.entries.keys()].map((n) => [n, reader])));
}

async function openSharded(dir: string, indexPath: string, limits?: SafetensorsLimits): Promise<Checkpoint> {
  const bad = (what: string, hint = `restore the ${INDEX_FILE} saved with the model`) => new FormatError(`${indexPath}: ${what}`, hint);
  const text = await readFile(indexPath, 'utf8');
  let index: unknown;
  try { index = JSON.parse(text); } catch (e) {
    throw bad(`not valid JSON: ${jsonSyntaxError(e, text)}`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) throw bad('no weight_map object');
  const shardOf = new Map<string, string>();
  for (const [name, file] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof file !== 'string' || file === '') throw bad(`weight_map[${quoteName(name)}] is not a file name`);
    if (file !== basename(file) || file === '..' || file === '.' || file.includes('\\')) {
      throw new SecurityError(`${indexPath}: shard ${quoteName(file)} is not a plain file name in the model folder`,
        'shards must sit next to the index; a path outside the folder is refused');
    }
    shardOf.set(name, file);
  }
  if (shardOf.size === 0) throw bad('weight_map is empty');
  const files = [...new Set(shardOf.values())];
  const readers: SafetensorsReader[] = [];
  try {
    for (const f of files) {
      const path = join(dir, f);
      if (!existsSync(path) || !statSync(path).isFile()) throw new NotFoundError(`${indexPath} names shard ${quoteName(f)}, which is not a file in ${dir}`, 'copy every shard the index lists into the model folder');
      readers.push(SafetensorsReader.open(path, limits));
    }
    const byFile = new Map(files.map((f, i) => [f, readers[i]!]));
    const owner = new Map<string, SafetensorsReader>();
    for (const [name, f] of shardOf) {
      const r = byFile.get(f)!;
      if (!r.entries.has(name)) throw bad(`tensor ${quoteName(name)} is listed in ${quoteName(f)}, which does not hold it`, 'the index and the shards come from different saves; copy them again together');
      owner.set(name, r);
    }
    return makeCheckpoint(indexPath, readers, owner);
  } catch (e) {
    for (const r of readers) r.close();
    throw e;
  }
}

function makeCheckpoint(label: string, readers: readonly SafetensorsReader[], owner: ReadonlyMap<string, SafetensorsReader>): Checkpoint {
  const reader = (name: string): SafetensorsReader => {
    const r = owner.get(name);
    if (!r) throw new FormatError(`${label}: no tensor ${quoteName(name)}`, `tensors in the checkpoint: ${[...owner.keys()].slice(0, 20).map((n) => quoteName(n)).join(', ')}`);
    return r;
  };
  const entry = (name: string) => reader(name).entries.get(name)!;
  return {
    files: readers.map((r) => r.path),
    label,
    has: (name) => owner.has(name),
    names: () => [...owner.keys()],
    shape: (name) => entry(name).shape,
    dtype: (name) => entry(name).dtype,
    byteSize: (name) => { const e = entry(name); return e.end - e.begin; },
    get: (name) => reader(name).getFloat32(name),
    getRaw: (name) => reader(name).getRaw(name),
    close: () => { for (const r of readers) r.close(); },
  };
}
