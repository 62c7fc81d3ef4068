// Safe file writes, used by every writer of sfc (CLI outputs, the SAE trainer). A regular file is
// written to a temporary file in the same folder, every byte checked written, fsynced, given the
// old file's mode, and only then renamed over the target: a full disk, a file-size limit or a
// crash leaves the old file as it was and no temporary file. FIFOs and character devices
// (`/dev/null`, `/dev/stdout`) are written through, never renamed over; other non-regular targets
// are refused. The rules are documented in docs/formats.md ("Writing files").

import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, lstatSync, realpathSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { InputError, IoError, NotFoundError, isSfcError } from '../errors.js';

/** Content, or a producer of chunks (large outputs are written without building one string). */
export type AtomicContent = string | Uint8Array | Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>;

/** How a path is written: replaced through a temp file + rename, or written through (a FIFO, a device). */
export type OutputKind = 'replace' | 'stream';

/** Temp files being written right now, removed by removePendingTempFiles() on a signal. */
const pending = new Set<string>();

/** Deletes unfinished temp files (synchronously: for signal handlers). */
export function removePendingTempFiles(): void {
  for (const p of pending) { try { unlinkSync(p); } catch { /* already gone */ } }
  pending.clear();
}

const statOrUndefined = (f: () => Stats): Stats | undefined => { try { return f(); } catch { return undefined; } };

/**
 * Checks, before any work, that `path` can be written, and says how: 'replace' (a new or regular
 * file, through a temp file in its folder) or 'stream' (a FIFO or character device, written
 * through). Refuses folders, sockets, block devices, dangling symlinks and non-writable folders
 * with typed errors.
 */
export function checkOutputPath(path: string): OutputKind {
  const target = resolve(path);
  const link = statOrUndefined(() => lstatSync(target));
  const st = link && statOrUndefined(() => statSync(target)); // follows symlinks
  if (link && !st) throw new InputError(`cannot write ${path}: it is a symbolic link to a missing file`, 'remove the link or give another --out path');
  if (st?.isDirectory()) throw new InputError(`cannot write ${path}: it is a folder`, 'give a file name, e.g. --out result.json');
  if (st && (st.isFIFO() || st.isCharacterDevice())) {
    try { accessSync(target, constants.W_OK); } catch (e) { throw ioError(e, path, undefined, false); }
    return 'stream';
  }
  if (st && !st.isFile()) throw new InputError(`cannot write ${path}: it is not a regular file (a socket or block device)`, 'give a regular file name for the output');
  const dir = dirname(st ? realpathSync(target) : target);
  const d = statOrUndefined(() => statSync(dir));
  if (!d) throw new NotFoundError(`cannot write ${path}: folder ${dir} does not exist`, 'create the folder first or choose another --out path');
  if (!d.isDirectory()) throw new InputError(`cannot write ${path}: ${dir} is not a folder`, 'choose another --out path');
  try { accessSync(dir, constants.W_OK | constants.X_OK); } catch (e) { throw ioError(e, path, dir, false); }
  return 'replace';
}

/** Checks, before any work, that the output folder `path` (created if missing) can be written. */
export function checkOutputFolder(path: string): void {
  let dir = resolve(path); // the nearest folder that exists: the rest is created
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  if (!statSync(dir).isDirectory()) throw new InputError(`cannot write into ${path}: ${dir} is a file`, 'give a folder for the output (created if missing)');
  try { accessSync(dir, constants.W_OK | constants.X_OK); } catch (e) { throw ioError(e, path, dir, false); }
}

/** Writes `content` to `path` completely or not at all (see the file comment). */
export async function writeFileAtomic(path: string, content: AtomicContent): Promise<void> {
  if (checkOutputPath(path) === 'stream') return writeThrough(path, content);
  // A symlink to a regular file: the file it points to is replaced, the link stays.
  const existing = statOrUndefined(() => statSync(path));
  const target = existing ? realpathSync(path) : resolve(path);
  const dir = dirname(target);
  // Same folder as the target: rename(2) is atomic only within one file system.
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fh: FileHandle;
  try { fh = await open(tmp, 'wx', existing ? existing.mode & 0o7777 : 0o666); } catch (e) { throw ioError(e, path, dir); }
  pending.add(tmp);
  try {
    try {
      await writeAll(fh, content);
      if (existing) {
        await fh.chmod(existing.mode & 0o7777); // the umask must not change an existing file's mode
        if (process.getuid?.() === 0) await fh.chown(existing.uid, existing.gid).catch(() => undefined);
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw isSfcError(e) ? e : ioError(e, path);
  } finally {
    pending.delete(tmp);
  }
  await syncDir(dir);
}

/** A FIFO or character device: written in place (nothing to rename, nothing to keep). */
async function writeThrough(path: string, content: AtomicContent): Promise<void> {
  let fh: FileHandle;
  try { fh = await open(path, 'w'); } catch (e) { throw ioError(e, path, undefined, false); }
  try {
    await writeAll(fh, content);
  } catch (e) {
    throw isSfcError(e) ? e : ioError(e, path, undefined, false);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Every byte of every chunk: write(2) may take fewer bytes than given (a full disk, a size limit). */
async function writeAll(fh: FileHandle, content: AtomicContent): Promise<void> {
  const put = async (c: string | Uint8Array) => {
    const buf = typeof c === 'string' ? Buffer.from(c, 'utf8') : c;
    for (let off = 0; off < buf.byteLength;) {
      const { bytesWritten } = await fh.write(buf, off, buf.byteLength - off);
      if (bytesWritten <= 0) throw Object.assign(new Error('no bytes written'), { code: 'ENOSPC' });
      off += bytesWritten;
    }
  };
  if (typeof content === 'string' || content instanceof Uint8Array) {
    await put(content);
  } else {
    for await (const chunk of content as AsyncIterable<string | Uint8Array>) await put(chunk);
  }
}

async function syncDir(dir: string): Promise<void> {
  // Makes the rename itself durable; some file systems cannot fsync a folder, which is harmless.
  const h = await open(dir, 'r').catch(() => undefined);
  if (h) { await h.sync().catch(() => undefined); await h.close().catch(() => undefined); }
}

const IO_REASONS: Record<string, [string, string]> = {
  ENOSPC: ['the disk is full', 'free some space or write to another disk'],
  EDQUOT: ['the disk quota is exhausted', 'free some space or write to another disk'],
  EFBIG: ['the file would exceed the file-size limit', 'raise the limit (`ulimit -f`) or write to another file system'],
  EACCES: ['permission denied', 'choose a folder you can write to, or change its permissions'],
  EPERM: ['operation not permitted', 'choose a folder you can write to, or change its permissions'],
  EROFS: ['the file system is read-only', 'write to another file system'],
  EIO: ['an input/output error occurred', 'check the disk'],
};

/** A file-system failure as a typed error (exit code 8, docs/cli.md). Other failures pass through unchanged. */
function ioError(e: unknown, path: string, dir?: string, replacing = true): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const reason = code ? IO_REASONS[code] : undefined;
  if (!reason) return e;
  const where = dir && (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') ? ` (folder ${dir})` : '';
  return new IoError(`cannot write ${path}: ${reason[0]}${where}${replacing ? '; the previous file, if any, is unchanged' : ''}`, reason[1], { cause: e });
}
