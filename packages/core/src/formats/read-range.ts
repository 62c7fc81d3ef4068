// Reading a byte range of an open file, in pieces: one fs.read call refuses lengths of 2 GiB and
// more, and files over 2 GiB cannot be read whole (readFile), so the format readers read by offset.

import { readSync } from 'node:fs';
import { FormatError } from '../errors.js';

const MAX_READ = 2 ** 30;

/** The `length` bytes at `offset` of the open file `fd` (named `path` in errors), in a fresh buffer. */
export function readRange(fd: number, offset: number, length: number, path: string): Uint8Array {
  const out = new Uint8Array(length);
  for (let done = 0; done < length;) {
    const n = readSync(fd, out, done, Math.min(MAX_READ, length - done), offset + done);
    if (n === 0) throw new FormatError(`${path}: the file ended early (it shrank while being read?)`, 'do not modify the file while sfc reads it');
    done += n;
  }
  return out;
}
