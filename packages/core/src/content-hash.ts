// Content hashes of model and SAE folders: what a circuit file records so that a later run can
// tell "the same model" from "another model at the same path" (docs/formats.md, "Model and SAE
// records"). Hashing must stay cheap for multi-GB checkpoints, so large files are sampled:
//
//   sampled-sha256 (v1) = SHA-256 over, for each covered file in name order:
//     name, size, then every byte when size ≤ 1 MiB; otherwise the whole safetensors header
//     (tensor names, dtypes, shapes, offsets) when the file is .safetensors, and 16 windows of
//     64 KiB evenly spaced from the first byte to the last.
//
// A different checkpoint, fine-tune or SAE changes the sampled windows (every tensor's bytes
// differ); an edit confined to unsampled bytes of a large file is not detected. The hash
// identifies a folder's content; it does not verify integrity.

import { createHash, type Hash } from 'node:crypto';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from './errors.js';

export const CONTENT_HASH_METHOD = 'sampled-sha256';
/** Files up to this size are hashed whole. */
export const FULL_HASH_LIMIT = 1 << 20;
const WINDOW = 64 << 10;
const WINDOWS = 16;
/** safetensors caps its header at 100 MB; a larger length field means the file is not safetensors. */
const MAX_SAFETENSORS_HEADER = 100_000_000;

export interface ContentHashOptions {
  /** Which files of the folder are covered (default: every regular file not starting with '.'). */
  readonly include?: (name: string) => boolean;
}

/** The files that define a Hugging Face model folder: config, tokenizer and safetensors weights. */
export function isModelFile(name: string): boolean {
  return name === 'config.json' || name === 'tokenizer.json' || name.endsWith('.safetensors') || name === 'model.safetensors.index.json';
}

async function hashFile(h: Hash, path: string, size: number): Promise<void> {
  const f = await open(path, 'r');
  try {
    const read = async (offset: number, length: number) => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await f.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    };
    if (size <= FULL_HASH_LIMIT) { h.update(await read(0, size)); return; }
    if (path.endsWith('.safetensors')) {
      const n = Number((await read(0, 8)).readBigUInt64LE(0));
      if (n <= MAX_SAFETENSORS_HEADER && 8 + n <= size) h.update(await read(8, n));
    }
    for (let i = 0; i < WINDOWS; i++) h.update(await read(Math.floor((i * (size - WINDOW)) / (WINDOWS - 1)), WINDOW));
  } finally {
    await f.close();
  }
}

/** `sampled-sha256:<hex>` of the covered files of `dir` (see the header for what is covered). */
export async function contentHash(dir: string, options: ContentHashOptions = {}): Promise<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new NotFoundError(`folder ${dir} does not exist`, 'give the model or SAE folder');
    }
    throw e;
  }
  const include = options.include ?? (() => true);
  const names = entries.filter((e) => !e.name.startsWith('.') && (e.isFile() || e.isSymbolicLink()) && include(e.name)).map((e) => e.name).sort();
  const h = createHash('sha256');
  for (const name of names) {
    const path = join(dir, name);
    const s = await stat(path);
    if (!s.isFile()) continue;
    h.update(`${name}\u0000${s.size}\u0000`);
    await hashFile(h, path, s.size);
  }
  return `${CONTENT_HASH_METHOD}:${h.digest('hex')}`;
}

/** The hash of a model folder (config.json, tokenizer.json, *.safetensors). */
export function modelContentHash(dir: string): Promise<string> {
  return contentHash(dir, { include: isModelFile });
}
