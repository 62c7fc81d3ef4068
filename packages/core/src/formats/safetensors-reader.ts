// A safetensors file read by offset from a file descriptor: the header is read and validated
// (checkSafetensorsHeader, the same rules as SafetensorsFile.parse), then each tensor is read on
// request. Files of any size work (one readFile cannot return more than 2 GiB), and tensors that
// are never asked for are never read. Used for SAE weight files (docs/formats.md).

import { closeSync, fstatSync, openSync } from 'node:fs';
import { FormatError } from '../errors.js';
import { quoteName } from '../quote.js';
import { checkFinite } from './finite.js';
import { readRange } from './read-range.js';
import { checkSafetensorsHeader, toFloat32, type SafetensorsEntry, type SafetensorsLimits } from './safetensors.js';

export class SafetensorsReader {
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>>;
  private fd: number | undefined;

  private constructor(fd: number, private readonly path: string, private readonly dataStart: number,
    entries: ReadonlyMap<string, SafetensorsEntry>, metadata: Record<string, string>) {
    this.fd = fd;
    this.entries = entries;
    this.metadata = metadata;
  }

  /** Opens `path` and validates its header; call close() when done (or use withSafetensors). */
  static open(path: string, limits: SafetensorsLimits = {}): SafetensorsReader {
    const maxHeader = limits.maxHeaderBytes ?? 100_000_000;
    const maxElements = limits.maxElements ?? 2 ** 31 - 1;
    const bad = (what: string) => new FormatError(`${path}: ${what}`,
      'the file is not a valid safetensors file (truncated or corrupt?); re-export it with safetensors.torch.save_file');
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size < 8) throw bad(`file is ${size} bytes, shorter than the 8-byte header length`);
      const headerLen = new DataView(readRange(fd, 0, 8, path).buffer).getBigUint64(0, true);
      if (headerLen > BigInt(maxHeader)) throw bad(`header length ${headerLen} exceeds the ${maxHeader}-byte limit`);
      const hl = Number(headerLen);
      if (8 + hl > size) throw bad(`header length ${hl} runs past the end of the file (${size} bytes)`);
      let header: unknown;
      try {
        header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(readRange(fd, 8, hl, path)));
      } catch (e) {
        throw bad(`header is not valid UTF-8 JSON (${(e as Error).message})`);
      }
      const { entries, metadata } = checkSafetensorsHeader(header, size - 8 - hl, bad, maxElements);
      return new SafetensorsReader(fd, path, 8 + hl, entries, metadata);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The tensor as float32, read from the file now (F32 straight into the result, no copy). NaN/±Inf are refused. */
  getFloat32(name: string): Float32Array {
    const e = this.entries.get(name);
    if (!e) throw new FormatError(`${this.path}: no tensor ${quoteName(name)}`, `tensors in the file: ${[...this.entries.keys()].slice(0, 20).map((n) => quoteName(n)).join(', ')}`);
    if (this.fd === undefined) throw new Error(`internal: ${this.path} read after close`);
    const what = `${this.path}: tensor ${quoteName(name)}`;
    const bytes = readRange(this.fd, this.dataStart + e.begin, e.end - e.begin, this.path);
    const data = e.dtype === 'F32' ? new Float32Array(bytes.buffer, 0, bytes.byteLength / 4) : toFloat32(bytes, e.dtype, what);
    checkFinite(data, what);
    return data;
  }

  /** The same as getFloat32 (every read is already a fresh array); for SafetensorsFile's callers. */
  getFloat32View(name: string): Float32Array {
    return this.getFloat32(name);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Opens `path`, runs `use`, and closes the file whatever happens. */
export function withSafetensors<T>(path: string, use: (file: SafetensorsReader) => T, limits: SafetensorsLimits = {}): T {
  const file = SafetensorsReader.open(path, limits);
  try {
    return use(file);
  } finally {
    file.close();
  }
}
