// Strict safetensors reader: the 8-byte header length, the JSON header and every tensor's
// dtype, shape and offsets are validated before any tensor buffer is allocated. Offsets must
// tile the data area exactly (no gaps, no overlaps, no trailing bytes). F32/F16/BF16 → f32.
// Header parsing is separate from the bytes, so safetensors-reader.ts reads huge files by offset.

import { FormatError } from '../errors.js';
import { quoteName } from '../quote.js';
import { checkFinite } from './finite.js';

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<SafetensorsDType, number>> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Byte range inside the data area. */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsLimits {
  /** Largest JSON header accepted (default 100 MB, as the Rust reference). */
  readonly maxHeaderBytes?: number;
  /** Largest tensor element count accepted (default 2^31 − 1). */
  readonly maxElements?: number;
}

export class SafetensorsFile {
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>>;
  private readonly data: Uint8Array;
  private readonly source: string;

  private constructor(entries: ReadonlyMap<string, SafetensorsEntry>, metadata: Record<string, string>, data: Uint8Array, source: string) {
    this.entries = entries;
    this.metadata = metadata;
    this.data = data;
    this.source = source;
  }

  static parse(bytes: Uint8Array, source = 'safetensors file', limits: SafetensorsLimits = {}): SafetensorsFile {
    const hl = safetensorsHeaderLength(bytes, bytes.byteLength, source, limits);
    const { entries, metadata } = parseSafetensorsHeader(bytes.subarray(8, 8 + hl), bytes.byteLength - 8 - hl, source, limits);
    return new SafetensorsFile(entries, metadata, bytes.subarray(8 + hl), source);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /**
   * As getFloat32, but an F32 tensor at a 4-byte-aligned offset is returned as a view of the file's
   * bytes, without a copy: it keeps the whole file buffer alive, so use it when (nearly) every byte
   * of the file is wanted, e.g. an SAE's W_enc and W_dec. The caller must not write to it.
   */
  getFloat32View(name: string): Float32Array {
    const e = this.entries.get(name);
    if (e && e.dtype === 'F32' && (this.data.byteOffset + e.begin) % 4 === 0) {
      const view = new Float32Array(this.data.buffer, this.data.byteOffset + e.begin, (e.end - e.begin) / 4);
      checkFinite(view, `${this.source}: tensor ${quoteName(name)}`);
      return view;
    }
    return this.getFloat32(name);
  }

  /** An F64 or I32 tensor as a copy in its own type (anything else is a FormatError naming the dtype). */
  getExact(name: string, dtype: 'F64' | 'I32'): Float64Array | Int32Array {
    const e = this.entries.get(name);
    if (!e) throw new FormatError(`${this.source}: no tensor ${quoteName(name)}`);
    if (e.dtype !== dtype) throw new FormatError(`${this.source}: tensor ${quoteName(name)} is ${e.dtype}, expected ${dtype}`);
    const bytes = new Uint8Array(this.data.subarray(e.begin, e.end)); // a copy with its own aligned buffer (Buffer#slice would be a view)
    return dtype === 'F64' ? new Float64Array(bytes.buffer, 0, bytes.byteLength / 8) : new Int32Array(bytes.buffer, 0, bytes.byteLength / 4);
  }

  /** The tensor as float32 (F32 copied, F16/BF16/F64 converted). Integer dtypes and NaN/±Inf values are refused. */
  getFloat32(name: string): Float32Array {
    const e = this.entries.get(name);
    if (!e) throw new FormatError(`${this.source}: no tensor ${quoteName(name)}`, `tensors in the file: ${[...this.entries.keys()].slice(0, 20).map((n) => quoteName(n)).join(', ')}`);
    const what = `${this.source}: tensor ${quoteName(name)}`;
    const data = toFloat32(this.data.subarray(e.begin, e.end), e.dtype, what);
    checkFinite(data, what);
    return data;
  }
}

export interface SafetensorsHeader {
  readonly entries: Map<string, SafetensorsEntry>;
  readonly metadata: Record<string, string>;
}

function formatError(source: string, what: string): FormatError {
  return new FormatError(`${source}: ${what}`,
    'the file is not a valid safetensors file (truncated or corrupt?); re-export it with safetensors.torch.save_file');
}

/**
 * The JSON header's length from a file's first 8 bytes (`start`), checked against the limit and
 * the file's size. Files of any size: only these bytes need to be in memory.
 */
export function safetensorsHeaderLength(start: Uint8Array, fileBytes: number, source = 'safetensors file', limits: SafetensorsLimits = {}): number {
  const maxHeader = limits.maxHeaderBytes ?? 100_000_000;
  if (fileBytes < 8 || start.byteLength < 8) throw formatError(source, `file is ${fileBytes} bytes, shorter than the 8-byte header length`);
  const headerLen = new DataView(start.buffer, start.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(maxHeader)) throw formatError(source, `header length ${headerLen} exceeds the ${maxHeader}-byte limit`);
  const hl = Number(headerLen);
  if (8 + hl > fileBytes) throw formatError(source, `header length ${hl} runs past the end of the file (${fileBytes} bytes)`);
  return hl;
}

/**
 * Validates a JSON header (the bytes after the length) against a data area of `dataBytes` bytes:
 * dtypes, shapes, offsets, and that the offsets tile the data area exactly. Nothing else is read.
 * Shared by SafetensorsFile.parse, SafetensorsReader (safetensors-reader.ts) and checkpoint.ts.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, dataBytes: number, source = 'safetensors file', limits: SafetensorsLimits = {}): SafetensorsHeader {
  const maxElements = limits.maxElements ?? 2 ** 31 - 1;
  const bad = (what: string) => formatError(source, what);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw bad(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('header is not a JSON object');
  const entries: SafetensorsEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)
        || Object.values(raw).some((v) => typeof v !== 'string')) throw bad('__metadata__ must map strings to strings');
      metadata = raw as Record<string, string>;
      continue;
    }
    entries.push(parseEntry(name, raw, dataBytes, maxElements, bad));
  }
  // Offsets must tile [0, dataArea) exactly: no overlap, no hole, no trailing bytes.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin !== cursor) {
      throw bad(e.begin < cursor ? `tensor ${quoteName(e.name)} overlaps the previous tensor (starts at ${e.begin}, previous ends at ${cursor})`
        : `gap of ${e.begin - cursor} bytes before tensor ${quoteName(e.name)}`);
    }
    cursor = e.end;
  }
  if (cursor !== dataBytes) throw bad(`${dataBytes - cursor} trailing bytes after the last tensor`);
  return { entries: new Map(entries.map((e) => [e.name, e])), metadata };
}

function parseEntry(name: string, raw: unknown, dataBytes: number, maxElements: number, bad: (what: string) => FormatError): SafetensorsEntry {
  if (typeof raw !== 'object' || raw === null) throw bad(`entry ${quoteName(name)} is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string' || !Object.hasOwn(SAFETENSORS_DTYPE_BYTES, dtype)) throw bad(`tensor ${quoteName(name)} has unsupported dtype ${typeof dtype === 'string' ? quoteName(dtype) : JSON.stringify(dtype) ?? 'undefined'}`);
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(`tensor ${quoteName(name)} has an invalid shape ${quoteName(JSON.stringify(shape) ?? 'undefined')}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isSafeInteger(o) || o < 0)) {
    throw bad(`tensor ${quoteName(name)} has invalid data_offsets ${quoteName(JSON.stringify(offsets) ?? 'undefined')}`);
  }
  const [begin, end] = offsets as [number, number];
  let n = 1;
  for (const d of shape as number[]) { n *= d; if (n > maxElements) throw bad(`tensor ${quoteName(name)} declares ${JSON.stringify(shape)}, over the ${maxElements}-element limit`); }
  const width = SAFETENSORS_DTYPE_BYTES[dtype as SafetensorsDType];
  if (end < begin) throw bad(`tensor ${quoteName(name)} ends (${end}) before it begins (${begin})`);
  if (end - begin !== n * width) {
    throw bad(`tensor ${quoteName(name)} (${dtype} ${JSON.stringify(shape)}) needs ${n * width} bytes but its offsets span ${end - begin}`);
  }
  if (end > dataBytes) throw bad(`tensor ${quoteName(name)} ends at byte ${end}, past the data area (${dataBytes} bytes)`);
  return { name, dtype: dtype as SafetensorsDType, shape: shape as number[], begin, end };
}

/** The raw 16-bit words of an F16/BF16 tensor's bytes (little-endian, as safetensors stores them). */
export function toUint16(bytes: Uint8Array): Uint16Array {
  const out = new Uint16Array(bytes.byteLength / 2);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** bf16 bits → f32. */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i]! << 16;
  return new Float32Array(out.buffer);
}

