import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../cli.js';
import { memoryIO } from '../io.js';

const CIRCUIT = {
  schema: 'sfc.circuit/v1', method: 'ig', steps: 10, aggregation: 'sum', numExamples: 2, seqLen: 6, metric: 'm',
  nodeThreshold: 0.1, edgeThreshold: 0.01, nodesOnly: false, submodules: ['embed', 'resid_0'], dSae: { embed: 64, resid_0: 64 },
  metricClean: -1, metricPatch: 1, totalEffect: 2,
  nodes: [
    { id: 'y', submodule: 'y', index: null, pos: null, effect: 2 },
    { id: 'embed/err', submodule: 'embed', index: 64, pos: null, effect: 0.3 },
    { id: 'resid_0/5', submodule: 'resid_0', index: 5, pos: null, effect: -0.6 },
    { id: 'embed/7', submodule: 'embed', index: 7, pos: null, effect: 0.2 },
  ],
  edges: [{ source: 'embed/err', target: 'resid_0/5', weight: 0.2 }, { source: 'embed/7', target: 'resid_0/5', weight: 0.1 }, { source: 'resid_0/5', target: 'y', weight: -0.6 }],
};

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'sfc-export-'));
  writeFileSync(join(dir, 'c.json'), JSON.stringify(CIRCUIT));
  return dir;
}

async function run(dir: string, args: string[]) {
  const io = memoryIO({ cwd: dir });
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

describe('sfc export neuronpedia', () => {
  it('prints a quick-list URL with the top-k features', async () => {
    const dir = setup();
    const r = await run(dir, ['export', 'neuronpedia', 'c.json', '--model-id', 'pythia-70m-deduped', '--top-k', '1', '--name', 'agreement']);
    expect(r.code, r.err).toBe(0);
    const url = new URL(r.out.trim());
    expect(url.pathname).toBe('/quick-list');
    expect(url.searchParams.get('name')).toBe('agreement');
    expect(JSON.parse(url.searchParams.get('features')!)).toEqual([{ modelId: 'pythia-70m-deduped', layer: '0-res-sm', index: '5' }]);
  });

  it('needs --model-id', async () => {
    const r = await run(setup(), ['export', 'neuronpedia', 'c.json']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('Missing required argument: model-id');
  });
});

describe('sfc plot', () => {
  it('writes SVG or DOT by the extension of --out', async () => {
    const dir = setup();
    const svg = await run(dir, ['plot', 'c.json', '--out', 'c.svg']);
    expect(svg.code, svg.err).toBe(0);
    expect(svg.err).toBe('wrote c.svg: 3 nodes, 3 edges\n');
    expect(readFileSync(join(dir, 'c.svg'), 'utf8')).toContain('<svg');
    const dot = await run(dir, ['plot', 'c.json', '--out', 'c.dot', '--quiet']);
    expect(dot.code, dot.err).toBe(0);
    expect(readFileSync(join(dir, 'c.dot'), 'utf8')).toMatch(/^digraph "feature circuit" \{/);
  });

  it('writes PNG (rasterized from the SVG) at --scale', async () => {
    const dir = setup();
    const size = (f: string) => { const b = readFileSync(join(dir, f)); return [b.readUInt32BE(16), b.readUInt32BE(20)] as const; };
    const one = await run(dir, ['plot', 'c.json', '--out', 'c1.png', '--scale', '1']);
    expect(one.code, one.err).toBe(0);
    const png = readFileSync(join(dir, 'c1.png'));
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const [w, h] = size('c1.png');
    expect(one.err).toBe(`wrote c1.png (${w}×${h} px): 3 nodes, 3 edges\n`);
    expect(w).toBeGreaterThan(50);
    expect(h).toBeGreaterThan(100); // three rows stacked: embed, resid_0, y
    expect(w).toBeLessThan(2000);
    expect(h).toBeLessThan(2000);
    expect((await run(dir, ['plot', 'c.json', '--out', 'c3.PNG', '--scale', '3'])).code).toBe(0);
    const [w3, h3] = size('c3.PNG');
    expect(Math.abs(w3 - 3 * w)).toBeLessThanOrEqual(3);
    expect(Math.abs(h3 - 3 * h)).toBeLessThanOrEqual(3);
    const bad = await run(dir, ['plot', 'c.json', '--out', 'c.png', '--scale', '0']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--scale must be a positive number/);
  });

  it('refuses unknown output formats and bad circuit files', async () => {
    const dir = setup();
    expect((await run(dir, ['plot', 'c.json', '--out', 'c.pdf'])).err).toMatch(/cannot tell the output format/);
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ ...CIRCUIT, edges: [{ source: 'embed/1', target: 'y', weight: 1 }] }));
    const bad = await run(dir, ['plot', 'bad.json', '--out', 'b.svg']);
    expect(bad.code).toBe(4);
    expect(bad.err).toMatch(/edges\[0\]\.source.*not a node of the circuit/);
  });
});
