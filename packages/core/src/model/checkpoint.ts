// A model folder's weight files: `model.safetensors`, or `model.safetensors.index.json` with its
// shards. Only the headers are read when a checkpoint is opened; a tensor's bytes are read by
// position when it is asked for, so files of any size work (no whole-file read, which Node refuses
// past 2 GiB) and a tensor nobody asks for is never read. See docs/formats.md (checkpoints).

import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FormatError, NotFoundError, SecurityError } from '../errors.js';
import {
  bf16ToF32, f16ToF32, parseSafetensorsHeader, safetensorsHeaderLength, toFloat32,
  type SafetensorsDType, type SafetensorsEntry, type SafetensorsLimits,
} from '../formats/safetensors.js';
import type { TensorSource } from './weights.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** A tensor's values without widening: f32 as f32, bf16/f16 as their 16-bit words. */
export type RawTensor =
  | { readonly dtype: 'F32'; readonly data: Float32Array }
  | { readonly dtype: 'BF16' | 'F16'; readonly data: Uint16Array };

export interface Checkpoint extends TensorSource {
  /** The weight file(s), in the order the index names them. */
  readonly files: readonly string[];
  /** For messages: the single file, or the index. */
  readonly label: string;
  dtype(name: string): SafetensorsDType;
  /** Bytes the tensor takes on disk. */
  byteSize(name: string): number;
  /** The tensor as stored (F32, BF16, F16), no upcast; other dtypes are refused. */
  getRaw(name: string): RawTensor;
  /** Closes the files; reading afterwards is an error. Idempotent. */
  close(): void;
}

/** Largest single read: Node's positioned reads take at most 2^31 − 1 bytes. */
const READ_CHUNK = 1 << 30;

/** One safetensors file open for positioned reads. */
class ShardReader {
  private fd: number | undefined;
  private constructor(readonly path: string, fd: number, readonly entries: ReadonlyMap<string, SafetensorsEntry>, private readonly dataStart: number) {
    this.fd = fd;
  }

  static open(path: string, limits?: SafetensorsLimits): ShardReader {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const hl = safetensorsHeaderLength(readAt(fd, 0, Math.min(8, size)), size, path, limits);
      const { entries } = parseSafetensorsHeader(readAt(fd, 8, hl), size - 8 - hl, path, limits);
      return new ShardReader(path, fd, entries, 8 + hl);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  read(e: SafetensorsEntry): Uint8Array {
    if (this.fd === undefined) throw new Error(`internal: ${this.path} read after close`);
    return readAt(this.fd, this.dataStart + e.begin, e.end - e.begin);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

const words = (bytes: Uint8Array): Uint16Array => new Uint16Array(bytes.buffer, 0, bytes.byteLength / 2);

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

function readAt(fd: number, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, Math.min(READ_CHUNK, length - done), position + done);
    if (n === 0) throw new FormatError(`file ended ${length - done} bytes early`, 'the file is truncated; copy it again');
    done += n;
  }
  return out;
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
  const reader = ShardReader.open(single, limits);
  return makeCheckpoint(single, [reader], new Map([...reader.entries.keys()].map((n) => [n, reader])));
}

async function openSharded(dir: string, indexPath: string, limits?: SafetensorsLimits): Promise<Checkpoint> {
  const bad = (what: string, hint = `restore the ${INDEX_FILE} saved with the model`) => new FormatError(`${indexPath}: ${what}`, hint);
  let index: unknown;
  try { index = JSON.parse(await readFile(indexPath, 'utf8')); } catch (e) {
    throw bad(`not valid JSON (${(e as Error).message})`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) throw bad('no weight_map object');
  const shardOf = new Map<string, string>();
  for (const [name, file] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof file !== 'string' || file === '') throw bad(`weight_map['${name}'] is not a file name`);
    if (file !== basename(file) || file === '..' || file === '.' || file.includes('\\')) {
      throw new SecurityError(`${indexPath}: shard '${file}' is not a plain file name in the model folder`,
        'shards must sit next to the index; a path outside the folder is refused');
    }
    shardOf.set(name, file);
  }
  if (shardOf.size === 0) throw bad('weight_map is empty');
  const files = [...new Set(shardOf.values())];
  const readers: ShardReader[] = [];
  try {
    for (const f of files) {
      const path = join(dir, f);
      if (!existsSync(path) || !statSync(path).isFile()) throw new NotFoundError(`${indexPath} names shard ${f}, which is not a file in ${dir}`, 'copy every shard the index lists into the model folder');
      readers.push(ShardReader.open(path, limits));
    }
    const byFile = new Map(files.map((f, i) => [f, readers[i]!]));
    const owner = new Map<string, ShardReader>();
    for (const [name, f] of shardOf) {
      const r = byFile.get(f)!;
      if (!r.entries.has(name)) throw bad(`tensor '${name}' is listed in ${f}, which does not hold it`, 'the index and the shards come from different saves; copy them again together');
      owner.set(name, r);
    }
    return makeCheckpoint(indexPath, readers, owner);
  } catch (e) {
    for (const r of readers) r.close();
    throw e;
  }
}

function makeCheckpoint(label: string, readers: readonly ShardReader[], owner: ReadonlyMap<string, ShardReader>): Checkpoint {
  const entry = (name: string): { r: ShardReader; e: SafetensorsEntry } => {
    const r = owner.get(name);
    if (!r) throw new FormatError(`${label}: no tensor '${name}'`, `tensors in the checkpoint: ${[...owner.keys()].slice(0, 20).join(', ')}`);
    return { r, e: r.entries.get(name)! };
  };
  return {
    files: readers.map((r) => r.path),
    label,
    has: (name) => owner.has(name),
    names: () => [...owner.keys()],
    shape: (name) => entry(name).e.shape,
    dtype: (name) => entry(name).e.dtype,
    byteSize: (name) => { const { e } = entry(name); return e.end - e.begin; },
    get(name) {
      const { r, e } = entry(name);
      const bytes = r.read(e); // a fresh buffer of its own: typed views need no copy
      if (e.dtype === 'BF16') return bf16ToF32(words(bytes));
      if (e.dtype === 'F16') return f16ToF32(words(bytes));
      if (e.dtype === 'F32') return new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
      return toFloat32(bytes, e.dtype, `${r.path}: tensor '${name}'`);
    },
    getRaw(name) {
      const { r, e } = entry(name);
      if (e.dtype !== 'F32' && e.dtype !== 'BF16' && e.dtype !== 'F16') {
        throw new FormatError(`${r.path}: tensor '${name}' has dtype ${e.dtype}`, 'weights must be F32, BF16 or F16');
      }
      const bytes = r.read(e);
      return e.dtype === 'F32'
        ? { dtype: 'F32', data: new Float32Array(bytes.buffer, 0, bytes.byteLength / 4) }
        : { dtype: e.dtype, data: words(bytes) };
    },
    close: () => { for (const r of readers) r.close(); },
  };
}
