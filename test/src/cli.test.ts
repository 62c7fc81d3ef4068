// `sfc info` and `sfc forward` end to end on fixtures/small-a: the output formats, and the logits
// against the PyTorch reference (ref/model.json) within 1e-4. Also the installed binary
// (node_modules/.bin/sfc → packages/cli-tui/bin/sfc.js → dist), as `npx sfc` runs it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sfc, STACK_LINE } from './cli-run.js';
import { FIXTURES, REPO_ROOT, SMALL_A } from './paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'sfc-cli-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

interface RefModel { clean_ids: number[][]; clean_logits: number[][][] }
const ref = JSON.parse(readFileSync(join(SMALL_A, 'ref', 'model.json'), 'utf8')) as RefModel;
const vocab = (JSON.parse(readFileSync(join(SMALL_A, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
const word = new Map(Object.entries(vocab).map(([w, id]) => [id, w]));
/** The fixture's tokenizer is WordLevel over whitespace: the prompt is its words joined by spaces. */
const textOf = (ids: number[]) => ids.map((i) => word.get(i)!).join(' ');

describe('sfc info', () => {
  it('describes the model: architecture, sizes, submodules with hook names, backend', async () => {
    const r = await sfc(['info', '--model', SMALL_A]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^model\s+.*small-a$/m);
    expect(r.stdout).toMatch(/^architecture\s+gpt_neox \(parallel residual, rotary on 4 of 8 head dims\)$/m);
    expect(r.stdout).toMatch(/^layers\s+2$/m);
    expect(r.stdout).toMatch(/^d_model\s+32 {2}\(4 heads × 8\)$/m);
    expect(r.stdout).toMatch(/^backend\s+tfjs-\w+: /m);
    expect(r.stdout).toMatch(/^ {2}embed\s+32 {2}hook_embed$/m);
    expect(r.stdout).toMatch(/^ {2}resid_1\s+32 {2}blocks\.1\.hook_resid_post$/m);
  });

  it('lists Gemma 2\'s submodules with their widths: attn_l is o_proj\'s input (heads × head_dim), no embed', async () => {
    const r = await sfc(['info', '--model', join(FIXTURES, 'models', 'gemma2-a'), '--backend', 'tfjs-cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^architecture\s+gemma2 \(sequential residual, rotary on 12 of 12 head dims\)$/m);
    expect(r.stdout).toMatch(/^d_model\s+32 {2}\(4 heads × 12, 2 key\/value heads\)$/m);
    expect(r.stdout).toMatch(/^ {2}attn_0\s+48 {2}blocks\.0\.attn\.hook_z$/m);
    expect(r.stdout).toMatch(/^ {2}mlp_2\s+32 {2}blocks\.2\.hook_mlp_out$/m);
    expect(r.stdout).not.toMatch(/^ {2}embed/m);
  });

  it('Gemma gets its embed submodule (embed_tokens\' output) when dictionaries.only or dictionaries.submodules names it; a pattern does not add it', async () => {
    const dir = join(TMP, 'embed-config');
    rmSync(dir, { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir);
    const info = async (dictionaries: object) => {
      writeFileSync(join(dir, 'sfc.config.json'), JSON.stringify({ model: join(FIXTURES, 'models', 'gemma2-a'), backend: 'tfjs-cpu', dictionaries }));
      const r = await sfc(['info'], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    for (const only of [['embed', 'resid_*'], ['hook_embed'], ['model.embed_tokens', 'attn_0']]) {
      expect(await info({ only }), only.join()).toMatch(/^ {2}embed\s+32 {2}hook_embed\n {2}attn_0\s+48 /m);
    }
    expect(await info({ submodules: { embed: join(dir, 'saes', 'embed') } })).toMatch(/^ {2}embed\s+32 {2}hook_embed$/m);
    expect(await info({ only: ['*'] })).not.toMatch(/^ {2}embed/m);
  });

  it('--json gives the same as data, with every submodule in forward order', async () => {
    const r = await sfc(['info', '--model', SMALL_A, '--json', '--backend', 'tfjs-cpu']);
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.schema).toBe('sfc.info/v1');
    expect(info.dims).toMatchObject({ dModel: 32, nLayers: 2, nHeads: 4, headDim: 8, dMlp: 128, vocabSize: 64 });
    expect(info.submodules.map((s: { name: string }) => s.name)).toEqual(['embed', 'attn_0', 'mlp_0', 'resid_0', 'attn_1', 'mlp_1', 'resid_1']);
    expect(info.submodules[2].hook).toBe('blocks.0.hook_mlp_out');
    expect(info.backend.name).toBe('tfjs-cpu');
  });

  it('takes the model and backend from sfc.config.json, and a flag overrides the backend', async () => {
    const dir = join(TMP, 'project');
    rmSync(dir, { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir);
    writeFileSync(join(dir, 'sfc.config.json'), JSON.stringify({ model: SMALL_A, backend: 'tfjs-cpu' }));
    const fromFile = JSON.parse((await sfc(['info', '--json'], { cwd: dir })).stdout);
    expect(fromFile.backend.name).toBe('tfjs-cpu');
    const r = await sfc(['info', '--json', '--backend', 'tfjs-wasm'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).backend.name).toBe('tfjs-wasm');
  });
});

describe('sfc forward', () => {
  // Every backend gives the same logits within tolerance: switching backends changes nothing else.
  for (const [example, backend] of [[0, 'tfjs'], [7, 'tfjs-cpu'], [3, 'onnx']] as const) {
    it(`writes sfc.forward/v1 with logits equal to PyTorch's within 1e-4 (example ${example}, backend ${backend})`, async () => {
      const out = join(TMP, `forward-${example}.json`);
      const r = await sfc(['forward', '--model', SMALL_A, '--text', textOf(ref.clean_ids[example]!), '--backend', backend, '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(STACK_LINE);
      const doc = JSON.parse(readFileSync(out, 'utf8'));
      expect(Object.keys(doc)).toEqual(['schema', 'tokens', 'logits']);
      expect(doc.schema).toBe('sfc.forward/v1');
      expect(doc.tokens).toEqual(ref.clean_ids[example]);
      const want = ref.clean_logits[example]!;
      expect(doc.logits.length).toBe(want.length);
      let maxDiff = 0;
      want.forEach((row, s) => {
        expect(doc.logits[s].length).toBe(row.length);
        row.forEach((v, j) => { maxDiff = Math.max(maxDiff, Math.abs(doc.logits[s][j] - v)); });
      });
      expect(maxDiff).toBeLessThanOrEqual(1e-4);
    });
  }

  it('replaces an existing output atomically and leaves no temp files', async () => {
    const dir = join(TMP, 'atomic');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir);
    const out = join(dir, 'f.json');
    writeFileSync(out, 'old');
    const r = await sfc(['forward', '--model', SMALL_A, '--text', 'The parents', '--out', out, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(JSON.parse(readFileSync(out, 'utf8')).tokens).toEqual([vocab['The'], vocab['parents']]);
    expect(readdirSync(dir)).toEqual(['f.json']);
  });
});

describe('the installed binary', () => {
  it('node_modules/.bin/sfc runs the built CLI (what `npx sfc` runs after npm ci)', () => {
    const bin = join(REPO_ROOT, 'node_modules', '.bin', 'sfc');
    const v = spawnSync(bin, ['--version'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(v.stderr).toBe('');
    expect(v.status).toBe(0);
    expect(v.stdout.trim()).toBe(JSON.parse(readFileSync(join(REPO_ROOT, 'packages', 'cli-tui', 'package.json'), 'utf8')).version);
    const bad = spawnSync(bin, ['info', '--model', join(TMP, 'missing')], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(bad.status).toBe(3);
    expect(bad.stderr).toMatch(/^error: model folder .* does not exist\nhint: /);
  });
});
