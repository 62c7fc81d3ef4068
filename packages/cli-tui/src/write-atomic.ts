// Atomic file writes: every file sfc writes goes to a temporary file in the same folder and is
// renamed over the target only once complete, so a crash or an error never leaves a partial file.

import { randomBytes } from 'node:crypto';
import { existsSync, statSync, unlinkSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError, NotFoundError } from '@sfc/core';

/** Content, or a producer of chunks (large outputs are written without building one string). */
export type AtomicContent = string | Uint8Array | Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>;

/** Temp files being written right now, removed by removePendingTempFiles() on Ctrl-C. */
const pending = new Set<string>();

/** Deletes unfinished temp files (synchronously: for signal handlers). */
export function removePendingTempFiles(): void {
  for (const p of pending) { try { unlinkSync(p); } catch { /* already gone */ } }
  pending.clear();
}

/** Fails early (before minutes of work) if `path` cannot be an output file. */
export function checkOutputPath(path: string): void {
  const target = resolve(path);
  const dir = dirname(target);
  if (!existsSync(dir)) throw new NotFoundError(`cannot write ${path}: folder ${dir} does not exist`, 'create the folder first or choose another --out path');
  if (existsSync(target) && statSync(target).isDirectory()) throw new InputError(`cannot write ${path}: it is a folder`, 'give a file name, e.g. --out result.json');
}

export async function writeFileAtomic(path: string, content: AtomicContent): Promise<void> {
  checkOutputPath(path);
  const target = resolve(path);
  const dir = dirname(target);
  // Same folder as the target: rename(2) is atomic only within one file system.
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx');
  pending.add(tmp);
  try {
    try {
      const put = (c: string | Uint8Array) => (typeof c === 'string' ? fh.write(c) : fh.write(c));
      if (typeof content === 'string' || content instanceof Uint8Array) {
        await put(content);
      } else {
        for await (const chunk of content as AsyncIterable<string | Uint8Array>) await put(chunk);
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  } finally {
    pending.delete(tmp);
  }
}
