// Readers for numpy's .npy arrays (format versions 1–3) and .npz archives of them (np.savez,
// stored, and np.savez_compressed, deflated). The header is a Python dict literal, parsed by a
// small literal parser (never evaluated). Byte order and fortran_order are honoured: results
// are C-order, host-order arrays. Object arrays (which need pickle) are refused.

import { FormatError, quoteName } from '@sfc/core';
import type { ByteSource } from './byte-source.js';
import { ElementBudget, resolveLimits, type FormatLimits, type ResolvedLimits } from './limits.js';
import { checkedNumel, fortranStrides, contiguousStrides, gatherStrided, ITEM_BYTES, type DenseTensor, type DType } from './tensor-data.js';
import { looksLikeZip, ZipArchive } from './zip.js';

export interface NpyArray extends DenseTensor {
  /** numpy's dtype string as stored, e.g. '<f4', '>i8', '|b1'. */
  readonly descr: string;
  /** Whether the file stored the array in Fortran order (data is C order regardless). */
  readonly fortranOrder: boolean;
}

export interface NpyOptions {
  readonly limits?: FormatLimits;
  /** Verify CRC-32 of .npz entries (default true). */
  readonly verifyCrc?: boolean;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const KIND_DTYPES: Readonly<Record<string, DType>> = {
  f2: 'float16', f4: 'float32', f8: 'float64', i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64',
  u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64', b1: 'bool',
};

export function readNpy(bytes: Uint8Array, source = 'npy file', options: NpyOptions = {}): NpyArray {
  const limits = resolveLimits(options.limits);
  return parseNpy(bytes, source, limits, new ElementBudget(limits.maxTotalElements, (n) => totalError(source, n, limits)));
}

/** All arrays of an .npz archive, keyed by entry name without '.npy', in archive order. */
/** Reads from the archive's bytes, or from a ByteSource (a file read by offset, one entry at a time). */
export function readNpz(bytes: Uint8Array | ByteSource, source = 'npz file', options: NpyOptions = {}): Map<string, NpyArray> {
  const limits = resolveLimits(options.limits);
  if (!looksLikeZip(bytes)) {
    const head = bytes instanceof Uint8Array ? bytes : bytes.read(0, Math.min(8, bytes.size));
    const isNpy = MAGIC.every((m, i) => head[i] === m);
    throw new FormatError(`${source}: not an .npz archive (no zip signature)`, isNpy ? 'this is a single .npy array; read it with readNpy' : 'expected a file written by numpy.savez');
  }
  const zip = ZipArchive.open(bytes, source, limits, options.verifyCrc ?? true);
  const budget = new ElementBudget(limits.maxTotalElements, (n) => totalError(source, n, limits));
  const out = new Map<string, NpyArray>();
  for (const entry of zip.entries.values()) {
    if (!entry.name.endsWith('.npy')) continue; // directories or stray files: numpy ignores them too
    out.set(entry.name.slice(0, -4), parseNpy(zip.read(entry), `${source}:${quoteName(entry.name)}`, limits, budget));
  }
  if (out.size === 0) throw new FormatError(`${source}: the archive holds no .npy arrays`, 'expected a file written by numpy.savez');
  return out;
}

function totalError(source: string, n: number, limits: ResolvedLimits): FormatError {
  return new FormatError(`${source}: arrays add up to ${n} elements, over the ${limits.maxTotalElements}-element limit`,
    'raise limits.maxTotalElements if the file is trusted');
}

function parseNpy(bytes: Uint8Array, source: string, limits: ResolvedLimits, budget: ElementBudget): NpyArray {
  const bad = (m: string, hint = 'the file is truncated or corrupt; re-save it with numpy.save') => new FormatError(`${source}: ${m}`, hint);
  if (bytes.byteLength < 10 || !MAGIC.every((m, i) => bytes[i] === m)) throw bad('not an .npy array (missing \\x93NUMPY magic)');
  const major = bytes[6]!, minor = bytes[7]!;
  if (major < 1 || major > 3 || minor !== 0) throw bad(`unsupported .npy format version ${major}.${minor}`, 'versions 1.0, 2.0 and 3.0 are read');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number, headerStart: number;
  if (major === 1) { headerLen = view.getUint16(8, true); headerStart = 10; } else {
    if (bytes.byteLength < 12) throw bad('truncated header length');
    headerLen = view.getUint32(8, true); headerStart = 12;
  }
  if (headerLen > limits.maxHeaderBytes) throw bad(`header of ${headerLen} bytes exceeds the ${limits.maxHeaderBytes}-byte limit`);
  if (headerStart + headerLen > bytes.byteLength) throw bad(`header of ${headerLen} bytes runs past the end of the file`);
  const raw = bytes.subarray(headerStart, headerStart + headerLen);
  let text: string;
  if (major === 3) {
    try { text = new TextDecoder('utf-8', { fatal: true }).decode(raw); } catch { throw bad('header is not valid UTF-8'); }
  } else {
    text = '';
    for (let i = 0; i < raw.length; i++) text += String.fromCharCode(raw[i]!);
  }
  const header = parseLiteral(text, source);
  if (!(header instanceof Map)) throw bad('header is not a dict');
  const keys = [...header.keys()].sort().join(',');
  if (keys !== 'descr,fortran_order,shape') throw bad(`header keys are {${[...header.keys()].join(', ')}}, expected descr, fortran_order, shape`);
  const descr = header.get('descr');
  const fortran = header.get('fortran_order');
  const shape = header.get('shape');
  if (typeof fortran !== 'boolean') throw bad('fortran_order is not True or False');
  if (!Array.isArray(shape) || !isTupleLiteral(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`shape ${JSON.stringify(shape)} is not a tuple of non-negative integers`);
  }
  if (typeof descr !== 'string') {
    throw bad('structured dtypes (record arrays) are not supported', 'save each field as its own array');
  }
  const dims = shape as number[];
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  if (descr.includes('O')) throw bad(`dtype ${quoteName(descr)} is an object array, which would need pickle to read`, 'save numeric arrays only (np.save refuses to load these without allow_pickle too)');
  const dtype = m && Object.hasOwn(KIND_DTYPES, `${m[2]}${m[3]}`) ? KIND_DTYPES[`${m[2]}${m[3]}`] : undefined;
  if (!m || !dtype) throw bad(`unsupported dtype ${quoteName(descr)}`, 'supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1, any byte order');
  const littleEndian = m[1] !== '>';
  const numel = checkedNumel(dims, limits.maxElements, source);
  const dataStart = headerStart + headerLen;
  const need = numel * ITEM_BYTES[dtype];
  if (need > limits.maxEntryBytes) throw bad(`array data of ${need} bytes exceeds the ${limits.maxEntryBytes}-byte limit`, 'raise limits.maxEntryBytes if the file is trusted');
  if (bytes.byteLength - dataStart < need) throw bad(`array ${descr} [${dims.join(', ')}] needs ${need} data bytes but the file has ${bytes.byteLength - dataStart}`);
  budget.take(numel);
  const strides = fortran ? fortranStrides(dims) : contiguousStrides(dims);
  const data = gatherStrided(bytes.subarray(dataStart, dataStart + need), { dtype, littleEndian, offset: 0, shape: dims, strides }, limits, source);
  return { kind: 'tensor', dtype, shape: dims, data, descr, fortranOrder: fortran };
}

// ------------------------------------------------------------------ Python literal parser

type Literal = string | number | boolean | null | Literal[] | Map<string, Literal>;
const TUPLES = new WeakSet<Literal[]>();
function isTupleLiteral(v: Literal[]): boolean { return TUPLES.has(v); }

/** Parses the Python literal subset numpy headers use: dicts, tuples, lists, str, int, bools, None. */
function parseLiteral(text: string, source: string): Literal {
  let i = 0;
  const bad = (m: string) => new FormatError(`${source}: header ${m} at character ${i}`, 'the .npy header is corrupt; re-save it with numpy.save');
  const ws = () => { while (i < text.length && /\s/.test(text[i]!)) i++; };
  const value = (depth: number): Literal => {
    if (depth > 32) throw bad('nests too deeply');
    ws();
    const c = text[i];
    if (c === undefined) throw bad('ends early');
    if (c === '{') {
      i++;
      const m = new Map<string, Literal>();
      for (;;) {
        ws();
        if (text[i] === '}') { i++; return m; }
        const k = value(depth + 1);
        if (typeof k !== 'string') throw bad('has a non-string dict key');
        ws();
        if (text[i] !== ':') throw bad("is missing ':'");
        i++;
        if (m.has(k)) throw bad(`repeats key '${k}'`);
        m.set(k, value(depth + 1));
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return m; }
        throw bad("is missing ',' or '}'");
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const items: Literal[] = [];
      let sawComma = false;
      for (;;) {
        ws();
        if (text[i] === close) { i++; break; }
        items.push(value(depth + 1));
        ws();
        if (text[i] === ',') { i++; sawComma = true; continue; }
        if (text[i] === close) { i++; break; }
        throw bad(`is missing ',' or '${close}'`);
      }
      // '(3)' is just 3 in Python; '(3,)' is a tuple.
      if (c === '(' && items.length === 1 && !sawComma) return items[0]!;
      if (c === '(') TUPLES.add(items);
      return items;
    }
    if (c === "'" || c === '"') {
      i++;
      let s = '';
      for (;;) {
        const ch = text[i++];
        if (ch === undefined) throw bad('has an unterminated string');
        if (ch === c) return s;
        if (ch === '\\') {
          const e = text[i++];
          if (e === undefined) throw bad('has an unterminated string');
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e === '0' ? '\0' : e;
        } else s += ch;
      }
    }
    const word = /^[-+]?[0-9A-Za-z_]+/.exec(text.slice(i, i + 64));
    if (!word) throw bad(`has an unexpected character '${c}'`);
    i += word[0].length;
    const w = word[0];
    if (w === 'True') return true;
    if (w === 'False') return false;
    if (w === 'None') return null;
    const num = /^([-+]?\d+)L?$/.exec(w); // Python 2 headers wrote longs as '3L'
    if (num) {
      const n = Number(num[1]);
      if (!Number.isSafeInteger(n)) throw bad(`has an out-of-range integer ${w}`);
      return n;
    }
    throw bad(`has an unexpected token '${w}'`);
  };
  const v = value(0);
  ws();
  if (i !== text.length) throw bad('has trailing characters');
  return v;
}
