// A restricted unpickler (pickle protocols 2–5) that never executes anything from the file.
// Only an allowlist of opcodes is interpreted; a global (GLOBAL / STACK_GLOBAL) must be on the
// allowlist — a handful of builtin data constructors, the caller's `globals` handlers (torch's
// rebuild functions, see torch-checkpoint.ts) or the caller's `dataClasses`, which become inert
// `{kind: 'object', __class__, args, state}` records — and anything else is a SecurityError
// naming it, raised when the global is *referenced*, before any call. Every count the file
// controls (opcodes, string sizes, memo, stack, marks, integer widths) is capped, and every read
// is bounds-checked, so malformed input is a FormatError, never a crash or a hang.
//
// Value model: None → null, bool → boolean, int → number (bigint beyond 2^53), float → number,
// str → string, bytes/bytearray → Uint8Array, list → array, tuple → frozen array,
// set/frozenset → array, dict/OrderedDict → Map (insertion order kept), allowed classes →
// whatever their handler returns. Shared references and cycles from the memo are preserved.

import { FormatError, quoteName, SecurityError } from '@sfc/core';

export interface PickleLimits {
  /** Opcodes executed (default 50,000,000). */
  readonly maxOps?: number;
  /** Largest single string or bytes object (default 1 GiB). */
  readonly maxBytes?: number;
  /** Memo entries (default 1,000,000). */
  readonly maxMemo?: number;
  /** Values on the stack, all mark levels together (default 1,000,000). */
  readonly maxStack?: number;
  /** Nested MARKs (default 10,000). */
  readonly maxMarks?: number;
  /** Bytes of one LONG1/LONG4 integer (default 1,024). */
  readonly maxLongBytes?: number;
}

const DEFAULT_PICKLE_LIMITS: Required<PickleLimits> = {
  maxOps: 50_000_000, maxBytes: 2 ** 30, maxMemo: 1_000_000, maxStack: 1_000_000, maxMarks: 10_000, maxLongBytes: 1024,
};

/** A reference to an allowed global that is a class or function rather than a value. */
export class PickleGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get fullName(): string { return `${this.module}.${this.name}`; }
}

/** Anything a global handler produces: torch tensors, storages, data-class records. */
export interface PickleRecord { readonly kind: string }

/** An instance of an allowed data class, recorded without running any of its code. */
export interface PickleObject extends PickleRecord {
  readonly kind: 'object';
  /** 'module.Name' */
  readonly __class__: string;
  /** Positional arguments given to the class (NEWOBJ / REDUCE); usually empty. */
  readonly args: readonly PickleValue[];
  readonly kwargs?: ReadonlyMap<PickleValue, PickleValue>;
  /** What BUILD set: normally a Map of attribute name → value (the instance __dict__). */
  state: PickleValue | undefined;
}

export type PickleValue =
  | null | boolean | number | bigint | string | Uint8Array
  | PickleValue[] | readonly PickleValue[]
  | Map<PickleValue, PickleValue>
  | PickleGlobal | PickleRecord;

export interface GlobalHandler {
  /** Pushed in place of the global when it is referenced (constants such as torch.float32). */
  readonly value?: PickleValue;
  /** REDUCE: global(*args). */
  readonly call?: (args: readonly PickleValue[]) => PickleValue;
  /** NEWOBJ / NEWOBJ_EX: global.__new__(global, *args). */
  readonly construct?: (args: readonly PickleValue[], kwargs?: ReadonlyMap<PickleValue, PickleValue>) => PickleValue;
}

export interface UnpickleOptions {
  /** Names the file in error messages. */
  readonly source?: string;
  /** Allowed globals besides the builtin data constructors, by 'module.name'. */
  readonly globals?: Readonly<Record<string, GlobalHandler>>;
  /**
   * Classes recorded as inert PickleObject records: 'module.Name', or 'module.*' for every
   * name in a module and its submodules.
   */
  readonly dataClasses?: readonly string[];
  /** Resolves BINPERSID ids (torch storages); without it persistent ids are a FormatError. */
  readonly persistentLoad?: (pid: PickleValue) => PickleValue;
  readonly limits?: PickleLimits;
}

/** The state a BUILD opcode set on a dict (e.g. a state_dict's `_metadata`), if any. */
export function dictAttributes(dict: Map<PickleValue, PickleValue>): PickleValue | undefined {
  return DICT_ATTRIBUTES.get(dict);
}

