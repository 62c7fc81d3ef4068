import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError, InputError, NotFoundError, type Circuit } from '@sfc/core';
import { featureId } from '../feature-ref.js';
import { readCircuitFile, selectCircuitFeatures, type CircuitReader } from './circuit-file.js';

const dir = mkdtempSync(join(tmpdir(), 'sfc-steer-circuit-'));

function circuitJson(aggregation: 'sum' | 'none' = 'sum'): Record<string, unknown> {
  const at = (p: number) => (aggregation === 'none' ? `@${p}` : '');
  const node = (sub: string, idx: number | 'err', effect: number, p = 1) => ({
    id: `${sub}/${idx}${at(p)}`, submodule: sub, index: idx === 'err' ? 128 : idx, pos: aggregation === 'none' ? p : null, effect,
  });
  return {
    schema: 'sfc.circuit/v1', method: 'ig', steps: 10, aggregation, numExamples: 40, seqLen: aggregation === 'none' ? 6 : null,
    metric: 'logit-diff', nodeThreshold: 0.1, edgeThreshold: 0.01, nodesOnly: false,
    submodules: ['embed', 'attn_0', 'resid_0', 'resid_1'], dSae: { embed: 128, attn_0: 128, resid_0: 128, resid_1: 128 },
    metricClean: -1.2, metricPatch: 1.3, totalEffect: 2.5,
    nodes: [
      { id: 'y', submodule: 'y', index: null, pos: null, effect: 2.5 },
      node('embed', 1, 0.19), node('embed', 8, 0.24), node('attn_0', 24, -0.17), node('attn_0', 'err', 0.9),
      node('resid_0', 21, 0.23, 5), node('resid_1', 2, -0.11), node('resid_1', 8, 0.26), node('resid_1', 'err', -0.5),
    ],
    edges: [{ source: `resid_1/8${at(1)}`, target: 'y', weight: 0.26 }],
  };
}

function write(name: string, data: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof data === 'string' ? data : JSON.stringify(data));
  return p;
}

const ids = (xs: readonly { kind: string }[]) => xs.map((x) => featureId(x as never));

describe('circuit files as a feature source', () => {
  it('selects features by top-k |effect|, threshold, submodule and sign; errors only on request', async () => {
    const c = await readCircuitFile(write('c.json', circuitJson()));
    expect(ids(selectCircuitFeatures(c))).toEqual(['embed/1', 'embed/8', 'attn_0/24', 'resid_0/21', 'resid_1/2', 'resid_1/8']);
    expect(ids(selectCircuitFeatures(c, { topK: 3 }))).toEqual(['resid_1/8', 'embed/8', 'resid_0/21']);
    expect(ids(selectCircuitFeatures(c, { topK: 2, includeErrors: true }))).toEqual(['attn_0/err', 'resid_1/err']);
    expect(ids(selectCircuitFeatures(c, { threshold: 0.2 }))).toEqual(['embed/8', 'resid_0/21', 'resid_1/8']);
    expect(ids(selectCircuitFeatures(c, { sign: 'negative', includeErrors: true }))).toEqual(['attn_0/24', 'resid_1/2', 'resid_1/err']);
    expect(ids(selectCircuitFeatures(c, { submodules: ['resid_1'], sign: 'positive' }))).toEqual(['resid_1/8']);
    const sel = selectCircuitFeatures(c, { topK: 1 });
    expect(sel[0]).toEqual({ kind: 'feature', submodule: 'resid_1', index: 8, pos: null, effect: 0.26 });
  });

  it('keeps positions of position-resolved circuits', async () => {
    const c = await readCircuitFile(write('none.json', circuitJson('none')));
    expect(ids(selectCircuitFeatures(c, { topK: 2 }))).toEqual(['resid_1/8@1', 'embed/8@1']);
    expect(selectCircuitFeatures(c, { submodules: ['resid_0'] })[0]!.pos).toBe(5);
  });

  it('bad input is a typed error', async () => {
    await expect(readCircuitFile(join(dir, 'missing.json'))).rejects.toBeInstanceOf(NotFoundError);
    await expect(readCircuitFile(write('bad.json', '{"schema":'))).rejects.toBeInstanceOf(FormatError);
    await expect(readCircuitFile(write('other.json', { ...circuitJson(), schema: 'sfc.effects/v1' }))).rejects.toBeInstanceOf(FormatError);
    const c = await readCircuitFile(write('c2.json', circuitJson()));
    expect(() => selectCircuitFeatures(c, { topK: 0 })).toThrow(InputError);
    expect(() => selectCircuitFeatures(c, { threshold: -1 })).toThrow(InputError);
    expect(() => selectCircuitFeatures(c, { submodules: ['resid_9'] })).toThrow(/no submodule resid_9.*|its submodules/);
    expect(() => selectCircuitFeatures(c, { submodules: ['layer3'] })).toThrow(InputError);
  });

  it('reads other formats only through a reader (the feature-circuits .pt seam)', async () => {
    const pt = write('circuit.pt', 'PK not really a zip');
    await expect(readCircuitFile(pt)).rejects.toMatchObject({ code: 'INPUT', hint: expect.stringContaining('sfc convert FILE.pt') });
    const calls: string[] = [];
    const reader: CircuitReader = {
      name: 'fake-pt', canRead: (p) => p.endsWith('.pt'),
      read: async (p) => { calls.push(p); return circuitJson(); },
    };
    const c: Circuit = await readCircuitFile(pt, [reader]);
    expect(calls).toEqual([pt]);
    expect(ids(selectCircuitFeatures(c, { topK: 1 }))).toEqual(['resid_1/8']);
    const broken: CircuitReader = { ...reader, read: async () => ({ schema: 'sfc.circuit/v1', nodes: 'no' }) };
    await expect(readCircuitFile(pt, [broken])).rejects.toBeInstanceOf(FormatError);
  });
});
