// Tensor values as the format readers return them: dtype names, the typed array each dtype is
// decoded into, and the one decoder from raw file bytes (any byte order, any strides, half and
// bfloat16 upcast) to a contiguous row-major array. Sizes and strides are validated against the
// storage before anything is allocated.

import { f16ToF32, FormatError, ShapeError } from '@sfc/core';

/** Element types found in torch checkpoints and .npy files (names as torch spells them). */
export type DType =
  | 'float64' | 'float32' | 'float16' | 'bfloat16'
  | 'int64' | 'int32' | 'int16' | 'int8'
  | 'uint64' | 'uint32' | 'uint16' | 'uint8' | 'bool';

/**
 * Decoded values. Floating dtypes (float64 too) become Float32Array; int32/int16/int8/uint16 →
 * Int32Array; uint32 → Uint32Array; uint8 and bool (0/1) → Uint8Array; int64 → BigInt64Array;
 * uint64 → BigUint64Array.
 */
export type TensorData = Float32Array | Int32Array | Uint32Array | Uint8Array | BigInt64Array | BigUint64Array;

/** A dense tensor, row-major (C order) and contiguous whatever the file's strides were. */
export interface DenseTensor {
  readonly kind: 'tensor';
  /** The dtype stored in the file (data may be a wider type, see TensorData). */
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
  /** torch's requires_grad flag (true for nn.Parameter); absent for numpy arrays. */
  readonly requiresGrad?: boolean;
}

/**
 * A sparse COO tensor (torch.sparse_coo). `indices` is row-major [sparseDim, nnz];
 * `values` holds nnz blocks of shape shape.slice(sparseDim), row-major. Indices are validated
 * against `shape`. Duplicates (uncoalesced tensors) are kept as stored; toDense sums them.
 */
export interface SparseCooTensor {
  readonly kind: 'sparse_coo';
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly sparseDim: number;
  readonly nnz: number;
  readonly indices: Int32Array;
  readonly values: TensorData;
}

export const ITEM_BYTES: Readonly<Record<DType, number>> = {
  float64: 8, float32: 4, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1,
  uint64: 8, uint32: 4, uint16: 2, uint8: 1, bool: 1,
};

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A zero-filled array of the type `dtype` decodes into. */
export function allocData(dtype: DType, n: number): TensorData {
  switch (dtype) {
    case 'float64': case 'float32': case 'float16': case 'bfloat16': return new Float32Array(n);
    case 'int32': case 'int16': case 'int8': case 'uint16': return new Int32Array(n);
    case 'uint32': return new Uint32Array(n);
    case 'uint8': case 'bool': return new Uint8Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'uint64': return new BigUint64Array(n);
  }
}

/**
 * Product of `shape`, refusing negative, fractional or unsafe dimensions and totals over
 * `maxElements` (checked as it multiplies, so it never overflows).
 */
export function checkedNumel(shape: readonly unknown[], maxElements: number, what: string): number {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new FormatError(`${what}: invalid dimension ${String(d)} in shape [${shape.map(String).join(', ')}]`,
        'the file is corrupt or was not written by torch/numpy');
    }
    n *= d;
    if (n > maxElements) {
      throw new ShapeError(`${what}: shape [${shape.join(', ')}] has more than ${maxElements} elements`,
        'raise limits.maxElements if this tensor is genuinely that large');
    }
  }
  return n;
}

/** Row-major strides for `shape`. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]!; }
  return s;
}

/** Column-major (Fortran) strides for `shape`. */
export function fortranStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = 0; i < shape.length; i++) { s[i] = acc; acc *= shape[i]!; }
  return s;
}

/**
 * Decodes `count` consecutive elements starting at byte `byteStart` of `src`. Always copies, so
 * the result is aligned and independent of `src`.
 */
export function decodeRange(src: Uint8Array, byteStart: number, count: number, dtype: DType, littleEndian: boolean): TensorData {
  const size = ITEM_BYTES[dtype];
  const b = src.slice(byteStart, byteStart + count * size);
  if (b.byteLength !== count * size) throw new FormatError(`need ${count * size} bytes at ${byteStart}, have ${b.byteLength}`);
  if (size > 1 && littleEndian !== HOST_LITTLE_ENDIAN) swapBytes(b, size);
  switch (dtype) {
    case 'float32': return new Float32Array(b.buffer, 0, count);
    case 'float16': return f16ToF32(new Uint16Array(b.buffer, 0, count));
    case 'bfloat16': {
      const h = new Uint16Array(b.buffer, 0, count);
      const bits = new Uint32Array(count);
      for (let i = 0; i < count; i++) bits[i] = h[i]! << 16;
      return new Float32Array(bits.buffer);
    }
    case 'float64': return Float32Array.from(new Float64Array(b.buffer, 0, count));
    case 'int32': return new Int32Array(b.buffer, 0, count);
    case 'int16': return Int32Array.from(new Int16Array(b.buffer, 0, count));
    case 'int8': return Int32Array.from(new Int8Array(b.buffer, 0, count));
    case 'uint16': return Int32Array.from(new Uint16Array(b.buffer, 0, count));
    case 'uint32': return new Uint32Array(b.buffer, 0, count);
    case 'uint8': return b;
    case 'bool': for (let i = 0; i < count; i++) b[i] = b[i] ? 1 : 0; return b;
    case 'int64': return new BigInt64Array(b.buffer, 0, count);
    case 'uint64': return new BigUint64Array(b.buffer, 0, count);
  }
}