export function isPickleObject(v: unknown): v is PickleObject {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'object' && !(v instanceof Map) && !Array.isArray(v);
}

/** A tuple: frozen arrays are tuples, unfrozen ones lists. */
export function isTuple(v: unknown): v is readonly PickleValue[] {
  return Array.isArray(v) && Object.isFrozen(v);
}

const DICT_ATTRIBUTES = new WeakMap<Map<PickleValue, PickleValue>, PickleValue>();

/**
 * Python 2 names that protocol-2 pickles written by Python 3 still use (pickle's fix_imports,
 * CPython's _compat_pickle): mapped back so allowlist checks and error messages use the names
 * Python would import — a pickle of subprocess.Popen says 'commands Popen'.
 */
const MODULE_ALIASES: Readonly<Record<string, string>> = {
  __builtin__: 'builtins', copy_reg: 'copyreg', exceptions: 'builtins', commands: 'subprocess', cPickle: 'pickle',
  Queue: 'queue', SocketServer: 'socketserver', ConfigParser: 'configparser', repr: 'reprlib', thread: '_thread',
  dummy_thread: '_dummy_thread', xmlrpclib: 'xmlrpc.client', SimpleXMLRPCServer: 'xmlrpc.server',
  DocXMLRPCServer: 'xmlrpc.server', httplib: 'http.client', htmlentitydefs: 'html.entities', HTMLParser: 'html.parser',
  Cookie: 'http.cookies', cookielib: 'http.cookiejar', BaseHTTPServer: 'http.server', SimpleHTTPServer: 'http.server',
  CGIHTTPServer: 'http.server', urlparse: 'urllib.parse', robotparser: 'urllib.robotparser', urllib2: 'urllib.request',
  anydbm: 'dbm', whichdb: 'dbm', dbhash: 'dbm.bsd', dumbdbm: 'dbm.dumb', dbm: 'dbm.ndbm', gdbm: 'dbm.gnu',
  _abcoll: 'collections.abc', UserDict: 'collections', UserList: 'collections', UserString: 'collections',
  StringIO: 'io', cStringIO: 'io', _winreg: 'winreg', markupbase: '_markupbase', _elementtree: 'xml.etree.ElementTree',
  'test.test_support': 'test.support', Tkinter: 'tkinter',
};
const NAME_ALIASES: Readonly<Record<string, string>> = {
  '__builtin__.xrange': 'builtins.range', '__builtin__.reduce': 'functools.reduce', '__builtin__.intern': 'sys.intern',
  '__builtin__.unichr': 'builtins.chr', '__builtin__.unicode': 'builtins.str', '__builtin__.long': 'builtins.int',
  '__builtin__.basestring': 'builtins.str', 'itertools.izip': 'builtins.zip', 'itertools.imap': 'builtins.map',
  'itertools.ifilter': 'builtins.filter', 'UserDict.IterableUserDict': 'collections.UserDict',
  'exceptions.StandardError': 'builtins.Exception',
};

function own(table: Readonly<Record<string, string>>, key: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined;
}

function tuple(items: PickleValue[]): readonly PickleValue[] {
  return Object.freeze(items);
}

/** Data constructors every pickle may use (what Python itself emits for plain data). */
const BUILTIN_GLOBALS: Readonly<Record<string, GlobalHandler>> = {
  'collections.OrderedDict': {
    call: (args) => { expectArgs('collections.OrderedDict', args, 0, 1); return dictFrom(args[0]); },
    construct: () => new Map(),
  },
  'builtins.dict': { call: (args) => { expectArgs('builtins.dict', args, 0, 1); return dictFrom(args[0]); } },
  'builtins.list': { call: (args) => { expectArgs('builtins.list', args, 0, 1); return args.length ? [...iterable('builtins.list', args[0]!)] : []; } },
  'builtins.set': { call: (args) => { expectArgs('builtins.set', args, 0, 1); return args.length ? [...iterable('builtins.set', args[0]!)] : []; } },
  'builtins.frozenset': { call: (args) => { expectArgs('builtins.frozenset', args, 0, 1); return tuple(args.length ? [...iterable('builtins.frozenset', args[0]!)] : []); } },
  'builtins.bytearray': {
    call: (args) => {
      expectArgs('builtins.bytearray', args, 0, 2);
      if (args.length === 0) return new Uint8Array(0);
      if (args[0] instanceof Uint8Array) return args[0].slice();
      return encodeString('builtins.bytearray', args);
    },
  },
  'builtins.bytes': {
    call: (args) => {
      expectArgs('builtins.bytes', args, 0, 2);
      return args.length === 0 ? new Uint8Array(0) : args[0] instanceof Uint8Array ? args[0].slice() : encodeString('builtins.bytes', args);
    },
  },
  // Protocol 2 has no bytes opcode: Python 3 writes bytes as _codecs.encode(latin-1 text, 'latin1').
  '_codecs.encode': { call: (args) => encodeString('_codecs.encode', args) },
};

