// Defensive zip reader for torch checkpoints and .npz archives. The central directory is parsed
// here with every count, offset and size bounds-checked, and an entry is inflated (fflate) only
// after its declared size passed the caps and the deflate ratio bound, into a buffer of exactly
// that size; CRC-32 is verified as PyTorch's own reader does.
//
// Why not fflate's unzipSync with a filter: it trusts the entry count of the end record (up to
// 2^32 with zip64) and walks that many headers even past the end of the data, which turns a
// 100-byte file into a multi-minute loop, and it reports no useful error on truncated headers.

import { Inflate } from 'fflate';
import { FormatError, quoteName } from '@sfc/core';
import { bytesSource, type ByteSource } from './byte-source.js';
import type { ResolvedLimits } from './limits.js';

export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflated. */
  readonly method: 0 | 8;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc32: number;
  /** Byte offset of the entry's data inside the archive. */
  readonly dataOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
/** Deflate cannot expand data by more than ~1032:1; a larger declared ratio is a lie. */
const MAX_DEFLATE_RATIO = 1032;

/** Longest central directory read (a few hundred bytes per entry; torch and numpy write a handful). */
const MAX_CENTRAL_DIRECTORY = 2 ** 28;

export function looksLikeZip(bytes: Uint8Array | ByteSource): boolean {
  const b = bytes instanceof Uint8Array ? bytes : bytes.size >= 4 ? bytes.read(0, 4) : new Uint8Array(0);
  return b.byteLength >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;
}

export class ZipArchive {
  readonly entries: ReadonlyMap<string, ZipEntry>;
  private readonly src: ByteSource;
  private readonly source: string;
  private readonly limits: ResolvedLimits;
  private readonly verifyCrc: boolean;
  private bytesRead = 0;

  private constructor(src: ByteSource, source: string, entries: Map<string, ZipEntry>, limits: ResolvedLimits, verifyCrc: boolean) {
    this.src = src;
    this.source = source;
    this.entries = entries;
    this.limits = limits;
    this.verifyCrc = verifyCrc;
  }

