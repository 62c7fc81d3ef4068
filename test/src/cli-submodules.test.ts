// `--submodules` / `dictionaries.only` end to end on fixtures/small-a: SAEs loaded for the selected
// submodules only (names, TransformerLens hooks, `*` patterns), a circuit discovered on them with
// nodes there only and only their SAEs recorded, `sfc evaluate` / `sfc steer` on that circuit, the
// config key doing what the flag does, and the errors: an unknown name (listing the valid ones) and
// a circuit or feature outside the selection. Gemma's optional embed submodule: asked for by
// --submodules, then recorded with the circuit so `sfc evaluate --circuit` loads the model with it.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '@sfc/core';
import { sfc, STACK_LINE } from './cli-run.js';
import { MODELS, REPO_ROOT, SMALL_A } from './paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'sfc-cli-submodules-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const DATA = join(SMALL_A, 'data.jsonl');
const SAES = join(SMALL_A, 'saelens');
const INPUTS = ['--model', SMALL_A, '--dictionaries', SAES, '--data', DATA];
const VALID = 'valid submodules of this model: embed, attn_0, attn_1, mlp_0, mlp_1, resid_0, resid_1';

interface CircuitDoc {
  submodules: string[];
  nodes: { id: string; submodule: string }[];
  edges: { source: string; target: string }[];
  dictionaries: { saes: Record<string, { path: string }> };
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const readJson = (path: string): any => JSON.parse(readFileSync(path, 'utf8'));
const submoduleOf = (id: string) => id.split('/')[0]!;

describe('a circuit on resid_0 and resid_1 only', () => {
  const circuit = join(TMP, 'resid-circuit.json');

  it('discover --submodules (a name and a hook) loads and records only those SAEs; nodes and edges are only there', async () => {
    const r = await sfc(['discover', ...INPUTS, '--num-examples', '16', '--submodules', 'resid_0,blocks.1.hook_resid_post', '--out', circuit]);
    expect(r.code, r.stderr).toBe(0);
    const doc = readJson(circuit) as CircuitDoc;
    expect(doc.submodules).toEqual(['resid_0', 'resid_1']);
    expect(Object.keys(doc.dictionaries.saes)).toEqual(['resid_0', 'resid_1']);
    expect(new Set(doc.nodes.map((n) => n.submodule))).toEqual(new Set(['y', 'resid_0', 'resid_1']));
    expect(doc.edges.length).toBeGreaterThan(0);
    const ends = new Set(doc.edges.flatMap((e) => [submoduleOf(e.source), submoduleOf(e.target)]));
    for (const end of ends) expect(['y', 'resid_0', 'resid_1']).toContain(end);
    expect(r.stderr).toMatch(/edges: .*resid_0 → resid_1/);
  });

  it('evaluate --circuit uses the circuit\'s own two SAEs', async () => {
    const out = join(TMP, 'eval.json');
    const r = await sfc(['evaluate', '--circuit', circuit, '--data', DATA, '--num-examples', '8', '--thresholds', '0.1,100', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const doc = readJson(out);
    expect(doc.rows[0].nodes).toBeGreaterThan(0);
    // Above every effect the circuit is empty: faithfulness 0, completeness 1 by definition.
    expect(doc.rows[1].nodes).toBe(0);
    expect(doc.rows[1].faithfulness).toBeCloseTo(0, 6);
    expect(doc.rows[1].completeness).toBeCloseTo(1, 6);
  });

  it('steer --circuit steers its features (a resid_* selection keeps them all)', async () => {
    const r = await sfc(['steer', '--circuit', circuit, '--top-k', '2', '--op', 'scale', '--value', '0', '--data', DATA, '--num-examples', '4', '--submodules', 'resid_*', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { features: { submodule: string }[]; summary: { prompts: number } };
    expect(rep.features).toHaveLength(2);
    for (const f of rep.features) expect(['resid_0', 'resid_1']).toContain(f.submodule);
    expect(rep.summary.prompts).toBe(4);
  });

  it('a selection the circuit reaches outside of is refused, naming both', async () => {
    const r = await sfc(['evaluate', '--circuit', circuit, '--data', DATA, '--num-examples', '8', '--submodules', 'resid_0']);
    expect(r.code).toBe(EXIT_CODES.CONFIG);
    expect(r.stderr).toMatch(/^error: this command needs the SAEs of resid_1 .* but --submodules selects only resid_0$/m);
    expect(r.stderr).not.toMatch(STACK_LINE);
  });
});

describe('dictionaries.only in sfc.config.json', () => {
  it('does what --submodules does; the selected submodules\' effects are those of a run with every SAE', async () => {
    const dir = join(TMP, 'project');
    mkdirSync(dir);
    writeFileSync(join(dir, 'sfc.config.json'), JSON.stringify({
      model: SMALL_A, data: DATA, dictionaries: { folder: SAES, only: ['resid_*'] }, circuit: { numExamples: 8 },
    }));
    const r = await sfc(['attribute', '--out', 'sub.json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const all = await sfc(['attribute', ...INPUTS, '--num-examples', '8', '--out', join(TMP, 'all.json')]);
    expect(all.code, all.stderr).toBe(0);
    const sub = readJson(join(dir, 'sub.json')), full = readJson(join(TMP, 'all.json'));
    expect(sub.submodules).toEqual(['resid_0', 'resid_1']);
    expect(Object.keys(sub.dictionaries.saes)).toEqual(['resid_0', 'resid_1']);
    expect(full.submodules).toHaveLength(7);
    // IG patches one submodule at a time; the others reconstruct exactly (SAE + error), so which of
    // them have SAEs does not change its effects.
    for (const s of sub.submodules) expect(sub.effects[s]).toEqual(full.effects[s]);

    writeFileSync(join(dir, 'sfc.config.json'), JSON.stringify({ model: SMALL_A, data: DATA, dictionaries: { folder: SAES, only: ['resid_9'] } }));
    const bad = await sfc(['attribute', '--out', 'bad.json'], { cwd: dir });
    expect(bad.code).toBe(EXIT_CODES.NOT_FOUND);
    expect(bad.stderr).toMatch(/^error: unknown submodule 'resid_9' in dictionaries\.only in .*sfc\.config\.json$/m);
    expect(bad.stderr).toContain(VALID);
    expect(existsSync(join(dir, 'bad.json'))).toBe(false);
  });
});

describe('steer --circuit --dry-run without a model', () => {
  it('selects the circuit\'s features in the selected submodules (patterns over its own names)', async () => {
    const fc = join(REPO_ROOT, 'packages', 'dictionaries', 'test-data', 'formats', 'circuits', 'small-a_agreement_n40_aggsum_node0.1.pt');
    const all = await sfc(['steer', '--circuit', fc, '--threshold', '0.1', '--dry-run', '--json'], { cwd: TMP });
    const resid = await sfc(['steer', '--circuit', fc, '--threshold', '0.1', '--submodules', '*_1', '--dry-run', '--json'], { cwd: TMP });
    expect(all.code, all.stderr).toBe(0);
    expect(resid.code, resid.stderr).toBe(0);
    const subsOf = (out: string) => (JSON.parse(out) as { features: { submodule: string }[] }).features.map((f) => f.submodule);
    const want = subsOf(all.stdout).filter((x) => x.endsWith('_1'));
    expect(want.length).toBeGreaterThan(0);
    expect(want.length).toBeLessThan(subsOf(all.stdout).length);
    expect(subsOf(resid.stdout)).toEqual(want);
  });
});

describe('a folder with SAEs for some submodules only', () => {
  it('is refused without --submodules, with the flag to pass; runs with it', async () => {
    const dir = join(TMP, 'resid-only');
    mkdirSync(dir);
    for (const l of [0, 1]) cpSync(join(SAES, `resid_out_layer${l}`), join(dir, `resid_out_layer${l}`), { recursive: true });
    const args = ['attribute', '--model', SMALL_A, '--dictionaries', dir, '--data', DATA, '--num-examples', '4', '--method', 'attrib'];
    const r = await sfc([...args, '--out', join(TMP, 'resid-only.json')]);
    expect(r.code).toBe(EXIT_CODES.NOT_FOUND);
    expect(r.stderr).toMatch(/^error: no dictionary for embed, attn_0, mlp_0, attn_1, mlp_1 in /m);
    expect(r.stderr).toMatch(/^hint: found: resid_0, resid_1; load only those \(sfc: --submodules resid_0,resid_1; /m);
    const ok = await sfc([...args, '--submodules', 'resid_0,resid_1', '--out', join(TMP, 'resid-only.json')]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readJson(join(TMP, 'resid-only.json')).submodules).toEqual(['resid_0', 'resid_1']);
  });
});

describe('--submodules errors', () => {
  const cases: { name: string; args: string[]; code: number; message: RegExp }[] = [
    { name: 'an unknown name lists the valid ones', args: ['attribute', ...INPUTS, '--submodules', 'resid_0,resid_7'], code: EXIT_CODES.NOT_FOUND, message: /^error: unknown submodule 'resid_7' in --submodules$/m },
    { name: 'a pattern matching nothing', args: ['discover', ...INPUTS, '--submodules', 'res_*'], code: EXIT_CODES.NOT_FOUND, message: /^error: the pattern 'res_\*' in --submodules matches no submodule$/m },
    { name: 'features outside the selection', args: ['steer', ...INPUTS.slice(0, 4), '--features', 'attn_0/1', '--submodules', 'resid_*', '--op', 'scale', '--value', '0', '--prompt', 'The author'], code: EXIT_CODES.CONFIG, message: /needs the SAEs of attn_0 .* but --submodules selects only resid_0, resid_1/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const out = join(TMP, 'never.json');
      const r = await sfc([...c.args, ...(c.args[0] === 'steer' ? [] : ['--out', out])]);
      expect(r.code, r.stderr).toBe(c.code);
      expect(r.stderr).toMatch(c.message);
      if (c.code === EXIT_CODES.NOT_FOUND) expect(r.stderr).toContain(`hint: ${VALID}`);
      expect(r.stderr).not.toMatch(STACK_LINE);
      expect(existsSync(out)).toBe(false);
    });
  }
});

describe('Gemma 2 with embed (feature-circuits\' include_embed=True)', () => {
  const dir = join(TMP, 'gemma-embed');
  const circuit = join(dir, 'circuit.json');
  const data = join(dir, 'data.jsonl');

  it('discover --submodules embed,… gives embed nodes and embed → layer-0 edges; evaluate --circuit loads the model with embed again', async () => {
    // The gemma2-a SAEs of the parity references: edges/'s, and edges-embed/'s embed SAE.
    mkdirSync(join(dir, 'saes'), { recursive: true });
    cpSync(join(MODELS, 'gemma2-a', 'edges', 'saes'), join(dir, 'saes'), { recursive: true });
    cpSync(join(MODELS, 'gemma2-a', 'edges-embed', 'saes', 'embed'), join(dir, 'saes', 'embed'), { recursive: true });
    const pairs = readJson(join(MODELS, 'gemma2-a', 'edges', 'data.json'));
    writeFileSync(data, (pairs.clean_text as string[]).map((c, i) => JSON.stringify({
      clean_prefix: c, patch_prefix: pairs.patch_text[i], clean_answer: ` ${pairs.clean_answer_text[i]}`, patch_answer: ` ${pairs.patch_answer_text[i]}`,
    })).join('\n'));
    const model = join(MODELS, 'gemma2-a');
    const r = await sfc(['discover', '--model', model, '--dictionaries', join(dir, 'saes'), '--data', data, '--backend', 'tfjs-wasm',
      '--submodules', 'embed,attn_0,mlp_0,resid_0', '--node-threshold', '0.02', '--edge-threshold', '0.004', '--out', circuit]);
    expect(r.code, r.stderr).toBe(0);
    const doc = readJson(circuit) as CircuitDoc;
    expect(doc.submodules).toEqual(['embed', 'attn_0', 'mlp_0', 'resid_0']);
    expect(Object.keys(doc.dictionaries.saes)).toEqual(['embed', 'attn_0', 'mlp_0', 'resid_0']);
    expect(doc.nodes.some((n) => n.submodule === 'embed')).toBe(true);
    expect(doc.edges.some((e) => submoduleOf(e.source) === 'embed')).toBe(true);
    const out = join(dir, 'eval.json');
    const ev = await sfc(['evaluate', '--circuit', circuit, '--data', data, '--backend', 'tfjs-wasm', '--thresholds', '0.02', '--out', out]);
    expect(ev.code, ev.stderr).toBe(0);
    expect(readJson(out).rows[0].nodes).toBeGreaterThan(0);
  });

  it('without embed asked, Gemma has no embed: the embed SAE in the folder is skipped', async () => {
    const r = await sfc(['discover', '--model', join(MODELS, 'gemma2-a'), '--dictionaries', join(dir, 'saes'), '--data', data, '--backend', 'tfjs-wasm',
      '--submodules', 'resid_*', '--out', join(dir, 'resid.json')]);
    expect(r.code, r.stderr).toBe(0);
    expect((readJson(join(dir, 'resid.json')) as CircuitDoc).submodules).toEqual(['resid_0', 'resid_1', 'resid_2']);
    expect(r.stderr).toMatch(/saes\/embed: skipped \(folder name 'embed' and hook 'hook_embed' match no submodule/);
  });
});
