// A safetensors file read by offset from a file descriptor: the header is read and validated
// (parseSafetensorsHeader, the same rules as SafetensorsFile.parse), then each tensor is read on
// request. Files of any size work (one readFile cannot return more than 2 GiB), and tensors that
// are never asked for are never read. Used for SAE weight files and model checkpoints
// (model/checkpoint.ts; docs/formats.md).

import { closeSync, fstatSync, openSync } from 'node:fs';
import { FormatError } from '../errors.js';
import { quoteName } from '../quote.js';
import { checkFinite, checkFinite16 } from './finite.js';
import { readRange } from './read-range.js';
import { bf16ToF32, f16ToF32, parseSafetensorsHeader, safetensorsHeaderLength, toFloat32, type SafetensorsEntry, type SafetensorsLimits } from './safetensors.js';

/** A tensor's values without widening: f32 as f32, bf16/f16 as their 16-bit words. */
export type RawTensor =
  | { readonly dtype: 'F32'; readonly data: Float32Array }
  | { readonly dtype: 'BF16' | 'F16'; readonly data: Uint16Array };

export class SafetensorsReader {
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>>;
  private fd: number | undefined;

  private constructor(fd: number, readonly path: string, private readonly dataStart: number,
    entries: ReadonlyMap<string, SafetensorsEntry>, metadata: Record<string, string>) {
    this.fd = fd;
    this.entries = entries;
    this.metadata = metadata;
  }

  /** Opens `path` and validates its header; call close() when done (or use withSafetensors). */
  static open(path: string, limits: SafetensorsLimits = {}): SafetensorsReader {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const hl = safetensorsHeaderLength(readRange(fd, 0, Math.min(8, size), path), size, path, limits);
      const { entries, metadata } = parseSafetensorsHeader(readRange(fd, 8, hl, path), size - 8 - hl, path, limits);
      return new SafetensorsReader(fd, path, 8 + hl, entries, metadata);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The tensor as float32, read from the file now (F32 straight into the result, no copy). Integer dtypes and NaN/±Inf are refused. */
  getFloat32(name: string): Float32Array {
    const { e, bytes, what } = this.read(name);
    // `bytes` is a fresh buffer of its own: typed views on it need no copy.
    const data = e.dtype === 'F32' ? new Float32Array(bytes.buffer, 0, bytes.byteLength / 4)
      : e.dtype === 'BF16' ? bf16ToF32(words(bytes))
        : e.dtype === 'F16' ? f16ToF32(words(bytes))
          : toFloat32(bytes, e.dtype, what);
    checkFinite(data, what);
    return data;
  }

  /** The same as getFloat32 (every read is already a fresh array); for SafetensorsFile's callers. */
  getFloat32View(name: string): Float32Array {
    return this.getFloat32(name);
  }

  /**
   * The tensor as stored, without widening: F32 as f32, BF16/F16 as their 16-bit words (other
   * dtypes are refused). NaN/±Inf are refused, as by getFloat32.
   */
  getRaw(name: string): RawTensor {
    const { e, bytes, what } = this.read(name);
    if (e.dtype === 'F32') {
      const data = new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
      checkFinite(data, what);
      return { dtype: 'F32', data };
    }
    if (e.dtype !== 'BF16' && e.dtype !== 'F16') throw new FormatError(`${what} has dtype ${e.dtype}`, 'weights must be F32, BF16 or F16');
    const data = words(bytes);
    checkFinite16(data, e.dtype, what);
    return { dtype: e.dtype, data };
  }

  private read(name: string): { e: SafetensorsEntry; bytes: Uint8Array; what: string } {
    const e = this.entries.get(name);
    if (!e) throw new FormatError(`${this.path}: no tensor ${quoteName(name)}`, `tensors in the file: ${[...this.entries.keys()].slice(0, 20).map((n) => quoteName(n)).join(', ')}`);
    if (this.fd === undefined) throw new Error(`internal: ${this.path} read after close`);
    return { e, bytes: readRange(this.fd, this.dataStart + e.begin, e.end - e.begin, this.path), what: `${this.path}: tensor ${quoteName(name)}` };
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

const words = (bytes: Uint8Array): Uint16Array => new Uint16Array(bytes.buffer, 0, bytes.byteLength / 2);

/** Opens `path`, runs `use`, and closes the file whatever happens. */
export function withSafetensors<T>(path: string, use: (file: SafetensorsReader) => T, limits: SafetensorsLimits = {}): T {
  const file = SafetensorsReader.open(path, limits);
  try {
    return use(file);
  } finally {
    file.close();
  }
}