/**
 * bf16 bits → fp16 bits where that is exact: bf16 has 7 mantissa bits and fp16 10, so a bf16
 * value is an fp16 value whenever its exponent fits fp16's (normal |w| in [2^-14, 65504], plus
 * the subnormals down to 2^-24 whose low bits are zero), and ±0, ±∞ and NaN map to themselves.
 * `inexact` counts the values that do not fit: those below 2^-14 are rounded to the nearest fp16
 * subnormal (absolute error ≤ 2^-25), those above 65504 become ±∞ (`overflow` counts them).
 * Trained weights have a few tiny values (a N(0, 1/√2304) matrix: ~0.02% below 2^-14), so a
 * policy is "exact" (inexact 0) or "absolute error ≤ 2^-25" (overflow 0). Lets a backend without
 * bf16 (onnxruntime's JS API) hold bf16 checkpoints in 16 bits and widen them when computing.
 */
export function bf16ToF16Exact(src: Uint16Array): { f16: Uint16Array; inexact: number; overflow: number } {
  const out = new Uint16Array(src.length);
  let inexact = 0, overflow = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    const sign = (b & 0x8000);
    const e = (b >> 7) & 0xff;
    const m = b & 0x7f;
    if (e === 0xff) { out[i] = sign | 0x7c00 | (m ? 0x200 | (m << 3) : 0); continue; } // ±∞, NaN (payload kept)
    if (e === 0 && m === 0) { out[i] = sign; continue; } // ±0 (bf16 subnormals are below fp16's range)
    const ue = e - 127; // unbiased exponent of 1.m · 2^ue (bf16 subnormals: e = 0, ue = -127)
    if (e !== 0 && ue >= -14 && ue <= 15) { out[i] = sign | ((ue + 15) << 10) | (m << 3); continue; }
    // Outside fp16's normal range: fp16 subnormal, overflow, or underflow. Round via float64.
    const v = (e === 0 ? m / 128 * 2 ** -126 : (1 + m / 128) * 2 ** ue);
    if (ue > 15) { out[i] = sign | 0x7c00; inexact++; overflow++; continue; }
    const q = v / 2 ** -24; // in units of the smallest fp16 subnormal
    let r = Math.round(q);
    if (Math.abs(q - Math.trunc(q) - 0.5) < 1e-12 && (Math.trunc(q) % 2 === 0)) r = Math.trunc(q); // ties to even
    if (r !== q) inexact++;
    out[i] = sign | (r >= 0x400 ? 0x400 : r); // r = 1024 rounds up to the smallest normal
  }
  return { f16: out, inexact, overflow };
}

