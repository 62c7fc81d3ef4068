// The token embedding kept on disk (OnnxBackendOptions.embeddingOnDisk): the table file itself
// (DiskTable), and a model whose lookups read only their rows and whose whole-vocabulary head reads
// the table window by window — with the outputs and VJPs of the same model held in memory.

import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  bf16ToF32, CapabilityError, canonicalWeights, f32ToBf16, InputError, IoError, openCheckpoint, parseModelConfig, transposedTiedUnembed,
  type ModelSpec, type SegmentRuntime, type Tensor, type TensorOps, type TensorSource, type WeightStore,
} from '@sfc/core';
import { DiskTable } from './disk-table.js';
import { tempBackend } from './test-support/temp-backend.js';
import { expectClose, segmentChain } from './test-support/segment-chain.js';
import { headWindows } from './windowed-head.js';

const MODELS = fileURLToPath(new URL('../../../fixtures/models', import.meta.url));
const dirs: string[] = [];
const tempDir = () => { const d = mkdtempSync(join(tmpdir(), 'sfc-disk-table-')); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('DiskTable', () => {
  const rows = 10, cols = 3;
  const words = Uint16Array.from({ length: rows * cols }, (_, i) => 1000 + i);

  it('reads only the rows asked for, once each, into a table that is otherwise zero; its file is already unlinked', () => {
    const dir = tempDir();
    const t = DiskTable.create(dir, words, rows, cols);
    try {
      expect(readdirSync(dir)).toEqual([]);
      t.fill([7, 2, 7, 3, 2], 'ids');
      expect(t.rowsRead).toBe(3);
      for (let r = 0; r < rows; r++) {
        const want = [2, 3, 7].includes(r) ? Array.from(words.subarray(r * cols, (r + 1) * cols)) : [0, 0, 0];
        expect(Array.from(t.data.subarray(r * cols, (r + 1) * cols))).toEqual(want);
      }
      t.fill([3, 7], 'ids');
      expect(t.rowsRead).toBe(3);
      expect(Array.from(t.window(4, 2))).toEqual(Array.from(words.subarray(12, 18)));
    } finally {
      t.close();
    }
  });

  it('refuses an id outside the table, and any read once closed', () => {
    const t = DiskTable.create(tempDir(), words, rows, cols);
    expect(() => t.fill([1, rows], 'token ids')).toThrow(InputError);
    expect(() => t.fill([-1], 'token ids')).toThrow(/outside the vocabulary \[0, 10\)/);
    t.close();
    expect(() => t.fill([0], 'token ids')).toThrow(/disposed/);
  });

  it('is an IoError naming the folder when the file cannot be made, and leaves nothing behind', () => {
    const dir = tempDir();
    const file = join(dir, 'not-a-folder');
    writeFileSync(file, 'x');
    let err: unknown;
    try { DiskTable.create(join(file, 'sub'), words, rows, cols); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(IoError);
    expect((err as IoError).message).toContain(join(file, 'sub'));
    expect((err as IoError).hint).toMatch(/onnx\.cacheDir.*onnx\.embeddingOnDisk off/);
    if (process.getuid?.() !== 0) {
      const locked = join(dir, 'locked');
      rmSync(file);
      writeFileSync(file, '');
      chmodSync(dir, 0o500);
      try { expect(() => DiskTable.create(locked, words, rows, cols)).toThrow(IoError); } finally { chmodSync(dir, 0o700); }
    }
    expect(readdirSync(dir).sort()).toEqual(['not-a-folder']);
  });

  it('groups row chunks into windows of equal widths but the last', () => {
    const ws = headWindows([6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6], 8);
    expect(ws.map((w) => [w.chunk, w.first, w.rows, w.widths.length])).toEqual([[0, 0, 48, 8], [8, 48, 24, 4]]);
  });
});

/** gemma2-a (tied head, soft-capped logits) with its weights rounded to bf16; `perRow`: some embedding rows tiny, so the table needs one scale per row. */
async function gemmaStores(perRow: boolean): Promise<{ spec: ModelSpec; half: WeightStore; f32: WeightStore }> {
  const dir = join(MODELS, 'gemma2-a');
  const spec = transposedTiedUnembed(parseModelConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))));
  const ckpt = await openCheckpoint(dir);
  try {
    const words = (n: string) => {
      const v = ckpt.get(n);
      if (perRow && n.endsWith('embed_tokens.weight')) {
        const [r0, c0] = ckpt.shape(n) as [number, number];
        for (let r = 10; r < r0; r += 3) for (let c = 0; c < c0; c++) v[r * c0 + c]! *= 2 ** -40;
      }
      return f32ToBf16(v);
    };
    const src: TensorSource = {
      has: (n) => ckpt.has(n), shape: (n) => ckpt.shape(n), names: () => ckpt.names(),
      get: (n) => bf16ToF32(words(n)), getRaw: (n) => ({ dtype: 'BF16', data: words(n) }),
    };
    return { spec, half: canonicalWeights(spec, src, ckpt.label, { keep16: true, transposeLinears: true }).store, f32: canonicalWeights(spec, src, ckpt.label).store };
  } finally {
    ckpt.close();
  }
}

