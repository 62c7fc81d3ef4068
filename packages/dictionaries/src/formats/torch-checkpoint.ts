// Reader for `torch.save` checkpoints (the zip format of torch ≥ 1.6): finds `<prefix>/data.pkl`,
// unpickles it with the restricted unpickler and torch's allowlisted rebuild functions, and
// materializes every tensor from `<prefix>/data/<key>` honouring storage offset, shape and strides
// (views and transposes come out as contiguous row-major copies; tensors that view a storage
// identically share one array, and the distinct views of a storage are bounded, so aliases cannot
// multiply memory), the
// archive's byte order, and any device tag (cuda storages load like CPU ones). Nothing in the
// file is executed; see pickle.ts for the value model.
//
// Result types: dense tensors are DenseTensor `{kind: 'tensor', dtype, shape, data, requiresGrad}`
// (float dtypes as Float32Array, see tensor-data.ts), nn.Parameter unwraps to its tensor,
// sparse COO tensors are SparseCooTensor `{kind: 'sparse_coo', ...}`, torch.Size is a frozen
// array of numbers, torch.device a string like 'cuda:0', dtypes and layouts strings like
// 'torch.float32' / 'torch.sparse_coo', allowed data classes PickleObject records.

import { FormatError, quoteName, ShapeError } from '@sfc/core';
import {
  unpickle, isTuple, isPickleObject, PickleGlobal,
  type GlobalHandler, type PickleLimits, type PickleRecord, type PickleValue,
} from './pickle.js';
import { looksLikeZip, ZipArchive } from './zip.js';
import type { ByteSource } from './byte-source.js';
import { ElementBudget, resolveLimits, type FormatLimits, type ResolvedLimits } from './limits.js';
import {
  checkedNumel, gatherStrided, ITEM_BYTES, toDense, toFloat32Data,
  type DenseTensor, type DType, type SparseCooTensor,
} from './tensor-data.js';

/** A storage as referenced by a persistent id; appears in results only if a raw storage was saved. */
export interface TorchStorage extends PickleRecord {
  readonly kind: 'storage';
  readonly dtype: DType;
  readonly key: string;
  /** Device tag as saved ('cpu', 'cuda:0', …); ignored for loading. */
  readonly location: string;
  readonly numel: number;
  /** Raw bytes in the archive's byte order. */
  readonly bytes: Uint8Array;
}

interface StorageType extends PickleRecord { readonly kind: 'storage_type'; readonly dtype: DType; readonly name: string }

export interface TorchCheckpointOptions {
  readonly limits?: FormatLimits;
  readonly pickleLimits?: PickleLimits;
  /** Extra classes to record as inert PickleObject records ('module.Name' or 'module.*'). */
  readonly dataClasses?: readonly string[];
  /** Verify each zip entry's CRC-32 (default true, as PyTorch does). */
  readonly verifyCrc?: boolean;
}

/**
 * The unpickled object tree of a checkpoint: usually a Map (state_dict / dict) of tensors and
 * plain values; see the header comment for how each Python type appears.
 */
export type TorchCheckpoint = PickleValue;

const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', DoubleStorage: 'float64',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/** torch dtype globals, recorded as 'torch.<name>' strings. */
const DTYPE_NAMES = [
  'float32', 'float', 'float16', 'half', 'bfloat16', 'float64', 'double', 'int64', 'long', 'int32', 'int',
  'int16', 'short', 'int8', 'uint8', 'bool', 'uint16', 'uint32', 'uint64', 'complex64', 'cfloat', 'complex128',
  'cdouble', 'complex32', 'chalf', 'float8_e4m3fn', 'float8_e5m2', 'qint8', 'quint8', 'qint32',
];
const LAYOUT_NAMES = ['strided', 'sparse_coo', 'sparse_csr', 'sparse_csc', 'sparse_bsr', 'sparse_bsc'];
const MEMORY_FORMAT_NAMES = ['contiguous_format', 'channels_last', 'channels_last_3d', 'preserve_format'];

/** Every global a torch checkpoint may reference (besides the unpickler's builtin data constructors). */
export const TORCH_ALLOWED_GLOBALS: readonly string[] = Object.freeze(Object.keys(torchGlobals(null)).sort());

