// Random access to the bytes of a file, so the zip, npz and torch readers take only the ranges
// they need (the central directory, one entry at a time) instead of the whole file: files over
// 2 GiB, which one readFile cannot return, are read by offset (docs/formats.md).

import { closeSync, fstatSync, openSync } from 'node:fs';
import { readRange } from '@sfc/core';

export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** The `length` bytes at `offset` (which must lie inside the source); a view when the source is in memory. */
  read(offset: number, length: number): Uint8Array;
}

/** A source over bytes already in memory (reads are views, no copy). */
export function bytesSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    read: (offset, length) => {
      if (offset < 0 || length < 0 || offset + length > bytes.byteLength) throw new RangeError(`read of ${length} bytes at ${offset} past ${bytes.byteLength}`);
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** A source over an open file descriptor; the caller closes it (see withFileSource). */
export function fileSource(fd: number, path: string): ByteSource {
  const size = fstatSync(fd).size;
  return {
    size,
    read: (offset, length) => {
      if (offset < 0 || length < 0 || offset + length > size) throw new RangeError(`read of ${length} bytes at ${offset} past ${size}`);
      return readRange(fd, offset, length, path);
    },
  };
}

/** Opens `path`, runs `use` on a source over it, and closes the file whatever happens. */
export function withFileSource<T>(path: string, use: (source: ByteSource) => T): T {
  const fd = openSync(path, 'r');
  try {
    return use(fileSource(fd, path));
  } finally {
    closeSync(fd);
  }
}