/** f32 → bf16 bits, rounding to nearest even (as torch's `.to(torch.bfloat16)`); NaN stays NaN. */
export function f32ToBf16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const b = bits[i]!;
    if ((b & 0x7fffffff) > 0x7f800000) { out[i] = (b >>> 16) | 0x40; continue; }
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

export function toFloat32(bytes: Uint8Array, dtype: string, what: string): Float32Array {
  const n = bytes.byteLength;
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(n / 4);
      new Uint8Array(out.buffer).set(bytes);
      return out;
    }
    case 'F16':
      return f16ToF32(toUint16(bytes));
    case 'BF16':
      return bf16ToF32(toUint16(bytes));
    case 'F64': {
      const src = new Float64Array(n / 8);
      new Uint8Array(src.buffer).set(bytes);
      return Float32Array.from(src);
    }
    default:
      throw new FormatError(`${what} has dtype ${dtype}, not a floating-point type`, 'weights must be F32, F16, BF16 or F64');
  }
}

const F16_TABLE = (() => {
  // Exact half → single conversion for all 65536 bit patterns.
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})();

export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = F16_TABLE[src[i]!]!;
  return out;
}

/** A tensor to write: F32 data, F64 or I32 data, or the raw 16-bit words of a BF16/F16 tensor. */
export type EncodableTensor =
  | { readonly shape: readonly number[]; readonly data: Float32Array; readonly dtype?: 'F32' }
  | { readonly shape: readonly number[]; readonly data: Float64Array | Int32Array; readonly dtype?: 'F64' | 'I32' }
  | { readonly shape: readonly number[]; readonly data: Uint16Array; readonly dtype: 'BF16' | 'F16' };

/** Writes a safetensors file (F32, F64, I32, BF16, F16); used by trainers, generators, partials and tests. Header padded to 8 bytes. */
export function encodeSafetensors(tensors: ReadonlyMap<string, EncodableTensor>,
  metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const t = tensors.get(name)!;
    const dtype = t.dtype ?? (t.data instanceof Float64Array ? 'F64' : t.data instanceof Int32Array ? 'I32' : 'F32');
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = new Uint8Array(Math.ceil(raw.byteLength / 8) * 8).fill(0x20);
  headerBytes.set(raw);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.byteLength;
  for (const name of names) {
    const d = tensors.get(name)!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}