/**
 * Reads a checkpoint from its bytes, or from a ByteSource (a file read by offset: only the
 * central directory, data.pkl and the storages are read, so files over 2 GiB load too).
 */
export function readTorchCheckpoint(bytes: Uint8Array | ByteSource, source: string, options: TorchCheckpointOptions = {}): TorchCheckpoint {
  const limits = resolveLimits(options.limits);
  if (!looksLikeZip(bytes)) throw notZip(bytes instanceof Uint8Array ? bytes : bytes.read(0, Math.min(16, bytes.size)), source);
  const zip = ZipArchive.open(bytes, source, limits, options.verifyCrc ?? true);
  const pkls = [...zip.entries.keys()].filter((n) => /^([^/]+\/)?data\.pkl$/.test(n));
  if (pkls.length === 0) {
    const names = [...zip.entries.keys()];
    if (names.some((n) => /(^|\/)constants\.pkl$/.test(n) || /(^|\/)code\//.test(n))) {
      throw new FormatError(`${source}: this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint`,
        'save the weights with torch.save(model.state_dict(), path) or as safetensors');
    }
    throw new FormatError(`${source}: zip archive has no <folder>/data.pkl, so it is not a torch.save checkpoint`,
      `entries: ${names.slice(0, 10).map((n) => quoteName(n)).join(', ')}${names.length > 10 ? ', …' : ''}`);
  }
  if (pkls.length > 1) throw new FormatError(`${source}: several data.pkl records (${pkls.slice(0, 5).map((n) => quoteName(n)).join(', ')})`, 'the archive is not a single torch.save checkpoint');
  const prefix = pkls[0]!.slice(0, -'data.pkl'.length);
  const byteOrder = readByteOrder(zip, prefix, source);
  const ctx: TorchContext = {
    source, zip, prefix, littleEndian: byteOrder === 'little', limits,
    budget: new ElementBudget(limits.maxTotalElements, (n) => new FormatError(
      `${source}: tensors in the file add up to ${n} elements, over the ${limits.maxTotalElements}-element limit`,
      'raise limits.maxTotalElements if the file is trusted')),
    storages: new Map(),
    views: new Map(),
    viewElements: new Map(),
    excess: { n: 0 },
  };
  return unpickle(zip.read(zip.entries.get(pkls[0]!)!), {
    source: `${source} (${pkls[0]})`,
    globals: torchGlobals(ctx),
    dataClasses: options.dataClasses ?? [],
    persistentLoad: (pid) => loadStorage(ctx, pid),
    ...(options.pickleLimits ? { limits: options.pickleLimits } : {}),
  });
}

function notZip(bytes: Uint8Array, source: string): FormatError {
  if (bytes.byteLength >= 2 && bytes[0] === 0x80 && bytes[1]! <= 5) {
    return new FormatError(`${source}: this is a legacy (pre-1.6, non-zip) torch file, which sfc does not read`,
      'load it in Python with torch ≥ 1.6 and save it again: torch.save(torch.load(path), new_path), or export safetensors');
  }
  if (bytes.byteLength >= 9 && bytes[8] === 0x7b) {
    return new FormatError(`${source}: this looks like a safetensors file, not a torch.save checkpoint`, 'load it as safetensors');
  }
  return new FormatError(`${source}: not a torch.save checkpoint (no zip signature)`, 'expected a file written by torch.save (torch ≥ 1.6)');
}

function readByteOrder(zip: ZipArchive, prefix: string, source: string): 'little' | 'big' {
  const e = zip.entries.get(`${prefix}byteorder`);
  if (!e) return 'little'; // torch < 2.1 wrote none, and only little-endian machines matter there
  if (e.size > 16) throw new FormatError(`${source}: byteorder record is ${e.size} bytes`);
  const text = new TextDecoder().decode(zip.read(e)).trim();
  if (text !== 'little' && text !== 'big') throw new FormatError(`${source}: byteorder record says ${quoteName(text)}, not 'little' or 'big'`);
  return text;
}

/** Distinct views of one storage may hold this many times its elements before counting as expanded (a tensor and its transpose). */
const ALIAS_FACTOR = 2;

interface TorchContext {
  readonly source: string;
  readonly zip: ZipArchive;
  readonly prefix: string;
  readonly littleEndian: boolean;
  readonly limits: ResolvedLimits;
  readonly budget: ElementBudget;
  readonly storages: Map<string, TorchStorage>;
  /** Tensors already materialized, by storage key, offset, shape and strides: aliases share their data. */
  readonly views: Map<string, DenseTensor>;
  /** Elements materialized from each storage (distinct views only). */
  readonly viewElements: Map<string, number>;
  /** Elements materialized beyond ALIAS_FACTOR × their storages, over the whole file. */
  readonly excess: { n: number };
}

function loadStorage(ctx: TorchContext, pid: PickleValue): TorchStorage {
  const bad = (m: string) => new FormatError(`${ctx.source}: ${m}`, 'the checkpoint is corrupt or was not written by torch.save');
  if (!isTuple(pid) || pid.length !== 5 || pid[0] !== 'storage') throw bad('persistent id is not a (\'storage\', type, key, location, numel) tuple');
  const [, type, key, location, numel] = pid;
  if (!isStorageType(type)) throw bad(`persistent id names ${describeValue(type)} as its storage type`);
  if (typeof key !== 'string' || typeof location !== 'string' || typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
    throw bad('persistent id has an invalid key, location or size');
  }
  const cached = ctx.storages.get(key);
  if (cached) {
    if (cached.dtype !== type.dtype) throw bad(`storage ${quoteName(key)} is referenced as both ${cached.dtype} and ${type.dtype}`);
    return cached;
  }
  const name = `${ctx.prefix}data/${key}`;
  const entry = ctx.zip.entries.get(name);
  if (!entry) throw bad(`storage ${quoteName(key)} is missing from the archive (no ${quoteName(name)})`);
  const want = numel * ITEM_BYTES[type.dtype];
  if (entry.size !== want) throw bad(`storage ${quoteName(key)} should hold ${numel} ${type.dtype} elements (${want} bytes) but has ${entry.size} bytes`);
  const storage: TorchStorage = { kind: 'storage', dtype: type.dtype, key, location, numel, bytes: ctx.zip.read(entry) };
  ctx.storages.set(key, storage);
  return storage;
}

function isStorageType(v: PickleValue | undefined): v is StorageType {
  return typeof v === 'object' && v !== null && (v as PickleRecord).kind === 'storage_type' && !(v instanceof Map) && !Array.isArray(v);
}

function isStorage(v: PickleValue | undefined): v is TorchStorage {
  return typeof v === 'object' && v !== null && (v as PickleRecord).kind === 'storage' && !(v instanceof Map) && !Array.isArray(v);
}

export function isDenseTensor(v: unknown): v is DenseTensor {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'tensor' && !(v instanceof Map) && !Array.isArray(v);
}

export function isSparseCoo(v: unknown): v is SparseCooTensor {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'sparse_coo' && !(v instanceof Map) && !Array.isArray(v);
}

function describeValue(v: PickleValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'a sequence';
  if (v instanceof Map) return 'a dict';
  if (v instanceof PickleGlobal) return v.fullName;
  if (typeof v === 'object' && 'kind' in v) return `a ${String((v as PickleRecord).kind)}`;
  return typeof v;
}

function intTuple(v: PickleValue | undefined, what: string, source: string): number[] {
  if (!Array.isArray(v) || !v.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    const shown = Array.isArray(v) && v.length <= 16 ? `(${v.map((d) => (typeof d === 'object' ? describeValue(d) : String(d))).join(', ')})` : describeValue(v);
    throw new FormatError(`${source}: ${what} ${shown} is not a tuple of non-negative integers`, 'the checkpoint is corrupt');
  }
  return [...(v as number[])];
}

function argCount(args: readonly PickleValue[], allowed: readonly number[], what: string, source: string): void {
  if (!allowed.includes(args.length)) throw new FormatError(`${source}: ${what} called with ${args.length} arguments`, 'the checkpoint is corrupt');
}

function rebuildTensor(ctx: TorchContext, args: readonly PickleValue[], requiresGrad: PickleValue | undefined): DenseTensor {
  const [storage, offset, size, stride] = args;
  if (!isStorage(storage)) throw new FormatError(`${ctx.source}: tensor rebuilt from ${describeValue(storage)} instead of a storage`, 'the checkpoint is corrupt');
  const shape = intTuple(size, 'tensor size', ctx.source);
  const strides = intTuple(stride, 'tensor stride', ctx.source);
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    const shown = typeof offset === 'number' || typeof offset === 'bigint' ? String(offset) : describeValue(offset);
    throw new FormatError(`${ctx.source}: tensor storage offset is ${shown}, not a non-negative integer`, 'the checkpoint is corrupt');
  }
  const requires = requiresGrad === true;
  // One storage referenced by many tensors (tied weights, or a crafted file with thousands of
  // aliases of one large storage): identical views share one decoded array; distinct views of a
  // storage may add up to twice its size (a tensor and its transpose), and what they add beyond
  // that, over the whole file, to maxExpandedElements. A small file cannot multiply its storages
  // into gigabytes.
  const viewKey = `${storage.key}\0${offset}\0${shape.join(',')}\0${strides.join(',')}`;
  const seen = ctx.views.get(viewKey);
  if (seen) return seen.requiresGrad === requires ? seen : { ...seen, requiresGrad: requires };
  const what = `${ctx.source}: tensor on storage ${quoteName(storage.key)}`;
  const numel = checkedNumel(shape, ctx.limits.maxElements, what);
  const before = ctx.viewElements.get(storage.key) ?? 0;
  const free = ALIAS_FACTOR * storage.numel;
  const excess = ctx.excess.n + Math.max(0, before + numel - free) - Math.max(0, before - free);
  if (excess > ctx.limits.maxExpandedElements) {
    throw new ShapeError(`${what}: the distinct tensors viewing this storage add up to ${before + numel} elements, more than ${ALIAS_FACTOR}× its ${storage.numel}; `
      + `views in this file exceed their storages by ${excess} elements, over the ${ctx.limits.maxExpandedElements}-element limit for expanded views`,
    'raise limits.maxExpandedElements if the file is trusted, or save each tensor with .clone()');
  }
  ctx.excess.n = excess;
  ctx.viewElements.set(storage.key, before + numel);
  ctx.budget.take(numel);
  const data = gatherStrided(storage.bytes, { dtype: storage.dtype, littleEndian: ctx.littleEndian, offset, shape, strides }, ctx.limits, what);
  const t: DenseTensor = { kind: 'tensor', dtype: storage.dtype, shape, data, requiresGrad: requires };
  ctx.views.set(viewKey, t);
  return t;
}

