// A 16-bit token-embedding table kept in a file instead of memory (OnnxBackendOptions.embeddingOnDisk;
// docs/performance.md, "Gemma-2-2B scale", Memory). At load its words go once to a temporary file
// that is unlinked at once: the open descriptor keeps it readable, no file is left behind, and no
// one else can change it. The table the graphs read is a zero-filled array of the full size that
// is never written as a whole, so the kernel backs only the pages of rows that were read into it:
// a run's token ids (the lookup) and a metric's answer columns (the head with `columns`). A head
// over the whole vocabulary reads the table window by window into one reused buffer instead
// (segment-runtime.ts), so the full table is never resident.

import { closeSync, mkdirSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { InputError, IoError } from '@sfc/core';

/** Bytes written per call while the table goes to its file. */
const WRITE_BYTES = 2 ** 26;

export class DiskTable {
  /** The table as the graphs see it: [rows, cols] words, only the rows read so far filled in. */
  readonly data: Uint16Array;
  private readonly filled: Uint8Array;
  private fd: number | undefined;
  private buffer: Uint16Array | undefined;
  /** Rows read into `data` so far (for tests and diagnostics). */
  rowsRead = 0;

  private constructor(fd: number, readonly rows: number, readonly cols: number) {
    this.fd = fd;
    this.data = new Uint16Array(rows * cols);
    this.filled = new Uint8Array(rows);
  }

  /**
   * Writes `words` ([rows, cols]) to an unlinked file in `dir` and returns the table; the caller
   * drops `words`. A failed write (disk full, no permission) is an IoError and leaves no file.
   */
  static create(dir: string, words: Uint16Array, rows: number, cols: number): DiskTable {
    if (words.length !== rows * cols) throw new InputError(`a [${rows}, ${cols}] table needs ${rows * cols} words, got ${words.length}`);
    const path = join(dir, `embedding-${process.pid}-${randomBytes(6).toString('hex')}.f16`);
    let fd: number | undefined;
    try {
      mkdirSync(dir, { recursive: true });
      fd = openSync(path, 'wx+', 0o600);
      unlinkSync(path);
      const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
      for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, Math.min(WRITE_BYTES, bytes.length - at), at);
      return new DiskTable(fd, rows, cols);
    } catch (e) {
      if (fd !== undefined) closeSync(fd);
      try { unlinkSync(path); } catch { /* already unlinked, or never made */ }
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      throw new IoError(`cannot keep the token embedding (${(words.byteLength / 2 ** 20).toFixed(0)} MiB) in a file under ${dir}: ${code}`,
        'free disk space there, set onnx.cacheDir to a folder with room, or turn onnx.embeddingOnDisk off (the table then stays in memory)', { cause: e });
    }
  }

  private descriptor(): number {
    if (this.fd === undefined) throw new InputError('the model was disposed', 'load it again');
    return this.fd;
  }

  /** Reads rows `ids` (any order, repeats allowed) into `data` unless they are there already. */
  fill(ids: ArrayLike<number>, what: string): void {
    const want: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.rows) throw new InputError(`${what}: id ${id} is outside the vocabulary [0, ${this.rows})`, 'use the tokenizer that belongs to the model');
      if (!this.filled[id]) { this.filled[id] = 1; want.push(id); }
    }
    want.sort((a, b) => a - b);
    // Runs of consecutive rows are read with one call each.
    for (let i = 0; i < want.length;) {
      let j = i + 1;
      while (j < want.length && want[j] === want[j - 1]! + 1) j++;
      this.readRows(want[i]!, j - i, this.data.subarray(want[i]! * this.cols));
      i = j;
    }
  }

  /** Reads `count` rows from row `first` into the start of `into`. */
  readRows(first: number, count: number, into: Uint16Array): void {
    const fd = this.descriptor();
    const bytes = new Uint8Array(into.buffer, into.byteOffset, count * this.cols * 2);
    const at = first * this.cols * 2;
    for (let done = 0; done < bytes.length;) {
      const n = readSync(fd, bytes, done, bytes.length - done, at + done);
      if (n === 0) throw new IoError(`the embedding file ended at byte ${at + done}`, 'load the model again');
      done += n;
    }
    this.rowsRead += count;
  }

  /** Rows first … first + count − 1 read into one reused buffer (valid until the next call). */
  window(first: number, count: number): Uint16Array {
    if (!this.buffer || this.buffer.length < count * this.cols) this.buffer = new Uint16Array(count * this.cols);
    const view = this.buffer.subarray(0, count * this.cols);
    this.readRows(first, count, view);
    return view;
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    this.buffer = undefined;
  }
}