function swapBytes(b: Uint8Array, size: number): void {
  for (let i = 0; i + size <= b.length; i += size) {
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) { const t = b[lo]!; b[lo] = b[hi]!; b[hi] = t; }
  }
}

export interface StridedView {
  readonly dtype: DType;
  readonly littleEndian: boolean;
  /** Element offset of the first element inside the storage. */
  readonly offset: number;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
}

/**
 * Materializes a strided view of `storage` (raw bytes, `storage.byteLength / itemsize`
 * elements) as a contiguous row-major array. Every element the view can reach must lie inside
 * the storage; this is checked before allocating.
 */
export function gatherStrided(storage: Uint8Array, view: StridedView, limits: { maxElements: number; maxExpandedElements: number }, what: string): TensorData {
  const { dtype, shape, strides, offset } = view;
  const size = ITEM_BYTES[dtype];
  const bad = (m: string) => new FormatError(`${what}: ${m}`, 'the file is corrupt or was not written by torch/numpy');
  if (strides.length !== shape.length) throw bad(`shape [${shape.join(', ')}] and strides [${strides.join(', ')}] differ in length`);
  for (const s of strides) if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) throw bad(`invalid stride ${String(s)}`);
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw bad(`invalid storage offset ${String(offset)}`);
  const numel = checkedNumel(shape, limits.maxElements, what);
  const storageNumel = Math.floor(storage.byteLength / size);
  if (numel === 0) return allocData(dtype, 0);
  if (numel > storageNumel && numel > limits.maxExpandedElements) {
    throw new ShapeError(`${what}: a view of ${numel} elements over a storage of ${storageNumel} exceeds the ${limits.maxExpandedElements}-element limit for expanded views`,
      'raise limits.maxExpandedElements if the file is trusted, or save the tensor with .contiguous()');
  }
  // Highest element index reachable; each term is checked alone so the sum cannot overflow.
  let last = offset;
  for (let i = 0; i < shape.length; i++) {
    const term = (shape[i]! - 1) * strides[i]!;
    if (term >= storageNumel) { last = Infinity; break; }
    last += term;
  }
  if (!(last < storageNumel)) {
    throw bad(`view (offset ${offset}, shape [${shape.join(', ')}], strides [${strides.join(', ')}]) reaches past its storage of ${storageNumel} elements`);
  }
  const rowMajor = contiguousStrides(shape);
  let contiguous = true;
  for (let i = 0; i < shape.length; i++) if (shape[i]! > 1 && strides[i] !== rowMajor[i]) { contiguous = false; break; }
  if (contiguous) return decodeRange(storage, offset * size, numel, dtype, view.littleEndian);

  const span = last - offset + 1;
  const src = decodeRange(storage, offset * size, span, dtype, view.littleEndian) as unknown as { [i: number]: number | bigint };
  const out = allocData(dtype, numel);
  const dst = out as unknown as { [i: number]: number | bigint };
  const nd = shape.length;
  const inner = shape[nd - 1]!;
  const innerStride = strides[nd - 1]!;
  const idx = new Array<number>(nd).fill(0);
  let base = 0; // element offset (relative to `offset`) of the current row's first element
  for (let o = 0; o < numel; o += inner) {
    for (let j = 0, p = base; j < inner; j++, p += innerStride) dst[o + j] = src[p]!;
    // Odometer over the outer dimensions.
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]!++;
      base += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      base -= strides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/** Sums a sparse COO tensor into a dense one (duplicates add up, as torch's to_dense). */
export function toDense(t: SparseCooTensor, maxElements = 2 ** 31 - 1): DenseTensor {
  const numel = checkedNumel(t.shape, maxElements, 'sparse tensor');
  const out = allocData(t.dtype, numel);
  const dst = out as unknown as { [i: number]: number | bigint };
  const vals = t.values as unknown as { [i: number]: number | bigint };
  const sparseShape = t.shape.slice(0, t.sparseDim);
  const block = t.shape.slice(t.sparseDim).reduce((a, b) => a * b, 1);
  const sStrides = contiguousStrides(sparseShape);
  const isBig = out instanceof BigInt64Array || out instanceof BigUint64Array;
  for (let j = 0; j < t.nnz; j++) {
    let flat = 0;
    for (let d = 0; d < t.sparseDim; d++) flat += t.indices[d * t.nnz + j]! * sStrides[d]!;
    const at = flat * block;
    for (let k = 0; k < block; k++) {
      const v = vals[j * block + k]!;
      if (t.dtype === 'bool') dst[at + k] = (dst[at + k] as number) | (v as number);
      else if (isBig) dst[at + k] = (dst[at + k] as bigint) + (v as bigint);
      else dst[at + k] = (dst[at + k] as number) + (v as number);
    }
  }
  return { kind: 'tensor', dtype: t.dtype, shape: [...t.shape], data: out };
}

/** The values as float32 (integers converted; int64 beyond 2^24 loses precision). */
export function toFloat32Data(data: TensorData): Float32Array {
  if (data instanceof Float32Array) return data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const out = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]!);
    return out;
  }
  return Float32Array.from(data);
}
