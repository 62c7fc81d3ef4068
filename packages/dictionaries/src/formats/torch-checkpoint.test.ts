import { existsSync, readFileSync, rmSync } from 'node:fs';
import { zipSync } from 'fflate';
import { encodeSafetensors, FormatError, SecurityError, SfcError } from '@sfc/core';
import { describe, expect, it } from 'vitest';
import { dictAttributes, isTuple, type PickleValue } from './pickle.js';
import { isDenseTensor, isSparseCoo, readTorchCheckpoint, stateDict, TORCH_ALLOWED_GLOBALS } from './torch-checkpoint.js';
import { toDense, type TensorData } from './tensor-data.js';

const DIR = new URL('../../test-data/formats/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, DIR)));
const expected = JSON.parse(readFileSync(new URL('expected.json', DIR), 'utf8')) as Expected;

interface DenseExp { dtype: string; shape: number[]; data: number[]; requires_grad?: boolean }
interface SparseExp { dtype: string; shape: number[]; sparse_dim: number; nnz: number; indices: number[]; values: number[]; values_shape: number[]; dense: number[] }
interface Expected {
  torch: Record<string, Record<string, DenseExp>> & { 'sparse.pt': Record<string, SparseExp> };
  backup_config: Record<string, unknown>;
  backup_param_groups: Record<string, unknown>[];
  evil: Record<string, { global: string; marker: string }>;
  bad: Record<string, string>;
}

/** Values as plain numbers (int64 via Number: every test value is exact in a double). */
const nums = (d: TensorData) => Array.from(d as ArrayLike<number | bigint>, Number);

function asMap(v: PickleValue): Map<PickleValue, PickleValue> {
  expect(v).toBeInstanceOf(Map);
  return v as Map<PickleValue, PickleValue>;
}

describe('readTorchCheckpoint on torch.save files', () => {
  it('reads every dtype, view, shared storage and parameter in tensors.pt exactly', () => {
    const root = asMap(readTorchCheckpoint(read('tensors.pt'), 'tensors.pt'));
    const exp = expected.torch['tensors.pt']!;
    expect([...root.keys()].sort()).toEqual(Object.keys(exp).sort());
    for (const [name, e] of Object.entries(exp)) {
      const t = root.get(name);
      if (!isDenseTensor(t)) throw new Error(`${name} is not a tensor`);
      expect(t.dtype, name).toBe(e.dtype);
      expect(t.shape, name).toEqual(e.shape);
      expect(nums(t.data), name).toEqual(e.data);
      expect(t.requiresGrad, name).toBe(e.requires_grad);
    }
    // The dtype decides the array type.
    const t = (k: string) => root.get(k) as { data: TensorData };
    expect(t('f16').data).toBeInstanceOf(Float32Array);
    expect(t('bf16').data).toBeInstanceOf(Float32Array);
    expect(t('i64').data).toBeInstanceOf(BigInt64Array);
    expect((t('i64').data as BigInt64Array)[2]).toBe(2n ** 40n);
    expect(t('i32').data).toBeInstanceOf(Int32Array);
    expect(t('bool').data).toBeInstanceOf(Uint8Array);
  });

  it('gives views that share a storage their own copies', () => {
    const root = asMap(readTorchCheckpoint(read('tensors.pt'), 'tensors.pt'));
    const a = root.get('shared_a') as { data: Float32Array };
    const b = root.get('shared_b') as { data: Float32Array };
    expect(a.data.buffer).not.toBe(b.data.buffer);
    a.data[0] = 99;
    expect(b.data[0]).toBe(0.5);
  });

  it('reads a real nn.Module state_dict (OrderedDict with _metadata)', () => {
    const root = asMap(readTorchCheckpoint(read('ae.pt'), 'ae.pt'));
    const meta = dictAttributes(root);
    expect(meta).toBeInstanceOf(Map);
    expect((meta as Map<PickleValue, PickleValue>).has('_metadata')).toBe(true);
    const sd = stateDict(root);
    const exp = expected.torch['ae.pt']!;
    expect([...sd.keys()].sort()).toEqual(Object.keys(exp).sort());
    for (const [k, e] of Object.entries(exp)) {
      const v = sd.get(k)!;
      expect(v.shape, k).toEqual(e.shape);
      expect(Array.from(v.data), k).toEqual(e.data);
    }
  });

  it('flattens a training backup {ae, optimizer, step, config}', () => {
    const root = asMap(readTorchCheckpoint(read('backup.pt'), 'backup.pt'));
    const sd = stateDict(root);
    const exp = expected.torch['backup.pt']!;
    expect([...sd.keys()].sort()).toEqual(Object.keys(exp).sort());
    expect(sd.has('ae.encoder.weight')).toBe(true);
    expect(sd.has('optimizer.state.0.exp_avg')).toBe(true);
    for (const [k, e] of Object.entries(exp)) {
      expect(sd.get(k)!.dtype, k).toBe(e.dtype);
      expect(sd.get(k)!.shape, k).toEqual(e.shape);
      expect(Array.from(sd.get(k)!.data), k).toEqual(e.data);
    }
    expect(root.get('step')).toBe(2);
    const config = asMap(root.get('config')!);
    const plain = Object.fromEntries([...config].map(([k, v]) => [k, isTuple(v) ? [...v] : v]));
    expect(plain).toEqual(expected.backup_config);
    expect(isTuple(config.get('betas'))).toBe(true);
    const groups = asMap(root.get('optimizer')!).get('param_groups') as PickleValue[];
    expect(groups.map((g) => Object.fromEntries([...asMap(g)].map(([k, v]) => [k, Array.isArray(v) ? [...v] : v]))))
      .toEqual(expected.backup_param_groups);
    // Optimizer state is keyed by parameter index (Python ints).
    expect([...asMap(asMap(root.get('optimizer')!).get('state')!).keys()]).toEqual([0, 1, 2, 3]);
  });

  it('reads sparse COO tensors: coalesced, uncoalesced, empty, hybrid, float16', () => {
    const root = asMap(readTorchCheckpoint(read('sparse.pt'), 'sparse.pt'));
    for (const [name, e] of Object.entries(expected.torch['sparse.pt'])) {
      const t = root.get(name);
      if (!isSparseCoo(t)) throw new Error(`${name} is not sparse`);
      expect(t.shape, name).toEqual(e.shape);
      expect(t.dtype, name).toBe(e.dtype);
      expect(t.sparseDim, name).toBe(e.sparse_dim);
      expect(t.nnz, name).toBe(e.nnz);
      expect(Array.from(t.indices), name).toEqual(e.indices);
      expect(nums(t.values), name).toEqual(e.values);
      expect(nums(toDense(t).data), name).toEqual(e.dense);
    }
  });

  it('converts a big-endian archive (byteorder record) to host order', () => {
    const root = asMap(readTorchCheckpoint(read('bigendian.pt'), 'bigendian.pt'));
    for (const [name, e] of Object.entries(expected.torch['bigendian.pt']!)) {
      const t = root.get(name);
      if (!isDenseTensor(t)) throw new Error(`${name} is not a tensor`);
      expect(t.shape, name).toEqual(e.shape);
      expect(nums(t.data), name).toEqual(e.data);
    }
  });

  it('reads pickle protocol 4 (FRAME, STACK_GLOBAL, MEMOIZE)', () => {
    const root = asMap(readTorchCheckpoint(read('proto4.pt'), 'proto4.pt'));
    const sd = stateDict(root);
    for (const [k, e] of Object.entries(expected.torch['proto4.pt']!)) expect(Array.from(sd.get(k)!.data), k).toEqual(e.data);
    expect(asMap(root.get('nested')!).get('n')).toEqual([1, 2.5, 's', null]);
  });

  it('refuses the legacy non-zip format with a hint to re-save', () => {
    const err = catchErr(() => readTorchCheckpoint(read('legacy.pt'), 'legacy.pt'));
    expect(err).toBeInstanceOf(FormatError);
    expect(err.message).toMatch(/legacy/);
    expect(err.hint).toMatch(/torch ≥ 1\.6/);
  });

  it('refuses hostile or inconsistent tensor arguments before allocating', () => {
    for (const [file, why] of Object.entries(expected.bad)) {
      const err = catchErr(() => readTorchCheckpoint(read(file), file));
      expect(err, file).toBeInstanceOf(SfcError);
      expect(err.message, file).toContain(why);
    }
  });

  it('caps the size of a single entry and of all tensors together', () => {
    expect(() => readTorchCheckpoint(read('tensors.pt'), 't', { limits: { maxEntryBytes: 40 } })).toThrow(/over the 40-byte limit/);
    expect(() => readTorchCheckpoint(read('tensors.pt'), 't', { limits: { maxTotalElements: 20 } })).toThrow(/over the 20-element limit/);
    expect(() => readTorchCheckpoint(read('tensors.pt'), 't', { limits: { maxElements: 10 } })).toThrow(/more than 10 elements/);
  });

  it('names other formats instead of failing obscurely', () => {
    const st = encodeSafetensors(new Map([['w', { shape: [1], data: new Float32Array(1) }]]));
    expect(() => readTorchCheckpoint(st, 'w.safetensors')).toThrow(/looks like a safetensors file/);
    const script = zipSync({ 'm/constants.pkl': new Uint8Array([0x80, 2, 0x4e, 0x2e]), 'm/code/m.py': new Uint8Array(1) });
    expect(() => readTorchCheckpoint(script, 'm.pt')).toThrow(/TorchScript/);
    expect(() => readTorchCheckpoint(zipSync({ 'a.txt': new Uint8Array(1) }), 'a.zip')).toThrow(/no <folder>\/data\.pkl/);
  });

  it('does not let _rebuild_from_type_v2 call itself (unbounded recursion)', () => {
    const ascii = (t: string) => Array.from(t, (c) => c.charCodeAt(0));
    const head = [0x80, 2, ...ascii('ctorch._tensor\n_rebuild_from_type_v2\n'), 0x71, 0, ...ascii('ctorch\nTensor\n'), 0x71, 1];
    // f((f, Tensor, (f, Tensor, (...), {}), {})) nested 10,000 deep
    const depth = 10_000;
    const body: number[] = [0x68, 0];
    for (let i = 0; i < depth; i++) body.push(0x28, 0x68, 0, 0x68, 1);
    body.push(0x29);
    for (let i = 0; i < depth; i++) body.push(0x7d, 0x74);
    const pkl = Uint8Array.from([...head, ...body, 0x52, 0x2e]);
    const err = catchErr(() => readTorchCheckpoint(zipSync({ 'archive/data.pkl': [pkl, { level: 0 }] }), 'nested.pt'));
    expect(err).toBeInstanceOf(FormatError);
    expect(err.message).toMatch(/_rebuild_from_type_v2 with torch\._tensor\._rebuild_from_type_v2/);
  });

  it('lists the torch globals it allows', () => {
    expect(TORCH_ALLOWED_GLOBALS).toContain('torch._utils._rebuild_tensor_v2');
    expect(TORCH_ALLOWED_GLOBALS).toContain('torch.BFloat16Storage');
    expect(TORCH_ALLOWED_GLOBALS).not.toContain('torch.load');
  });
});

describe('malicious pickles', () => {
  for (const [file, { global, marker }] of Object.entries(expected.evil)) {
    it(`${file}: SecurityError naming ${global}, nothing executed`, () => {
      rmSync(marker, { force: true });
      const err = catchErr(() => readTorchCheckpoint(read(file), file));
      expect(err).toBeInstanceOf(SecurityError);
      expect(err.message).toContain(`'${global}'`);
      expect(err.hint).toBeTruthy();
      expect(existsSync(marker)).toBe(false);
    });
  }

  it('stays refused when the caller allows unrelated data classes', () => {
    const err = catchErr(() => readTorchCheckpoint(read('evil/os_system.pt'), 'x', { dataClasses: ['activation_utils.SparseAct', 'dictionary_learning.*'] }));
    expect(err).toBeInstanceOf(SecurityError);
  });

  it('records an allowed data class as inert data instead', () => {
    const root = asMap(readTorchCheckpoint(read('evil/evil_thing.pt'), 'x', { dataClasses: ['evil.Thing'] }));
    const obj = root.get('cfg') as { kind: string; __class__: string; state: Map<string, string> };
    expect(obj.kind).toBe('object');
    expect(obj.__class__).toBe('evil.Thing');
    expect(obj.state.get('cmd')).toMatch(/^touch /);
    expect(existsSync(expected.evil['evil/evil_thing.pt']!.marker)).toBe(false);
  });
});

function catchErr(f: () => unknown): SfcError {
  try { f(); } catch (e) { if (e instanceof SfcError) return e; throw e; }
  throw new Error('expected an error');
}