function rebuildSparse(ctx: TorchContext, args: readonly PickleValue[]): SparseCooTensor {
  const src = ctx.source;
  argCount(args, [2], 'torch._utils._rebuild_sparse_tensor', src);
  const [layout, data] = args;
  if (layout !== 'torch.sparse_coo') {
    throw new FormatError(`${src}: sparse layout ${typeof layout === 'string' ? layout : describeValue(layout)} is not supported`,
      'only sparse COO tensors are read; convert others with .to_sparse_coo() or .to_dense() before saving');
  }
  if (!isTuple(data) || (data.length !== 3 && data.length !== 4)) throw new FormatError(`${src}: sparse tensor data is not an (indices, values, size) tuple`, 'the checkpoint is corrupt');
  const [indices, values, size] = data;
  if (!isDenseTensor(indices) || !isDenseTensor(values)) throw new FormatError(`${src}: sparse tensor indices/values are not tensors`, 'the checkpoint is corrupt');
  const shape = intTuple(size, 'sparse tensor size', src);
  const bad = (m: string) => new FormatError(`${src}: sparse tensor of shape [${shape.join(', ')}]: ${m}`, 'the checkpoint is corrupt');
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32') throw bad(`indices have dtype ${indices.dtype}`);
  if (indices.shape.length !== 2) throw bad(`indices have shape [${indices.shape.join(', ')}], not [sparse_dim, nnz]`);
  const [sparseDim, nnz] = indices.shape as [number, number];
  if (values.shape.length < 1 || values.shape[0] !== nnz) throw bad(`values shape [${values.shape.join(', ')}] does not start with nnz = ${nnz}`);
  if (shape.length !== sparseDim + values.shape.length - 1) throw bad(`sparse_dim ${sparseDim} + dense dims of values [${values.shape.join(', ')}] do not add up`);
  for (let d = 1; d < values.shape.length; d++) {
    if (values.shape[d] !== shape[sparseDim + d - 1]) throw bad(`values shape [${values.shape.join(', ')}] does not match the dense dims`);
  }
  checkedNumel(shape, Number.MAX_SAFE_INTEGER, `${src}: sparse tensor`);
  const out = new Int32Array(sparseDim * nnz);
  const raw = indices.data;
  for (let d = 0; d < sparseDim; d++) {
    const dim = shape[d]!;
    for (let j = 0; j < nnz; j++) {
      const v = Number(raw[d * nnz + j]!);
      if (!(v >= 0 && v < dim)) throw bad(`index ${v} out of range for dimension ${d} (size ${dim})`);
      out[d * nnz + j] = v;
    }
  }
  return { kind: 'sparse_coo', dtype: values.dtype, shape, sparseDim, nnz, indices: out, values: values.data };
}

