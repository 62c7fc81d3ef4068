// The on-disk graph cache: a second load uses the cached optimized graph; a corrupt entry is
// detected by its checksum, deleted and rebuilt — never loaded; an unwritable cache still works.

import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { GraphCache, readEntry } from './graph-cache.js';
import { GraphBuilder } from './onnx-graph.js';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const tmp = () => { const d = mkdtempSync(join(tmpdir(), 'sfc-onnx-cache-')); dirs.push(d); return d; };
const settings = { intraOpNumThreads: 1, executionProviders: ['cpu'], graphOptimizationLevel: 'extended' as const };

function graph(k: number): Uint8Array {
  const g = new GraphBuilder('t');
  const x = g.input('x', 'float32', ['n', 3]);
  const w = g.input('w', 'float32', [4, 3]);
  // Transpose + MatMul: the kind of pattern ORT's optimizer fuses.
  g.output(g.node('Mul', [g.node('MatMul', [x, g.node('Transpose', [w], { perm: [1, 0] })]), g.constF(k)]), 'y', 'float32', ['n', 4]);
  return g.encode();
}

async function run(s: ort.InferenceSession): Promise<number[]> {
  const out = await s.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2, 3), [1, 3]), w: new ort.Tensor('float32', Float32Array.from({ length: 12 }, (_, i) => i), [4, 3]) });
  return Array.from(out.y!.data as Float32Array);
}

describe('GraphCache', () => {
  it('stores the optimized graph with a checksum and loads it next time', async () => {
    const c = new GraphCache(tmp(), settings);
    const expected = [8, 26, 44, 62].map((v) => v * 2);
    expect(await run(await c.session(graph(2), 'g'))).toEqual(expected);
    expect(c.stats).toMatchObject({ hits: 0, misses: 1 });
    expect(readEntry(readFileSync(c.pathFor(graph(2))))).toBeDefined();
    const c2 = new GraphCache(c.dir, settings);
    expect(await run(await c2.session(graph(2), 'g'))).toEqual(expected);
    expect(c2.stats).toMatchObject({ hits: 1, misses: 0 });
    // A different graph (another constant) has another key.
    expect(c.pathFor(graph(3))).not.toBe(c.pathFor(graph(2)));
    expect(new GraphCache(c.dir, { ...settings, executionProviders: ['cuda', 'cpu'] }).pathFor(graph(2))).not.toBe(c.pathFor(graph(2)));
  });

  it('detects a corrupt entry by checksum and rebuilds it', async () => {
    const c = new GraphCache(tmp(), settings);
    await c.session(graph(5), 'g');
    const path = c.pathFor(graph(5));
    const bytes = readFileSync(path);
    // Flip one payload byte, keep the header: the checksum no longer matches.
    bytes[bytes.length - 20] ^= 0xff;
    writeFileSync(path, bytes);
    expect(readEntry(bytes)).toBeUndefined();
    const c2 = new GraphCache(c.dir, settings);
    expect(await run(await c2.session(graph(5), 'g'))).toEqual([8, 26, 44, 62].map((v) => v * 5));
    expect(c2.stats).toMatchObject({ hits: 0, misses: 1, rebuilt: 1 });
    expect(readEntry(readFileSync(path))).toBeDefined();
    // A truncated file and garbage are refused too.
    writeFileSync(path, bytes.subarray(0, 30));
    const c3 = new GraphCache(c.dir, settings);
    await c3.session(graph(5), 'g');
    expect(c3.stats.rebuilt).toBe(1);
    expect(readEntry(Buffer.from('not a cache entry'))).toBeUndefined();
  });

  it('works without a writable cache folder', async () => {
    const d = tmp();
    const file = join(d, 'a-file');
    writeFileSync(file, 'x');
    chmodSync(file, 0o400);
    const c = new GraphCache(join(file, 'sub'), settings); // a folder under a file cannot exist
    expect(await run(await c.session(graph(1), 'g'))).toEqual([8, 26, 44, 62]);
    expect(c.stats.writeFailures).toBe(1);
  });
});