/** The chain with a cotangent that differs per logit, so that the windows' parts of dx differ. */
function chain(ops: TensorOps, rt: SegmentRuntime, spec: ModelSpec, ids: Tensor): Promise<Float32Array[]> {
  return segmentChain(ops, rt, spec, ids, (o, y) => o.tensor(Float32Array.from({ length: y.shape.reduce((m, n) => m * n, 1) }, (_, i) => Math.sin(i)), y.shape));
}


// Row chunks of 6 rows (4 · 3 · 64 bytes of float32 at d = 32): gemma2-a's 72-row table is 12
// chunks, so the whole-vocabulary head runs as two windows (8 chunks, then 4).
const CHUNK = 4 * 3 * 64;

describe.each([false, true])('the token embedding on disk (gemma2-a, bf16, per-row scales: %s)', (perRow) => {
  const inMemory = tempBackend('embed-memory', { rowChunkBytes: CHUNK });
  const onDisk = tempBackend('embed-disk', { rowChunkBytes: CHUNK, embeddingOnDisk: true });

  it('gives the in-memory model\'s outputs (the same logits) and VJPs (within 1e-6), reading only the rows a lookup or selection uses', async () => {
    const { spec, half } = await gemmaStores(perRow);
    const a = await inMemory().loadModel(spec, half);
    const read = vi.spyOn(DiskTable.prototype, 'readRows');
    const b = await onDisk().loadModel(spec, half);
    try {
      const ops = onDisk().ops;
      const ids = [1, 5, 9, 3, 7, 2, 4, 5];
      const embed = spec.segments[0]!;
      await b.forward(embed.name, [ops.intTensor(ids, [2, 4])]);
      expect(read.mock.calls.reduce((n, c) => n + (c[1] as number), 0)).toBe(new Set(ids).size);

      const x = await inMemory().ops.tensor(Float32Array.from({ length: 2 * 4 * 32 }, (_, i) => Math.cos(i)), [2, 4, 32]);
      const un = spec.segments[spec.segments.length - 1]!;
      read.mockClear();
      const cols = ops.intTensor([13, 1, 40, 16], [2, 2]);
      for (const lastOnly of [false, true]) {
        const opts = { logits: { columns: inMemory().ops.intTensor([13, 1, 40, 16], [2, 2]), lastOnly } };
        const optsDisk = { logits: { columns: cols, lastOnly } };
        const y = await a.forward(un.name, [x], opts);
        const yd = await b.forward(un.name, [ops.tensor(await x.data() as Float32Array, x.shape)], optsDisk);
        expect(await yd.data()).toEqual(await y.data());
      }
      // Row 1 was read by the lookup already; 13, 40 and 16 are read now, once for both selections.
      expect(read.mock.calls.reduce((n, c) => n + (c[1] as number), 0)).toBe(3);

      const ta = await chain(inMemory().ops, a, spec, inMemory().ops.intTensor(ids, [2, 4]));
      const tb = await chain(ops, b, spec, ops.intTensor(ids, [2, 4]));
      expect(tb.length).toBe(ta.length);
      const head = spec.segments.length - 1;
      tb.forEach((v, i) => expectClose(v, ta[i]!, 1e-6));
      // The head's logits (second to last value: its output, then its input's cotangent) are the same numbers.
      expect(tb[tb.length - 2]).toEqual(ta[ta.length - 2]);
      expect(head).toBeGreaterThan(0);
      // Two whole-vocabulary heads at once share the table's window buffer: they run one after the other.
      const xs = [0.5, -1].map((c) => Float32Array.from({ length: 2 * 4 * 32 }, (_, i) => Math.sin(c * i)));
      const together = await Promise.all(xs.map((d) => b.forward(un.name, [ops.tensor(d, [2, 4, 32])])));
      for (let i = 0; i < xs.length; i++) {
        const alone = await a.forward(un.name, [inMemory().ops.tensor(xs[i]!, [2, 4, 32])]);
        expect(await together[i]!.data()).toEqual(await alone.data());
      }
      {
        const lastOnly = true;
        const y = await a.forward(un.name, [x], { logits: { lastOnly } });
        const yd = await b.forward(un.name, [ops.tensor(await x.data() as Float32Array, x.shape)], { logits: { lastOnly } });
        expect(yd.shape).toEqual([2, spec.dims.vocabSize]);
        expect(await yd.data()).toEqual(await y.data());
        const dy = Float32Array.from({ length: 2 * spec.dims.vocabSize }, (_, i) => Math.cos(3 * i));
        const [dx] = await a.vjp(un.name, [x], inMemory().ops.tensor(dy, y.shape), { logits: { lastOnly } });
        const [dxd] = await b.vjp(un.name, [ops.tensor(await x.data() as Float32Array, x.shape)], ops.tensor(dy, y.shape), { logits: { lastOnly } });
        expectClose(await dxd!.data() as Float32Array, await dx!.data() as Float32Array, 1e-6);
      }
    } finally {
      read.mockRestore();
      a.dispose();
      b.dispose();
    }
  });
});

describe('embeddingOnDisk on a float32 table', () => {
  const onDisk = tempBackend('embed-disk-f32', { embeddingOnDisk: true });
  it('is a CapabilityError saying to turn the option off', async () => {
    const { spec, f32 } = await gemmaStores(false);
    const err = await onDisk().loadModel(spec, f32).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CapabilityError);
    expect((err as CapabilityError).hint).toMatch(/turn onnx\.embeddingOnDisk off/);
  });
});