function unwrapParameter(ctx: TorchContext, args: readonly PickleValue[]): PickleValue {
  const [data, requiresGrad] = args;
  if (isDenseTensor(data)) {
    const t: DenseTensor = { ...data, requiresGrad: requiresGrad === true };
    return t;
  }
  if (isSparseCoo(data)) return data;
  throw new FormatError(`${ctx.source}: nn.Parameter wraps ${describeValue(data)}, not a tensor`, 'the checkpoint is corrupt');
}

/** The torch globals a checkpoint may reference; `ctx` null only lists the names. */
function torchGlobals(ctx: TorchContext | null): Record<string, GlobalHandler> {
  const need = (): TorchContext => {
    if (!ctx) throw new Error('torch globals used without a checkpoint context');
    return ctx;
  };
  const src = () => need().source;
  const g: Record<string, GlobalHandler> = {
    'torch._utils._rebuild_tensor_v2': {
      call: (a) => { argCount(a, [6, 7], '_rebuild_tensor_v2', src()); return rebuildTensor(need(), a, a[4]); },
    },
    'torch._utils._rebuild_tensor': {
      call: (a) => { argCount(a, [4], '_rebuild_tensor', src()); return rebuildTensor(need(), a, false); },
    },
    'torch._utils._rebuild_parameter': {
      call: (a) => { argCount(a, [3], '_rebuild_parameter', src()); return unwrapParameter(need(), a); },
    },
    'torch._utils._rebuild_parameter_with_state': {
      call: (a) => { argCount(a, [4], '_rebuild_parameter_with_state', src()); return unwrapParameter(need(), a); },
    },
    'torch._utils._rebuild_sparse_tensor': { call: (a) => rebuildSparse(need(), a) },
    'torch._tensor._rebuild_from_type_v2': {
      // Tensor subclasses: (rebuild function, subclass, its args, state). Only plain tensors and
      // parameters are accepted; the rebuild function must itself be one of these handlers.
      call: (a) => {
        argCount(a, [4], '_rebuild_from_type_v2', src());
        const [func, type, args] = a;
        if (!(type instanceof PickleGlobal) || (type.fullName !== 'torch.Tensor' && type.fullName !== 'torch.nn.parameter.Parameter')) {
          throw new FormatError(`${src()}: tensor subclass ${describeValue(type)} is not supported`, 'save plain tensors (t.as_subclass(torch.Tensor))');
        }
        // Only the leaf rebuild functions: letting it call itself would recurse as deep as the file says.
        const h = func instanceof PickleGlobal && func.fullName !== 'torch._tensor._rebuild_from_type_v2' ? g[func.fullName] : undefined;
        if (!h?.call || !isTuple(args)) throw new FormatError(`${src()}: _rebuild_from_type_v2 with ${describeValue(func)}`, 'the checkpoint is corrupt');
        return h.call(args);
      },
    },
    'torch.Tensor': {},
    'torch.nn.parameter.Parameter': {},
    'torch.Size': {
      call: (a) => { argCount(a, [0, 1], 'torch.Size', src()); return Object.freeze(a.length ? intTuple(a[0], 'torch.Size', src()) : []); },
    },
    'torch.device': {
      call: (a) => {
        const [type, index] = a;
        if (typeof type !== 'string' || a.length > 2 || (index !== undefined && index !== null && typeof index !== 'number')) {
          throw new FormatError(`${src()}: torch.device with invalid arguments`, 'the checkpoint is corrupt');
        }
        return typeof index === 'number' ? `${type}:${index}` : type;
      },
    },
    'torch.serialization._get_layout': {
      call: (a) => {
        const [name] = a;
        if (a.length !== 1 || typeof name !== 'string' || !LAYOUT_NAMES.some((l) => name === `torch.${l}`)) {
          throw new FormatError(`${src()}: unknown tensor layout ${typeof name === 'string' ? name : describeValue(name)}`, 'the checkpoint is corrupt');
        }
        return name;
      },
    },
  };
  for (const n of [...DTYPE_NAMES, ...LAYOUT_NAMES, ...MEMORY_FORMAT_NAMES]) g[`torch.${n}`] = { value: `torch.${n}` };
  for (const [name, dtype] of Object.entries(STORAGE_DTYPES)) {
    const st: StorageType = { kind: 'storage_type', dtype, name };
    g[`torch.${name}`] = { value: st };
    g[`torch.cuda.${name}`] = { value: st };
  }
  const untyped: StorageType = { kind: 'storage_type', dtype: 'uint8', name: 'UntypedStorage' };
  g['torch.UntypedStorage'] = { value: untyped };
  g['torch.storage.UntypedStorage'] = { value: untyped };
  return g;
}

