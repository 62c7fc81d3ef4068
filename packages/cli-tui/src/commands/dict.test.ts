import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Model } from '@sfc/core';
import { identity } from '@sfc/dictionaries';
import { createBackend } from '../backends.js';
import { runCli } from '../cli.js';
import { memoryIO } from '../io.js';
import { dictionaryFits } from './dict-fit.js';

const FIXTURE = fileURLToPath(new URL('../../../../fixtures/small-a/', import.meta.url));
const BACKEND = fileURLToPath(new URL('../testing/reference-backend.ts', import.meta.url));

async function run(args: string[], backend = BACKEND) {
  const io = memoryIO();
  const code = await runCli([...args, '--backend', backend], io);
  return { code, out: io.out(), err: io.err() };
}

describe('sfc dict info', () => {
  it('describes one SAELens SAE', async () => {
    const r = await run(['dict', 'info', `${FIXTURE}saelens/resid_out_layer0`]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^ {2}\.\s+saelens\/relu {2}d_in 32 {2}d_sae 128 {2}hook gpt_neox\.layers\.0/m);
  });

  it('lists every SAE of a folder of folders, as JSON', async () => {
    const r = await run(['dict', 'info', `${FIXTURE}dictionaries`, '--json']);
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc.schema).toBe('sfc.dict-info/v1');
    expect(doc.dictionaries.map((d: { name: string }) => d.name)).toEqual(
      ['attn_out_layer0', 'attn_out_layer1', 'embed', 'mlp_out_layer0', 'mlp_out_layer1', 'resid_out_layer0', 'resid_out_layer1']);
    for (const d of doc.dictionaries) expect(d.description).toMatchObject({ dIn: 32 });
  });

  it('fails with exit 3 on a missing folder', async () => {
    const r = await run(['dict', 'info', `${FIXTURE}nope`]);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/^error: dictionary folder .*nope does not exist/);
  });
});

// Example 0 of small-a; ref/model.json holds PyTorch's activations, SAE features and error norms for it.
const PROMPT = 'The parents that the guards know';

describe('sfc dict info --text (L0 and FVE)', () => {
  it('matches L0 and FVE computed from the PyTorch reference activations, per SAE', async () => {
    const r = await run(['dict', 'info', `${FIXTURE}saelens`, '--model', FIXTURE, '--text', PROMPT, '--json'], 'tfjs-cpu');
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out);
    const ref = JSON.parse(readFileSync(`${FIXTURE}ref/model.json`, 'utf8')).example0_activations as
      Record<string, { x: number[][]; features: number[][]; error_norm: number[] }>;
    expect(doc.dictionaries.map((d: { submodule: string }) => d.submodule)).toEqual(Object.keys(ref));
    for (const d of doc.dictionaries as { submodule: string; fit: { tokens: number; l0: number; fve: number; mse: number } }[]) {
      const { x, features, error_norm: err } = ref[d.submodule]!;
      const S = x.length, D = x[0]!.length;
      const mean = Array.from({ length: D }, (_, j) => x.reduce((a, row) => a + row[j]!, 0) / S);
      const total = x.reduce((a, row) => a + row.reduce((b, v, j) => b + (v - mean[j]!) ** 2, 0), 0);
      const resid = err.reduce((a, e) => a + e * e, 0);
      expect(d.fit.tokens).toBe(S);
      expect(d.fit.l0, d.submodule).toBeCloseTo(features.length / S, 9);
      expect(d.fit.fve, d.submodule).toBeCloseTo(1 - resid / total, 4);
      expect(d.fit.mse, d.submodule).toBeCloseTo(resid / S, 4);
      expect(d.fit.l0).toBeGreaterThanOrEqual(0);
      expect(d.fit.fve).toBeLessThanOrEqual(1);
    }
  });

  it('prints L0 and FVE in the table, also for a single SAE matched to its submodule by hook', async () => {
    const r = await run(['dict', 'info', `${FIXTURE}saelens/resid_out_layer0`, '--model', FIXTURE, '--text', PROMPT], 'tfjs-cpu');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('over 6 tokens of --text');
    expect(r.out).toMatch(/hook gpt_neox\.layers\.0 .*L0 17\.17 {2}FVE 0\.92\d\d$/m);
  });

  it('needs a model for --text', async () => {
    const r = await run(['dict', 'info', `${FIXTURE}saelens`, '--text', PROMPT]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--text needs a model/);
  });

  it('gives FVE 1 and L0 = active neurons for the identity dictionary', async () => {
    const backend = await createBackend('tfjs-cpu');
    const model = await Model.load(FIXTURE, backend);
    try {
      const dict = await identity().load('', { ops: model.ops, dIn: model.spec.dims.dModel });
      const [fit] = await dictionaryFits(model, [['resid_0', dict]], PROMPT);
      expect(fit!.fve).toBeCloseTo(1, 6);
      expect(fit!.mse).toBeLessThan(1e-10);
      // Residual-stream activations are dense: every one of the 32 neurons is nonzero.
      expect(fit!.l0).toBe(32);
      dict.dispose();
    } finally {
      model.dispose();
      await backend.dispose();
    }
  });
});
