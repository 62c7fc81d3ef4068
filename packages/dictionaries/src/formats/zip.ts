// Defensive zip reader for torch checkpoints and .npz archives. The central directory is parsed
// here with every count, offset and size bounds-checked, and an entry is inflated (fflate) only
// after its declared size passed the caps and the deflate ratio bound, into a buffer of exactly
// that size; CRC-32 is verified as PyTorch's own reader does.
//
// Why not fflate's unzipSync with a filter: it trusts the entry count of the end record (up to
// 2^32 with zip64) and walks that many headers even past the end of the data, which turns a
// 100-byte file into a multi-minute loop, and it reports no useful error on truncated headers.

import { inflateSync } from 'fflate';
import { FormatError } from '@sfc/core';
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

export function looksLikeZip(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

export class ZipArchive {
  readonly entries: ReadonlyMap<string, ZipEntry>;
  private readonly bytes: Uint8Array;
  private readonly source: string;
  private readonly limits: ResolvedLimits;
  private readonly verifyCrc: boolean;
  private bytesRead = 0;

  private constructor(bytes: Uint8Array, source: string, entries: Map<string, ZipEntry>, limits: ResolvedLimits, verifyCrc: boolean) {
    this.bytes = bytes;
    this.source = source;
    this.entries = entries;
    this.limits = limits;
    this.verifyCrc = verifyCrc;
  }

  static open(bytes: Uint8Array, source: string, limits: ResolvedLimits, verifyCrc = true): ZipArchive {
    const bad = (m: string) => new FormatError(`${source}: ${m}`, 'the zip archive is truncated or corrupt; re-download or re-save it');
    const n = bytes.byteLength;
    const view = new DataView(bytes.buffer, bytes.byteOffset, n);
    const u16 = (p: number) => view.getUint16(p, true);
    const u32 = (p: number) => view.getUint32(p, true);
    const u64 = (p: number, what: string) => {
      const v = view.getBigUint64(p, true);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${what} ${v} is out of range`);
      return Number(v);
    };

    // End of central directory: 22 bytes plus a comment of up to 65535 bytes at the very end.
    let eocd = -1;
    for (let p = n - 22; p >= 0 && p >= n - 22 - 65535; p--) {
      if (u32(p) === SIG_EOCD && p + 22 + u16(p + 20) <= n) { eocd = p; break; }
    }
    if (eocd < 0) throw bad('no end-of-central-directory record (not a zip file, or truncated)');
    if (u16(eocd + 4) !== 0 || u16(eocd + 6) !== 0) throw bad('multi-disk zip archives are not supported');
    let count = u16(eocd + 10);
    let cdSize = u32(eocd + 12);
    let cdOffset = u32(eocd + 16);
    let cdLimit = eocd;
    const locator = eocd - 20;
    if (locator >= 0 && u32(locator) === SIG_ZIP64_LOCATOR) {
      const z = u64(locator + 8, 'zip64 end record offset');
      if (z + 56 > locator || u32(z) !== SIG_ZIP64_EOCD) throw bad('zip64 end-of-central-directory record is missing or misplaced');
      count = u64(z + 32, 'zip64 entry count');
      cdSize = u64(z + 40, 'zip64 central directory size');
      cdOffset = u64(z + 48, 'zip64 central directory offset');
      cdLimit = z;
    } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      throw bad('zip64 archive without a zip64 end-of-central-directory locator');
    }
    if (cdOffset + cdSize > cdLimit) throw bad(`central directory (offset ${cdOffset}, ${cdSize} bytes) runs past its end record`);
    if (count * 46 > cdSize) throw bad(`${count} entries cannot fit in a ${cdSize}-byte central directory`);

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
      const name = decodeName(bytes.subarray(nameStart, extraStart), (flags & 0x800) !== 0);
      if (size === 0xffffffff || csize === 0xffffffff || localOffset === 0xffffffff) {
        // Zip64 extended information: only the fields saturated above are present, in this order.
        let found = false;
        for (let e = extraStart; e + 4 <= extraStart + extraLen;) {
          const id = u16(e), len = u16(e + 2);
          if (e + 4 + len > extraStart + extraLen) break;
          if (id === 0x0001) {
            let q = e + 4;
            const field = (what: string) => {
              if (q + 8 > e + 4 + len) throw bad(`entry '${name}': zip64 field ${what} is missing`);
              const v = u64(q, `entry '${name}' ${what}`); q += 8; return v;
            };
            if (size === 0xffffffff) size = field('size');
            if (csize === 0xffffffff) csize = field('compressed size');
            if (localOffset === 0xffffffff) localOffset = field('offset');
            found = true;
            break;
          }
          e += 4 + len;
        }
        if (!found) throw bad(`entry '${name}' needs a zip64 extra field but has none`);
      }
      if (flags & 0x1) throw bad(`entry '${name}' is encrypted`);
      if (method !== 0 && method !== 8) throw bad(`entry '${name}' uses compression method ${method}; only stored (0) and deflate (8) are supported`);
      if (method === 0 && csize !== size) throw bad(`stored entry '${name}' declares ${size} bytes but occupies ${csize}`);
      if (method === 8 && size > csize * MAX_DEFLATE_RATIO + 1024) {
        throw bad(`entry '${name}' declares ${size} bytes from ${csize} compressed bytes, beyond what deflate can produce (zip bomb?)`);
      }
      if (localOffset + 30 > cdOffset || u32(localOffset) !== SIG_LOCAL) throw bad(`entry '${name}': local header missing at offset ${localOffset}`);
      const dataOffset = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28);
      if (dataOffset + csize > cdOffset) throw bad(`entry '${name}' (${csize} bytes at ${dataOffset}) runs into the central directory`);
      if (entries.has(name)) throw bad(`duplicate entry '${name}'`);
      entries.set(name, { name, method: method as 0 | 8, compressedSize: csize, size, crc32: crc, dataOffset });
      p = next;
    }
    return new ZipArchive(bytes, source, entries, limits, verifyCrc);
  }

  /**
   * The entry's uncompressed bytes. Stored entries are views into the archive (no copy);
   * deflated ones are inflated into a fresh buffer of the declared size.
   */
  read(entry: ZipEntry): Uint8Array {
    const { maxEntryBytes, maxArchiveBytes } = this.limits;
    if (entry.size > maxEntryBytes) {
      throw new FormatError(`${this.source}: entry '${entry.name}' is ${entry.size} bytes, over the ${maxEntryBytes}-byte limit`,
        'raise limits.maxEntryBytes if the file is trusted and genuinely this large');
    }
    this.bytesRead += entry.size;
    if (this.bytesRead > maxArchiveBytes) {
      throw new FormatError(`${this.source}: reading '${entry.name}' brings the archive total to ${this.bytesRead} bytes, over the ${maxArchiveBytes}-byte limit`,
        'raise limits.maxArchiveBytes if the file is trusted and genuinely this large');
    }
    const raw = this.bytes.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize);
    let out: Uint8Array;
    if (entry.method === 0) {
      out = raw;
    } else {
      try {
        out = inflateSync(raw, { out: new Uint8Array(entry.size) });
      } catch (e) {
        throw new FormatError(`${this.source}: entry '${entry.name}' does not inflate (${(e as Error).message})`,
          'the archive is corrupt; re-download or re-save it', { cause: e });
      }
      if (out.byteLength !== entry.size) {
        throw new FormatError(`${this.source}: entry '${entry.name}' inflates to ${out.byteLength} bytes, not the declared ${entry.size}`,
          'the archive is corrupt; re-download or re-save it');
      }
    }
    if (this.verifyCrc && crc32(out) !== entry.crc32) {
      throw new FormatError(`${this.source}: entry '${entry.name}' fails its CRC-32 check`, 'the archive is corrupt; re-download or re-save it');
    }
    return out;
  }
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