// ------------------------------------------------------------------ state dicts

export interface StateDictEntry {
  /** dtype stored in the file; data is float32 whatever it was (integers converted). */
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface StateDictOptions {
  /** Deepest nesting followed (default 64). */
  readonly maxDepth?: number;
  /** Values visited in total; shared sub-trees count each time (default 1,000,000). */
  readonly maxVisits?: number;
  /** Largest sparse tensor densified (default 2^26 elements). */
  readonly maxDenseElements?: number;
}

/**
 * Flattens nested dicts, lists and data-class objects into `path → tensor` with dotted paths:
 * a plain state_dict gives its own keys ('encoder.weight'); a training backup
 * `{ae: state_dict, optimizer: {...}}` gives 'ae.encoder.weight', 'optimizer.state.0.exp_avg', ….
 * Sparse tensors are densified; non-tensor leaves are skipped.
 */
export function stateDict(value: TorchCheckpoint | unknown, options: StateDictOptions = {}): Map<string, StateDictEntry> {
  const maxDepth = options.maxDepth ?? 64;
  const maxVisits = options.maxVisits ?? 1_000_000;
  const maxDense = options.maxDenseElements ?? 2 ** 26;
  const out = new Map<string, StateDictEntry>();
  const ancestors = new Set<object>();
  let visits = 0;
  const add = (path: string, t: DenseTensor) => {
    if (out.has(path)) throw new FormatError(`state dict: two tensors flatten to the same key ${quoteName(path)}`, 'rename one of the nested keys');
    out.set(path, { dtype: t.dtype, shape: t.shape, data: toFloat32Data(t.data) });
  };
  const walk = (v: unknown, path: string, depth: number): void => {
    if (++visits > maxVisits) throw new FormatError(`state dict: more than ${maxVisits} values to visit`, 'the object graph is too large or maliciously shared');
    if (typeof v !== 'object' || v === null || v instanceof Uint8Array || v instanceof PickleGlobal) return;
    if (isDenseTensor(v)) { add(path, v); return; }
    if (isSparseCoo(v)) { add(path, toDense(v, maxDense)); return; }
    if (depth >= maxDepth) throw new FormatError(`state dict: nesting deeper than ${maxDepth} at ${quoteName(path)}`, 'the object is not a state dict');
    if (ancestors.has(v)) throw new FormatError(`state dict: the object contains itself at ${quoteName(path)}`, 'the object is not a state dict');
    ancestors.add(v);
    const join = (k: string) => (path ? `${path}.${k}` : k);
    if (v instanceof Map) {
      for (const [k, child] of v) {
        const seg = keySegment(k);
        if (seg !== undefined) walk(child, join(seg), depth + 1);
      }
    } else if (Array.isArray(v)) {
      v.forEach((child, i) => walk(child, join(String(i)), depth + 1));
    } else if (isPickleObject(v)) {
      walk(v.state, path, depth + 1);
    }
    ancestors.delete(v);
  };
  walk(value, '', 0);
  return out;
}

function keySegment(k: PickleValue): string | undefined {
  if (typeof k === 'string') return k;
  if (typeof k === 'number' || typeof k === 'bigint') return String(k);
  if (typeof k === 'boolean') return k ? 'True' : 'False';
  if (k === null) return 'None';
  return undefined;
}
