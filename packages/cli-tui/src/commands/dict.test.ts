import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from '../cli.js';
import { memoryIO } from '../io.js';

const FIXTURE = fileURLToPath(new URL('../../../../fixtures/small-a/', import.meta.url));
const BACKEND = fileURLToPath(new URL('../testing/reference-backend.ts', import.meta.url));

async function run(args: string[]) {
  const io = memoryIO();
  const code = await runCli([...args, '--backend', BACKEND], io);
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