  /** Parses the central directory of `bytes` (in memory, or a file read by offset). */
  static open(bytes: Uint8Array | ByteSource, source: string, limits: ResolvedLimits, verifyCrc = true): ZipArchive {
    const src = bytes instanceof Uint8Array ? bytesSource(bytes) : bytes;
    const bad = (m: string) => new FormatError(`${source}: ${m}`, 'the zip archive is truncated or corrupt; re-download or re-save it');
    const n = src.size;
    // A window of the file with little-endian accessors at absolute offsets.
    const at = (offset: number, length: number) => {
      const b = src.read(offset, length);
      const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      return {
        bytes: b,
        u16: (p: number) => view.getUint16(p - offset, true),
        u32: (p: number) => view.getUint32(p - offset, true),
        u64: (p: number, what: string) => {
          const v = view.getBigUint64(p - offset, true);
          if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${what} ${v} is out of range`);
          return Number(v);
        },
      };
    };

    // End of central directory: 22 bytes plus a comment of up to 65535 bytes at the very end,
    // preceded by the 20-byte zip64 locator when there is one.
    if (n < 22) throw bad('no end-of-central-directory record (not a zip file, or truncated)');
    const tailStart = Math.max(0, n - 22 - 65535 - 20);
    const tail = at(tailStart, n - tailStart);
    let eocd = -1;
    for (let p = n - 22; p >= tailStart && p >= n - 22 - 65535; p--) {
      if (tail.u32(p) === SIG_EOCD && p + 22 + tail.u16(p + 20) <= n) { eocd = p; break; }
    }
    if (eocd < 0) throw bad('no end-of-central-directory record (not a zip file, or truncated)');
    if (tail.u16(eocd + 4) !== 0 || tail.u16(eocd + 6) !== 0) throw bad('multi-disk zip archives are not supported');
    let count = tail.u16(eocd + 10);
    let cdSize = tail.u32(eocd + 12);
    let cdOffset = tail.u32(eocd + 16);
    let cdLimit = eocd;
    const locator = eocd - 20;
    if (locator >= tailStart && tail.u32(locator) === SIG_ZIP64_LOCATOR) {
      const z = tail.u64(locator + 8, 'zip64 end record offset');
      if (z + 56 > locator) throw bad('zip64 end-of-central-directory record is missing or misplaced');
      const rec = at(z, 56);
      if (rec.u32(z) !== SIG_ZIP64_EOCD) throw bad('zip64 end-of-central-directory record is missing or misplaced');
      count = rec.u64(z + 32, 'zip64 entry count');
      cdSize = rec.u64(z + 40, 'zip64 central directory size');
      cdOffset = rec.u64(z + 48, 'zip64 central directory offset');
      cdLimit = z;
    } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      throw bad('zip64 archive without a zip64 end-of-central-directory locator');
    }
    if (cdOffset + cdSize > cdLimit) throw bad(`central directory (offset ${cdOffset}, ${cdSize} bytes) runs past its end record`);
    if (count * 46 > cdSize) throw bad(`${count} entries cannot fit in a ${cdSize}-byte central directory`);
    if (cdSize > MAX_CENTRAL_DIRECTORY) throw bad(`central directory of ${cdSize} bytes is over the ${MAX_CENTRAL_DIRECTORY}-byte limit`);

    const cd = at(cdOffset, cdSize);
    const { u16, u32 } = cd;
    const entries = new Map<string, ZipEntry>();
    const cdEnd = cdOffset + cdSize;
    let p = cdOffset;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cdEnd || u32(p) !== SIG_CENTRAL) throw bad(`central directory entry ${i} is malformed`);
      const flags = u16(p + 8);
      const method = u16(p + 10);
      const crc = u32(p + 16);
      let csize = u32(p + 20);
      let size = u32(p + 24);
      const nameLen = u16(p + 28);
      const extraLen = u16(p + 30);
      const commentLen = u16(p + 32);
      let localOffset = u32(p + 42);
      const nameStart = p + 46;
      const extraStart = nameStart + nameLen;
      const next = extraStart + extraLen + commentLen;
      if (next > cdEnd) throw bad(`central directory entry ${i} runs past the directory`);
      const name = decodeName(cd.bytes.subarray(nameStart - cdOffset, extraStart - cdOffset), (flags & 0x800) !== 0);
      const shown = quoteName(name);
      if (size === 0xffffffff || csize === 0xffffffff || localOffset === 0xffffffff) {
        // Zip64 extended information: only the fields saturated above are present, in this order.
        let found = false;
        for (let e = extraStart; e + 4 <= extraStart + extraLen;) {
          const id = u16(e), len = u16(e + 2);
          if (e + 4 + len > extraStart + extraLen) break;
          if (id === 0x0001) {
            let q = e + 4;
            const field = (what: string) => {
              if (q + 8 > e + 4 + len) throw bad(`entry ${shown}: zip64 field ${what} is missing`);
              const v = cd.u64(q, `entry ${shown} ${what}`); q += 8; return v;
            };
            if (size === 0xffffffff) size = field('size');
            if (csize === 0xffffffff) csize = field('compressed size');
            if (localOffset === 0xffffffff) localOffset = field('offset');
            found = true;
            break;
          }
          e += 4 + len;
        }
        if (!found) throw bad(`entry ${shown} needs a zip64 extra field but has none`);
      }
      if (flags & 0x1) throw bad(`entry ${shown} is encrypted`);
      if (method !== 0 && method !== 8) throw bad(`entry ${shown} uses compression method ${method}; only stored (0) and deflate (8) are supported`);
      if (method === 0 && csize !== size) throw bad(`stored entry ${shown} declares ${size} bytes but occupies ${csize}`);
      if (method === 8 && size > csize * MAX_DEFLATE_RATIO + 1024) {
        throw bad(`entry ${shown} declares ${size} bytes from ${csize} compressed bytes, beyond what deflate can produce (zip bomb?)`);
      }
      if (localOffset + 30 > cdOffset) throw bad(`entry ${shown}: local header missing at offset ${localOffset}`);
      const local = at(localOffset, 30);
      if (local.u32(localOffset) !== SIG_LOCAL) throw bad(`entry ${shown}: local header missing at offset ${localOffset}`);
      const dataOffset = localOffset + 30 + local.u16(localOffset + 26) + local.u16(localOffset + 28);
      if (dataOffset + csize > cdOffset) throw bad(`entry ${shown} (${csize} bytes at ${dataOffset}) runs into the central directory`);
      if (entries.has(name)) throw bad(`duplicate entry ${shown}`);
      entries.set(name, { name, method: method as 0 | 8, compressedSize: csize, size, crc32: crc, dataOffset });
      p = next;
    }
    return new ZipArchive(src, source, entries, limits, verifyCrc);
  }

  /**
   * The entry's uncompressed bytes. Stored entries of an in-memory archive are views into it (no
   * copy); deflated ones are inflated into a fresh buffer of the declared size, and inflating
   * stops as soon as the stream would produce more than that (the entry is refused).
   */
  read(entry: ZipEntry): Uint8Array {
    const { maxEntryBytes, maxArchiveBytes } = this.limits;
    const shown = quoteName(entry.name);
    if (entry.size > maxEntryBytes) {
      throw new FormatError(`${this.source}: entry ${shown} is ${entry.size} bytes, over the ${maxEntryBytes}-byte limit`,
        'raise limits.maxEntryBytes if the file is trusted and genuinely this large');
    }
    this.bytesRead += entry.size;
    if (this.bytesRead > maxArchiveBytes) {
      throw new FormatError(`${this.source}: reading ${shown} brings the archive total to ${this.bytesRead} bytes, over the ${maxArchiveBytes}-byte limit`,
        'raise limits.maxArchiveBytes if the file is trusted and genuinely this large');
    }
    const raw = this.src.read(entry.dataOffset, entry.compressedSize);
    const out = entry.method === 0 ? raw : boundedInflate(raw, entry.size, `${this.source}: entry ${shown}`);
    if (this.verifyCrc && crc32(out) !== entry.crc32) {
      throw new FormatError(`${this.source}: entry ${shown} fails its CRC-32 check`, 'the archive is corrupt; re-download or re-save it');
    }
    return out;
  }
}

/** Inflated output produced per step at most (beyond what the entry still declares). */
const INFLATE_STEP_OUTPUT = 2 ** 26;

/**
 * Inflates a raw deflate stream into exactly `size` bytes. The input is fed in slices small
 * enough that one slice cannot produce more than ~64 MiB past the declared size, and inflating
 * stops at the first slice that overruns it: a stream declared as 387 bytes that would expand
 * to 4 GiB is refused after at most one slice, in milliseconds.
 */
export function boundedInflate(raw: Uint8Array, size: number, what: string): Uint8Array {
  const corrupt = (m: string, cause?: unknown) => new FormatError(`${what} ${m}`, 'the archive is corrupt; re-download or re-save it',
    cause === undefined ? undefined : { cause });
  const out = new Uint8Array(size);
  let produced = 0;
  let overrun = false;
  const inflater = new Inflate((chunk) => {
    if (produced + chunk.byteLength > size) { overrun = true; throw corrupt(`inflates to more than its declared ${size} bytes (zip bomb?)`); }
    out.set(chunk, produced);
    produced += chunk.byteLength;
  });
  try {
    let at = 0;
    do {
      // Input that can produce at most what is still declared plus one step (deflate ≤ 1032:1).
      const step = Math.max(2 ** 16, Math.min(2 ** 24, Math.ceil((size - produced + INFLATE_STEP_OUTPUT) / MAX_DEFLATE_RATIO)));
      const end = Math.min(raw.byteLength, at + step);
      inflater.push(raw.subarray(at, end), end === raw.byteLength);
      at = end;
    } while (at < raw.byteLength);
  } catch (e) {
    if (overrun) throw e;
    throw corrupt(`does not inflate (${(e as Error).message})`, e);
  }
  if (produced !== size) throw corrupt(`inflates to ${produced} bytes, not the declared ${size}`);
  return out;
}

function decodeName(b: Uint8Array, utf8: boolean): string {
  if (utf8) return new TextDecoder('utf-8').decode(b);
  // Legacy zips use CP437; ASCII names (all that torch and numpy write) read the same as latin-1.
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

const CRC_TABLES = (() => {
  // Slicing-by-4 tables for the reflected CRC-32 polynomial 0xEDB88320.
  const t = new Uint32Array(4 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 4; s++) t[s * 256 + i] = (t[(s - 1) * 256 + i]! >>> 8) ^ t[t[(s - 1) * 256 + i]! & 0xff]!;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  const t = CRC_TABLES;
  let c = 0xffffffff;
  let i = 0;
  const n4 = b.length & ~3;
  for (; i < n4; i += 4) {
    c ^= b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
    c = t[768 + (c & 0xff)]! ^ t[512 + ((c >>> 8) & 0xff)]! ^ t[256 + ((c >>> 16) & 0xff)]! ^ t[c >>> 24]!;
  }
  for (; i < b.length; i++) c = t[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