function expectArgs(what: string, args: readonly PickleValue[], min: number, max: number): void {
  if (args.length < min || args.length > max) throw new FormatError(`pickle: ${what} called with ${args.length} arguments`);
}

function iterable(what: string, v: PickleValue): readonly PickleValue[] {
  if (Array.isArray(v)) return v;
  if (v instanceof Map) return [...v.keys()];
  throw new FormatError(`pickle: ${what} of a ${describe(v)}`);
}

function dictFrom(v: PickleValue | undefined): Map<PickleValue, PickleValue> {
  if (v === undefined) return new Map();
  if (v instanceof Map) return new Map(v);
  if (Array.isArray(v)) {
    const m = new Map<PickleValue, PickleValue>();
    for (const pair of v as PickleValue[]) {
      if (!Array.isArray(pair) || pair.length !== 2) throw new FormatError('pickle: dict() of a sequence that is not made of pairs');
      m.set(hashable(pair[0]!), pair[1]!);
    }
    return m;
  }
  throw new FormatError(`pickle: dict() of a ${describe(v)}`);
}

function encodeString(what: string, args: readonly PickleValue[]): Uint8Array {
  const [text, encoding = 'utf-8'] = args;
  if (args.length < 1 || args.length > 2 || typeof text !== 'string' || typeof encoding !== 'string') {
    throw new FormatError(`pickle: ${what} expects (str, encoding)`);
  }
  const enc = encoding.toLowerCase().replace(/_/g, '-');
  if (enc === 'latin1' || enc === 'latin-1' || enc === 'iso-8859-1') {
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c > 255) throw new FormatError(`pickle: ${what}: character U+${c.toString(16)} is not latin-1`);
      out[i] = c;
    }
    return out;
  }
  if (enc === 'utf-8' || enc === 'utf8' || enc === 'ascii') return new TextEncoder().encode(text);
  throw new FormatError(`pickle: ${what} with unsupported encoding ${quoteName(encoding)}`);
}

function hashable(k: PickleValue): PickleValue {
  if (k === null || typeof k !== 'object' || k instanceof Uint8Array || k instanceof PickleGlobal || isTuple(k)) return k;
  throw new FormatError(`pickle: unhashable dict key (${describe(k)})`, 'the pickle is corrupt');
}

function describe(v: PickleValue | undefined): string {
  if (v === null) return 'None';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return isTuple(v) ? 'tuple' : 'list';
  if (v instanceof Map) return 'dict';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PickleGlobal) return `global ${quoteName(v.fullName)}`;
  if (typeof v === 'object') return (v as PickleRecord).kind === 'object' ? `${quoteName((v as PickleObject).__class__)} object` : String((v as PickleRecord).kind);
  return typeof v;
}

// Opcode bytes (pickletools names).
const OP = {
  MARK: 0x28, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31, DUP: 0x32, BINBYTES: 0x42, SHORT_BINBYTES: 0x43,
  BINFLOAT: 0x47, BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, NONE: 0x4e, BINPERSID: 0x51, REDUCE: 0x52,
  BINSTRING: 0x54, SHORT_BINSTRING: 0x55, BINUNICODE: 0x58, EMPTY_LIST: 0x5d, APPEND: 0x61, BUILD: 0x62,
  GLOBAL: 0x63, DICT: 0x64, APPENDS: 0x65, BINGET: 0x68, LONG_BINGET: 0x6a, LIST: 0x6c, BINPUT: 0x71,
  LONG_BINPUT: 0x72, SETITEM: 0x73, TUPLE: 0x74, SETITEMS: 0x75, EMPTY_DICT: 0x7d, EMPTY_TUPLE: 0x29,
  PROTO: 0x80, NEWOBJ: 0x81, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87, NEWTRUE: 0x88, NEWFALSE: 0x89,
  LONG1: 0x8a, LONG4: 0x8b, SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, BINBYTES8: 0x8e, EMPTY_SET: 0x8f,
  ADDITEMS: 0x90, FROZENSET: 0x91, NEWOBJ_EX: 0x92, STACK_GLOBAL: 0x93, MEMOIZE: 0x94, FRAME: 0x95,
  BYTEARRAY8: 0x96,
} as const;

