import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FormatError, NotFoundError, SecurityError } from '../errors.js';
import { encodeSafetensors, f32ToBf16, type EncodableTensor } from '../formats/safetensors.js';
import { checkpointBytes, INDEX_FILE, openCheckpoint, SINGLE_FILE } from './checkpoint.js';

const root = mkdtempSync(join(tmpdir(), 'sfc-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
function folder(files: Record<string, Uint8Array | string>): string {
  const dir = join(root, `m${n++}`);
  mkdirSync(dir);
  for (const [f, data] of Object.entries(files)) writeFileSync(join(dir, f), data);
  return dir;
}

const f32 = (...v: number[]): EncodableTensor => ({ shape: [v.length], data: new Float32Array(v) });
const st = (t: Record<string, EncodableTensor>) => encodeSafetensors(new Map(Object.entries(t)));

describe('openCheckpoint', () => {
  it('reads a single model.safetensors by offset, F32 and BF16 (upcast by get, kept by getRaw)', async () => {
    const bf = f32ToBf16(new Float32Array([1, -3, 0.5]));
    const dir = folder({ [SINGLE_FILE]: st({ a: f32(1, 2), b: { shape: [3], dtype: 'BF16', data: bf } }) });
    const c = await openCheckpoint(dir);
    expect(c.names().sort()).toEqual(['a', 'b']);
    expect([...c.get('a')]).toEqual([1, 2]);
    expect([...c.get('b')]).toEqual([1, -3, 0.5]);
    const raw = c.getRaw('b');
    expect(raw.dtype).toBe('BF16');
    expect([...raw.data]).toEqual([...bf]);
    expect(c.dtype('b')).toBe('BF16');
    expect(checkpointBytes(c, { widen: false })).toBe(8 + 6);
    expect(checkpointBytes(c, { widen: true })).toBe(8 + 12);
    c.close();
    c.close(); // idempotent
  });

  it('reads sharded checkpoints through model.safetensors.index.json', async () => {
    const index = { metadata: { total_size: 20 }, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' } };
    const dir = folder({
      [INDEX_FILE]: JSON.stringify(index),
      'model-00001-of-00002.safetensors': st({ a: f32(1, 2) }),
      'model-00002-of-00002.safetensors': st({ b: f32(3), c: f32(4, 5) }),
    });
    const c = await openCheckpoint(dir);
    expect(c.files.length).toBe(2);
    expect(c.label).toBe(join(dir, INDEX_FILE));
    expect([...c.get('a')]).toEqual([1, 2]);
    expect([...c.get('c')]).toEqual([4, 5]);
    expect(c.shape('c')).toEqual([2]);
    c.close();
  });

  it('reads a tensor that sits past 2 GiB in a file larger than readFile accepts (sparse file)', async () => {
    const dir = folder({});
    const big = 2 ** 29 + 4; // F32 elements: 2^31 + 16 bytes
    const header = { big: { dtype: 'F32', shape: [big], data_offsets: [0, big * 4] }, small: { dtype: 'F32', shape: [2], data_offsets: [big * 4, big * 4 + 8] } };
    const json = new TextEncoder().encode(JSON.stringify(header));
    const path = join(dir, SINGLE_FILE);
    const fd = openSync(path, 'w');
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
    writeSync(fd, len, 0, 8, 0);
    writeSync(fd, json, 0, json.length, 8);
    const end = 8 + json.length + big * 4 + 8;
    ftruncateSync(fd, end);
    writeSync(fd, new Uint8Array(new Float32Array([7, -8]).buffer), 0, 8, end - 8);
    closeSync(fd);
    const c = await openCheckpoint(dir);
    expect([...c.get('small')]).toEqual([7, -8]);
    expect(c.byteSize('big')).toBe(2 ** 31 + 16);
    c.close();
  });

  it('says what is missing: no weights, only pytorch_model.bin', async () => {
    await expect(openCheckpoint(folder({}))).rejects.toThrow(NotFoundError);
    await expect(openCheckpoint(folder({ 'pytorch_model.bin': 'x' }))).rejects.toMatchObject({ hint: expect.stringMatching(/safe_serialization/) });
  });

  it('refuses a broken index: bad JSON, a missing shard, a tensor not in its shard, a path outside the folder', async () => {
    const shard = st({ a: f32(1) });
    await expect(openCheckpoint(folder({ [INDEX_FILE]: '{' }))).rejects.toThrow(FormatError);
    await expect(openCheckpoint(folder({ [INDEX_FILE]: JSON.stringify({ weight_map: {} }) }))).rejects.toThrow(/empty/);
    await expect(openCheckpoint(folder({ [INDEX_FILE]: JSON.stringify({ weight_map: { a: 's1.safetensors' } }) })))
      .rejects.toThrow(/names shard 's1.safetensors', which is not a file in/);
    await expect(openCheckpoint(folder({ [INDEX_FILE]: JSON.stringify({ weight_map: { a: '' } }) }))).rejects.toThrow(/weight_map\['a'\] is not a file name/);
    await expect(openCheckpoint(folder({ [INDEX_FILE]: JSON.stringify({ weight_map: { a: 's1.safetensors', b: 's1.safetensors' } }), 's1.safetensors': shard })))
      .rejects.toThrow(/tensor 'b' is listed in 's1.safetensors', which does not hold it/);
    await expect(openCheckpoint(folder({ [INDEX_FILE]: JSON.stringify({ weight_map: { a: '../x.safetensors' } }) }))).rejects.toThrow(SecurityError);
  });

  it('refuses NaN/±Inf weights when a tensor is read (get and getRaw, F32, BF16 and F16), naming the shard and tensor', async () => {
    const bf = f32ToBf16(new Float32Array([1, NaN, -Infinity]));
    const f16 = new Uint16Array([0x3c00, 0x7c00, 0x0001]); // 1, +Inf, the smallest subnormal
    const dir = folder({
      [INDEX_FILE]: JSON.stringify({ weight_map: { a: 's1.safetensors', b: 's1.safetensors', h: 's2.safetensors', ok: 's2.safetensors' } }),
      's1.safetensors': st({ a: f32(1, Infinity), b: { shape: [3], dtype: 'BF16', data: bf } }),
      's2.safetensors': st({ h: { shape: [3], dtype: 'F16', data: f16 }, ok: { shape: [2], dtype: 'BF16', data: f32ToBf16(new Float32Array([0, -2])) } }),
    });
    const c = await openCheckpoint(dir);
    expect(() => c.get('a')).toThrow(/s1\.safetensors: tensor 'a' holds 1 non-finite value \(the first, Infinity, at flat index 1\)/);
    expect(() => c.getRaw('a')).toThrow(FormatError);
    expect(() => c.get('b')).toThrow(/tensor 'b' holds 2 non-finite values \(the first, NaN, at flat index 1\)/);
    expect(() => c.getRaw('b')).toThrow(/tensor 'b' holds 2 non-finite values \(the first, NaN, at flat index 1\)/);
    expect(() => c.getRaw('h')).toThrow(/s2\.safetensors: tensor 'h' holds 1 non-finite value \(the first, Infinity, at flat index 1\)/);
    expect([...c.getRaw('ok').data]).toEqual([0, 0xc000]);
    c.close();
  });

  it('quotes file-derived names in its messages (control characters escaped)', async () => {
    const evil = 'x\x1b]0;owned\x07.safetensors';
    let err: unknown;
    try { await openCheckpoint(folder({ [INDEX_FILE]: JSON.stringify({ weight_map: { a: evil } }) })); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain("shard 'x\\x1b]0;owned\\x07.safetensors'");
    expect((err as Error).message).not.toMatch(/[\x00-\x1f]/);
  });

  it('refuses a truncated shard before reading any tensor', async () => {
    const bytes = st({ a: f32(1, 2, 3) });
    await expect(openCheckpoint(folder({ [SINGLE_FILE]: bytes.subarray(0, bytes.length - 4) }))).rejects.toThrow(/past the data area/);
  });
});
