// Loader plugins against crafted SAE files (issue 16): weight files over 2 GiB read by offset,
// NaN/Inf weights and empty dictionaries refused at load, hook names quoted in messages.

import { closeSync, cpSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { zipSync } from 'fflate';
import { encodeSafetensors, FormatError, listSubmodules, SafetensorsFile, ShapeError } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDictionarySet } from '../load-set.js';
import { readNpz } from '../formats/npz.js';
import { gemmaScope } from './gemma-scope.js';
import { saelens } from './saelens.js';

const ARCHS = fileURLToPath(new URL('../../test-data/archs', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'sfc-plugin-bounds-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const copyCase = (name: string): string => {
  const dir = join(root, `${name}-${n++}`);
  cpSync(join(ARCHS, name), dir, { recursive: true });
  return dir;
};
const ctx = () => ({ ops: referenceOps() });

/** The tensors of a safetensors file as a Map, for rewriting. */
function tensorsOf(path: string): Map<string, { shape: readonly number[]; data: Float32Array }> {
  const f = SafetensorsFile.parse(new Uint8Array(readFileSync(path)), path);
  return new Map([...f.entries.keys()].map((k) => [k, { shape: f.entries.get(k)!.shape, data: f.getFloat32(k).slice() }]));
}

describe('SAELens weights', () => {
  it('loads a sae_weights.safetensors over 2 GiB, reading only the tensors it uses', async () => {
    const dir = copyCase('saelens_standard');
    const path = join(dir, 'sae_weights.safetensors');
    const tensors = tensorsOf(path);
    // The same tensors plus an unused 2.5 GiB I32 tensor at the end, written as a sparse file.
    const small = encodeSafetensors(tensors);
    const headerLen = Number(new DataView(small.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(small.subarray(8, 8 + headerLen))) as Record<string, unknown>;
    const dataLen = small.length - 8 - headerLen;
    const big = 2.5 * 2 ** 30;
    header.unused_counts = { dtype: 'I32', shape: [big / 4], data_offsets: [dataLen, dataLen + big] };
    const raw = new TextEncoder().encode(JSON.stringify(header));
    const hb = new Uint8Array(Math.ceil(raw.length / 8) * 8).fill(0x20);
    hb.set(raw);
    const fd = openSync(path, 'w');
    try {
      const len = new Uint8Array(8);
      new DataView(len.buffer).setBigUint64(0, BigInt(hb.length), true);
      writeSync(fd, len, 0, 8, 0);
      writeSync(fd, hb, 0, hb.length, 8);
      writeSync(fd, small, 8 + headerLen, dataLen, 8 + hb.length);
      writeSync(fd, new Uint8Array(1), 0, 1, 8 + hb.length + dataLen + big - 1);
    } finally {
      closeSync(fd);
    }
    const dict = await saelens().load(dir, ctx());
    expect(dict.dSae).toBe(16);
    dict.dispose();
  });

  it('refuses NaN and Inf weights at load, naming the tensor', async () => {
    for (const bad of [NaN, Infinity]) {
      const dir = copyCase('saelens_standard');
      const path = join(dir, 'sae_weights.safetensors');
      const tensors = tensorsOf(path);
      tensors.get('W_dec')!.data[5] = bad;
      writeFileSync(path, encodeSafetensors(tensors));
      const err = await saelens().load(dir, ctx()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FormatError);
      expect((err as Error).message).toMatch(new RegExp(`tensor 'W_dec' holds 1 non-finite value \\(the first, ${bad}, at flat index 5\\)`));
    }
  });

  it('quotes a hook_name with terminal escapes in load warnings', async () => {
    const dir = join(root, `hooks-${n++}`);
    const sae = join(dir, 'weird');
    cpSync(join(ARCHS, 'saelens_standard'), sae, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(sae, 'cfg.json'), 'utf8'));
    cfg.metadata.hook_name = `\x1b]0;owned\x07${'h'.repeat(10_000)}`;
    writeFileSync(join(sae, 'cfg.json'), JSON.stringify(cfg));
    const warnings: string[] = [];
    const set = await loadDictionarySet(dir, listSubmodules(1, 'gpt_neox'), { ops: referenceOps(), dIn: 8, missing: 'skip', warn: (m: string) => warnings.push(m) });
    expect(set.size).toBe(0);
    expect(warnings.length).toBeGreaterThan(0);
    for (const w of warnings) {
      expect(w).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
      expect(w.length).toBeLessThan(1000);
    }
  });
});

describe('Gemma Scope and dictionary_learning weights', () => {
  it('refuses NaN in params.npz and a dictionary without features', async () => {
    const src = readNpz(new Uint8Array(readFileSync(join(ARCHS, 'gemma_scope', 'params.npz'))), 'params.npz');
    const npy = (shape: readonly number[], data: Float32Array) => {
      const header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
      const h = new TextEncoder().encode(header + ' '.repeat(63 - ((10 + header.length) % 64)) + '\n');
      return Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length & 0xff, h.length >> 8, ...h, ...new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))]);
    };
    const write = (edit: (name: string, shape: readonly number[], data: Float32Array) => [readonly number[], Float32Array]) => {
      const dir = join(root, `gs-${n++}`);
      cpSync(join(ARCHS, 'gemma_scope'), dir, { recursive: true });
      const files: Record<string, Uint8Array> = {};
      for (const [k, v] of src) {
        const [shape, data] = edit(k, v.shape, (v.data as Float32Array).slice());
        files[`${k}.npy`] = npy(shape, data);
      }
      writeFileSync(join(dir, 'params.npz'), zipSync(files));
      return dir;
    };
    const nan = write((k, s, d) => { if (k === 'b_enc') d[0] = NaN; return [s, d]; });
    await expect(gemmaScope().load(nan, ctx())).rejects.toThrow(/tensor 'b_enc' holds 1 non-finite value/);
    const empty = write((k, s) => {
      const dIn = src.get('b_dec')!.shape[0]!;
      const shape = k === 'W_enc' ? [dIn, 0] : k === 'W_dec' ? [0, dIn] : k === 'b_dec' ? [dIn] : [0];
      return [shape, new Float32Array(shape.reduce((a, b) => a * b, 1))];
    });
    const err = await gemmaScope().load(empty, ctx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShapeError);
    expect((err as Error).message).toContain('d_sae = 0');
  });
});