/** Valid pickle opcodes that are deliberately not interpreted, and why. */
const REFUSED_OPS: Readonly<Record<number, [string, 'security' | 'format']>> = {
  0x69: ['INST', 'security'], 0x6f: ['OBJ', 'security'], 0x82: ['EXT1', 'security'], 0x83: ['EXT2', 'security'],
  0x84: ['EXT4', 'security'], 0x50: ['PERSID', 'format'], 0x49: ['INT', 'format'], 0x4c: ['LONG', 'format'],
  0x53: ['STRING', 'format'], 0x56: ['UNICODE', 'format'], 0x46: ['FLOAT', 'format'], 0x70: ['PUT', 'format'],
  0x67: ['GET', 'format'], 0x97: ['NEXT_BUFFER', 'format'], 0x98: ['READONLY_BUFFER', 'format'],
};

/** Unpickles `bytes` (one pickle; bytes after STOP are ignored). */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): PickleValue {
  return new Unpickler(bytes, options).run();
}

class Unpickler {
  private readonly b: Uint8Array;
  private readonly view: DataView;
  private pos = 0;
  private readonly src: string;
  private readonly lim: Required<PickleLimits>;
  private readonly globals: Readonly<Record<string, GlobalHandler>>;
  private readonly dataExact: Set<string>;
  private readonly dataPrefixes: string[];
  private readonly persistentLoad: ((pid: PickleValue) => PickleValue) | undefined;
  private readonly stack: PickleValue[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PickleValue>();
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(bytes: Uint8Array, o: UnpickleOptions) {
    this.b = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.src = o.source ?? 'pickle';
    this.lim = { ...DEFAULT_PICKLE_LIMITS, ...(o.limits ?? {}) };
    this.globals = o.globals ?? {};
    this.dataExact = new Set();
    this.dataPrefixes = [];
    for (const c of o.dataClasses ?? []) {
      if (c.endsWith('.*')) this.dataPrefixes.push(c.slice(0, -1)); else this.dataExact.add(c);
    }
    this.persistentLoad = o.persistentLoad;
  }

  private bad(m: string, hint = 'the pickle is truncated or corrupt'): FormatError {
    return new FormatError(`${this.src}: ${m} (at byte ${this.pos})`, hint);
  }

  private tooBig(what: string, n: number | bigint, limit: number): FormatError {
    return new FormatError(`${this.src}: ${what} ${n} exceeds the limit of ${limit}`,
      'the file is corrupt or hostile; raise the pickle limits only if you trust it');
  }

  // ------------------------------------------------------------------ reading

  private need(n: number): void {
    if (n > this.b.length - this.pos) throw this.bad(`unexpected end of data (needs ${n} more bytes)`);
  }
  private u8(): number { this.need(1); return this.b[this.pos++]!; }
  private u16(): number { this.need(2); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  private u32(): number { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  private i32(): number { this.need(4); const v = this.view.getInt32(this.pos, true); this.pos += 4; return v; }
  private u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(this.lim.maxBytes)) throw this.tooBig('length', v, this.lim.maxBytes);
    return Number(v);
  }
  private take(n: number): Uint8Array {
    if (n > this.lim.maxBytes) throw this.tooBig('string/bytes length', n, this.lim.maxBytes);
    this.need(n);
    const s = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  private text(n: number): string {
    const raw = this.take(n);
    try { return this.utf8.decode(raw); } catch { throw this.bad('string is not valid UTF-8'); }
  }
  private line(): string {
    const nl = this.b.subarray(this.pos, this.pos + 4097).indexOf(0x0a);
    if (nl < 0) throw this.bad('GLOBAL name is not newline-terminated within 4096 bytes');
    const s = this.text(nl);
    this.pos++;
    return s;
  }

  // ------------------------------------------------------------------ stack

  private push(v: PickleValue): void {
    if (this.stack.length >= this.lim.maxStack) throw this.tooBig('stack size', this.stack.length + 1, this.lim.maxStack);
    this.stack.push(v);
  }
  private floor(): number { return this.marks.length ? this.marks[this.marks.length - 1]! : 0; }
  private pop(): PickleValue {
    if (this.stack.length <= this.floor()) throw this.bad('stack underflow');
    return this.stack.pop()!;
  }
  private top(): PickleValue {
    if (this.stack.length <= this.floor()) throw this.bad('stack underflow');
    return this.stack[this.stack.length - 1]!;
  }
  private popMark(): PickleValue[] {
    const m = this.marks.pop();
    if (m === undefined) throw this.bad('no MARK on the stack');
    return this.stack.splice(m);
  }

  // ------------------------------------------------------------------ globals

  private resolveGlobal(rawModule: string, rawName: string): PickleValue {
    const renamed = own(NAME_ALIASES, `${rawModule}.${rawName}`);
    const module = renamed ? renamed.slice(0, renamed.lastIndexOf('.')) : own(MODULE_ALIASES, rawModule) ?? rawModule;
    const name = renamed ? renamed.slice(renamed.lastIndexOf('.') + 1) : rawName;
    const full = `${module}.${name}`;
    const handler = Object.prototype.hasOwnProperty.call(this.globals, full) ? this.globals[full]
      : Object.prototype.hasOwnProperty.call(BUILTIN_GLOBALS, full) ? BUILTIN_GLOBALS[full] : undefined;
    if (handler) return handler.value !== undefined ? handler.value : new PickleGlobal(module, name);
    if (this.isDataClass(full)) return new PickleGlobal(module, name);
    const shown = module === rawModule && name === rawName ? quoteName(full) : `${quoteName(full)} (written as ${quoteName(`${rawModule}.${rawName}`)})`;
    throw new SecurityError(`${this.src}: the pickle references the global ${shown}, which is not on the allowlist; nothing was executed`,
      'sfc never runs code from files. If this file is trusted and only stores a plain data class, pass it in dataClasses '
      + "(e.g. ['mypackage.MyConfig']); otherwise re-save the weights as safetensors or with torch.save(model.state_dict())");
  }

  private isDataClass(full: string): boolean {
    return this.dataExact.has(full) || this.dataPrefixes.some((p) => full.startsWith(p));
  }

  private handlerOf(g: PickleGlobal): GlobalHandler | undefined {
    const full = g.fullName;
    if (Object.prototype.hasOwnProperty.call(this.globals, full)) return this.globals[full];
    if (Object.prototype.hasOwnProperty.call(BUILTIN_GLOBALS, full)) return BUILTIN_GLOBALS[full];
    return undefined;
  }

  private callGlobal(f: PickleValue, args: PickleValue, opcode: 'REDUCE' | 'NEWOBJ', kwargs?: Map<PickleValue, PickleValue>): PickleValue {
    if (!(f instanceof PickleGlobal)) throw this.bad(`${opcode} on a ${describe(f)}, which is not callable`);
    if (!isTuple(args)) throw this.bad(`${opcode} arguments for ${quoteName(f.fullName)} are a ${describe(args)}, not a tuple`);
    const h = this.handlerOf(f);
    if (h) {
      const fn = opcode === 'REDUCE' ? h.call : (h.construct ?? undefined);
      if (!fn) throw this.bad(`${quoteName(f.fullName)} cannot be used with ${opcode}`);
      return fn(args, kwargs);
    }
    const obj: PickleObject = kwargs
      ? { kind: 'object', __class__: f.fullName, args, kwargs, state: undefined }
      : { kind: 'object', __class__: f.fullName, args, state: undefined };
    return obj;
  }

  // ------------------------------------------------------------------ main loop

  run(): PickleValue {
    const lim = this.lim;
    let ops = 0;
    for (;;) {
      if (++ops > lim.maxOps) throw this.tooBig('opcode count', ops, lim.maxOps);
      const op = this.u8();
      switch (op) {
        case OP.PROTO: {
          const v = this.u8();
          if (v < 2 || v > 5) throw this.bad(`unsupported pickle protocol ${v}`, 'only protocols 2–5 are read (torch.save uses 2)');
          break;
        }
        case OP.FRAME: {
          const n = this.u64();
          if (n > this.b.length - this.pos) throw this.bad(`frame of ${n} bytes runs past the end`);
          break;
        }
        case OP.STOP: {
          if (this.marks.length) throw this.bad('STOP inside an unclosed MARK');
          return this.pop();
        }
        case OP.MARK:
          if (this.marks.length >= lim.maxMarks) throw this.tooBig('MARK nesting', this.marks.length + 1, lim.maxMarks);
          this.marks.push(this.stack.length);
          break;
        case OP.POP:
          if (this.stack.length > this.floor()) this.stack.pop(); else this.popMark();
          break;
        case OP.POP_MARK: this.popMark(); break;
        case OP.DUP: this.push(this.top()); break;
        case OP.NONE: this.push(null); break;
        case OP.NEWTRUE: this.push(true); break;
        case OP.NEWFALSE: this.push(false); break;
        case OP.BININT: this.push(this.i32()); break;
        case OP.BININT1: this.push(this.u8()); break;
        case OP.BININT2: this.push(this.u16()); break;
        case OP.LONG1: this.push(this.long(this.u8())); break;
        case OP.LONG4: {
          const n = this.i32();
          if (n < 0) throw this.bad('negative LONG4 length');
          this.push(this.long(n));
          break;
        }
        case OP.BINFLOAT: { this.need(8); this.push(this.view.getFloat64(this.pos, false)); this.pos += 8; break; }
        case OP.SHORT_BINUNICODE: this.push(this.text(this.u8())); break;
        case OP.BINUNICODE: this.push(this.text(this.u32())); break;
        case OP.BINUNICODE8: this.push(this.text(this.u64())); break;
        case OP.SHORT_BINSTRING: this.push(latin1(this.take(this.u8()))); break;
        case OP.BINSTRING: {
          const n = this.i32();
          if (n < 0) throw this.bad('negative BINSTRING length');
          this.push(latin1(this.take(n)));
          break;
        }
        case OP.SHORT_BINBYTES: this.push(this.take(this.u8()).slice()); break;
        case OP.BINBYTES: this.push(this.take(this.u32()).slice()); break;
        case OP.BINBYTES8: case OP.BYTEARRAY8: this.push(this.take(this.u64()).slice()); break;
        case OP.EMPTY_LIST: this.push([]); break;
        case OP.EMPTY_DICT: this.push(new Map()); break;
        case OP.EMPTY_TUPLE: this.push(tuple([])); break;
        case OP.EMPTY_SET: this.push([]); break;
        case OP.TUPLE: this.push(tuple(this.popMark())); break;
        case OP.TUPLE1: { const a = this.pop(); this.push(tuple([a])); break; }
        case OP.TUPLE2: { const b = this.pop(), a = this.pop(); this.push(tuple([a, b])); break; }
        case OP.TUPLE3: { const c = this.pop(), b = this.pop(), a = this.pop(); this.push(tuple([a, b, c])); break; }
        case OP.LIST: this.push(this.popMark()); break;
        case OP.FROZENSET: this.push(tuple(this.popMark())); break;
        case OP.DICT: {
          const items = this.popMark();
          if (items.length % 2) throw this.bad('DICT with an odd number of items');
          const d = new Map<PickleValue, PickleValue>();
          for (let i = 0; i < items.length; i += 2) d.set(hashable(items[i]!), items[i + 1]!);
          this.push(d);
          break;
        }
        case OP.APPEND: { const v = this.pop(); this.listTarget('APPEND').push(v); break; }
        case OP.APPENDS: case OP.ADDITEMS: {
          const items = this.popMark();
          const target = this.listTarget(op === OP.APPENDS ? 'APPENDS' : 'ADDITEMS');
          if (target.length + items.length > lim.maxStack) throw this.tooBig('list length', target.length + items.length, lim.maxStack);
          for (const v of items) target.push(v);
          break;
        }
        case OP.SETITEM: {
          const v = this.pop(), k = this.pop();
          this.dictTarget('SETITEM').set(hashable(k), v);
          break;
        }
        case OP.SETITEMS: {
          const items = this.popMark();
          if (items.length % 2) throw this.bad('SETITEMS with an odd number of items');
          const d = this.dictTarget('SETITEMS');
          for (let i = 0; i < items.length; i += 2) d.set(hashable(items[i]!), items[i + 1]!);
          break;
        }
        case OP.BINPUT: this.put(this.u8()); break;
        case OP.LONG_BINPUT: this.put(this.u32()); break;
        case OP.MEMOIZE: this.put(this.memo.size); break;
        case OP.BINGET: this.get(this.u8()); break;
        case OP.LONG_BINGET: this.get(this.u32()); break;
        case OP.GLOBAL: {
          const module = this.line();
          const name = this.line();
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case OP.STACK_GLOBAL: {
          const name = this.pop(), module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') throw this.bad('STACK_GLOBAL needs two strings');
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case OP.REDUCE: {
          const args = this.pop(), f = this.pop();
          this.push(this.callGlobal(f, args, 'REDUCE'));
          break;
        }
        case OP.NEWOBJ: {
          const args = this.pop(), cls = this.pop();
          this.push(this.callGlobal(cls, args, 'NEWOBJ'));
          break;
        }
        case OP.NEWOBJ_EX: {
          const kwargs = this.pop(), args = this.pop(), cls = this.pop();
          if (!(kwargs instanceof Map)) throw this.bad('NEWOBJ_EX keyword arguments are not a dict');
          this.push(this.callGlobal(cls, args, 'NEWOBJ', kwargs));
          break;
        }
        case OP.BUILD: {
          const state = this.pop();
          this.build(this.top(), state);
          break;
        }
        case OP.BINPERSID: {
          const pid = this.pop();
          if (!this.persistentLoad) throw this.bad('persistent id found, but this reader has no storage to resolve it');
          this.push(this.persistentLoad(pid));
          break;
        }
        default: {
          const refused = REFUSED_OPS[op];
          this.pos--;
          if (refused?.[1] === 'security') {
            throw new SecurityError(`${this.src}: pickle opcode ${refused[0]} (0x${op.toString(16)}) is not allowed; nothing was executed`,
              'only plain-data opcodes are interpreted; re-save the file with torch.save or as safetensors');
          }
          if (refused) throw this.bad(`pickle opcode ${refused[0]} (protocol 0/1 or out-of-band) is not supported`, 'only pickle protocols 2–5 are read; re-save with torch.save');
          throw this.bad(`invalid pickle opcode 0x${op.toString(16)}`);
        }
      }
    }
  }

  private long(n: number): number | bigint {
    if (n > this.lim.maxLongBytes) throw this.tooBig('integer width in bytes', n, this.lim.maxLongBytes);
    const raw = this.take(n);
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(raw[i]!);
    if (raw[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  private put(i: number): void {
    if (!this.memo.has(i) && this.memo.size >= this.lim.maxMemo) throw this.tooBig('memo size', this.memo.size + 1, this.lim.maxMemo);
    this.memo.set(i, this.top());
  }

  private get(i: number): void {
    if (!this.memo.has(i)) throw this.bad(`memo key ${i} was never stored`);
    this.push(this.memo.get(i)!);
  }

  private listTarget(op: string): PickleValue[] {
    const t = this.top();
    if (!Array.isArray(t) || Object.isFrozen(t)) throw this.bad(`${op} on a ${describe(t)}`);
    return t as PickleValue[];
  }

  private dictTarget(op: string): Map<PickleValue, PickleValue> {
    const t = this.top();
    if (!(t instanceof Map)) throw this.bad(`${op} on a ${describe(t)}`);
    return t;
  }

  private build(inst: PickleValue, state: PickleValue): void {
    if (isPickleObject(inst)) {
      if (inst.state instanceof Map && state instanceof Map) for (const [k, v] of state) inst.state.set(k, v);
      else inst.state = state;
      return;
    }
    if (inst instanceof Map) {
      // OrderedDict.__reduce__ passes the instance __dict__ (state_dict's `_metadata`) to BUILD.
      if (state !== null) DICT_ATTRIBUTES.set(inst, state);
      return;
    }
    throw this.bad(`BUILD on a ${describe(inst)} is not supported`);
  }
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}
