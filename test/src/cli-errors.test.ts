// Bad input to `sfc info` / `sfc forward`, end to end: each case runs the CLI as a subprocess on a
// fixture broken at run time, and checks the exit code (core's EXIT_CODES), the message and
// hint, that no stack trace is shown, and that no output file is left behind.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '@sfc/core';
import { sfc, STACK_LINE } from './cli-run.js';
import { SMALL_A } from './paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'sfc-cli-errors-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const MODEL_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const TEXT = 'The parents that the guards know';

/** A copy of fixtures/small-a (model files only), then `edit` breaks it. */
function brokenModel(name: string, edit: (dir: string) => void): string {
  const dir = join(TMP, name);
  mkdirSync(dir);
  for (const f of MODEL_FILES) copyFileSync(join(SMALL_A, f), join(dir, f));
  edit(dir);
  return dir;
}

/** Rewrites model.safetensors with an edited header (the data area is kept as is). */
function editHeader(dir: string, edit: (header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>) => void): void {
  const path = join(dir, 'model.safetensors');
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  edit(header);
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, bytes.subarray(8 + n)]));
}

function editJson(path: string, edit: (j: Record<string, unknown>) => void): void {
  const j = JSON.parse(readFileSync(path, 'utf8'));
  edit(j);
  writeFileSync(path, JSON.stringify(j));
}

/** Tensor names of the fixture sorted by offset, to pick neighbours. */
function tensorsByOffset(dir: string): string[] {
  const bytes = readFileSync(join(dir, 'model.safetensors'));
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
  return Object.keys(header).filter((k) => k !== '__metadata__').sort((a, b) => header[a].data_offsets[0] - header[b].data_offsets[0]);
}

interface Case {
  readonly name: string;
  readonly args: (model: string, out: string) => string[];
  readonly model?: (name: string) => string;
  readonly code: number;
  readonly message: RegExp;
  readonly hint?: RegExp;
}

const cases: Case[] = [
  { name: 'model folder does not exist', model: () => join(TMP, 'nope'), args: (m) => ['info', '--model', m],
    code: EXIT_CODES.NOT_FOUND, message: /model folder .*nope does not exist/, hint: /--model/ },
  { name: 'no config.json', model: (n) => brokenModel(n, (d) => rmSync(join(d, 'config.json'))), args: (m) => ['info', '--model', m],
    code: EXIT_CODES.NOT_FOUND, message: /no config\.json in/ },
  { name: 'no model.safetensors', model: (n) => brokenModel(n, (d) => rmSync(join(d, 'model.safetensors'))), args: (m) => ['info', '--model', m],
    code: EXIT_CODES.NOT_FOUND, message: /no model\.safetensors in/ },
  { name: 'no tokenizer.json', model: (n) => brokenModel(n, (d) => rmSync(join(d, 'tokenizer.json'))), args: (m) => ['info', '--model', m],
    code: EXIT_CODES.NOT_FOUND, message: /no tokenizer\.json in/ },
  { name: 'config.json is not JSON', model: (n) => brokenModel(n, (d) => writeFileSync(join(d, 'config.json'), '{"model_type": "gpt_neox",')),
    args: (m) => ['info', '--model', m], code: EXIT_CODES.FORMAT, message: /config\.json is not valid JSON/ },
  { name: 'unknown model_type', model: (n) => brokenModel(n, (d) => editJson(join(d, 'config.json'), (j) => { j.model_type = 'falcon'; })),
    args: (m) => ['info', '--model', m], code: EXIT_CODES.CONFIG, message: /unsupported model_type "falcon".*gpt_neox, gpt2, gemma2, gemma3, gemma3_text, llama, mistral, qwen2, qwen3/, hint: /Gemma/ },
  { name: 'config and weights disagree on a shape', model: (n) => brokenModel(n, (d) => editJson(join(d, 'config.json'), (j) => { j.intermediate_size = 96; })),
    args: (m) => ['info', '--model', m], code: EXIT_CODES.SHAPE, message: /has shape \[.*\] but config\.json implies/ },
  { name: 'truncated safetensors', model: (n) => brokenModel(n, (d) => {
    const p = join(d, 'model.safetensors'); const b = readFileSync(p); writeFileSync(p, b.subarray(0, b.length - 1000));
  }), args: (m) => ['info', '--model', m], code: EXIT_CODES.FORMAT, message: /model\.safetensors: .*past the data area/ },
  { name: 'safetensors shorter than its header length', model: (n) => brokenModel(n, (d) => writeFileSync(join(d, 'model.safetensors'), Buffer.from([1, 2, 3]))),
    args: (m) => ['info', '--model', m], code: EXIT_CODES.FORMAT, message: /shorter than the 8-byte header length/ },
  { name: 'safetensors header length too large', model: (n) => brokenModel(n, (d) => {
    const p = join(d, 'model.safetensors'); const b = readFileSync(p); b.writeBigUInt64LE(2n ** 40n, 0); writeFileSync(p, b);
  }), args: (m) => ['info', '--model', m], code: EXIT_CODES.FORMAT, message: /header length \d+ exceeds/ },
  { name: 'safetensors header is not JSON', model: (n) => brokenModel(n, (d) => {
    const p = join(d, 'model.safetensors'); const b = readFileSync(p); b.write('#', 8); writeFileSync(p, b);
  }), args: (m) => ['info', '--model', m], code: EXIT_CODES.FORMAT, message: /header is not valid UTF-8 JSON/ },
  { name: 'overlapping tensor offsets', model: (n) => brokenModel(n, (d) => {
    const [a, b] = tensorsByOffset(d);
    editHeader(d, (h) => { const len = h[b!]!.data_offsets[1] - h[b!]!.data_offsets[0]; h[b!]!.data_offsets = [h[a!]!.data_offsets[0], h[a!]!.data_offsets[0] + len]; });
  }), args: (m) => ['info', '--model', m], code: EXIT_CODES.FORMAT, message: /overlaps|needs \d+ bytes/ },
  { name: 'tensor offsets out of range', model: (n) => brokenModel(n, (d) => {
    const last = tensorsByOffset(d).at(-1)!;
    editHeader(d, (h) => { const [s, e] = h[last]!.data_offsets; h[last]!.data_offsets = [s + 4096, e + 4096]; });
  }), args: (m) => ['info', '--model', m], code: EXIT_CODES.FORMAT, message: /past the data area/ },
  { name: 'dtype size does not match the offsets', model: (n) => brokenModel(n, (d) => {
    const first = tensorsByOffset(d)[0]!;
    editHeader(d, (h) => { h[first]!.dtype = 'F16'; });
  }), args: (m) => ['info', '--model', m], code: EXIT_CODES.FORMAT, message: /\(F16 \[.*\]\) needs \d+ bytes but its offsets span \d+/ },
  { name: 'text with no tokens', args: (m, o) => ['forward', '--model', m, '--text', '   ', '--out', o],
    code: EXIT_CODES.INPUT, message: /has no tokens/ },
  { name: 'unknown words (tokenizer without an unknown token)', model: (n) => brokenModel(n, (d) => {
    editJson(join(d, 'tokenizer.json'), (j) => { delete (j.model as Record<string, unknown>).unk_token; });
    editJson(join(d, 'tokenizer_config.json'), (j) => { delete j.unk_token; });
  }), args: (m, o) => ['forward', '--model', m, '--text', 'The zebras that the guards know', '--out', o],
    code: EXIT_CODES.INPUT, message: /unknown token 'zebras'/ },
  { name: 'unknown words (tokenizer with an unknown token: refused, not run on <|unk|>)',
    args: (m, o) => ['forward', '--model', m, '--text', 'The zebras that the guards know', '--out', o],
    code: EXIT_CODES.INPUT, message: /unknown token 'zebras' in .* \(not in the tokenizer's vocabulary\)/ },
  { name: 'NaN in a weight (refused at load: the outputs would be nulls sfc cannot read back)', model: (n) => brokenModel(n, (d) => {
    const path = join(d, 'model.safetensors');
    const bytes = readFileSync(path);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8'));
    const [begin] = header['gpt_neox.layers.0.mlp.dense_h_to_4h.weight'].data_offsets as [number, number];
    bytes.writeFloatLE(NaN, 8 + headerLen + begin + 4 * 3);
    writeFileSync(path, bytes);
  }), args: (m, o) => ['forward', '--model', m, '--text', TEXT, '--out', o],
    code: EXIT_CODES.FORMAT, message: /tensor 'gpt_neox.layers.0.mlp.dense_h_to_4h.weight' holds 1 non-finite value \(the first, NaN, at flat index 3\)/ },
  { name: 'a negative layer_norm_eps', model: (n) => brokenModel(n, (d) => editJson(join(d, 'config.json'), (j) => { j.layer_norm_eps = -1; })),
    args: (m) => ['info', '--model', m], code: EXIT_CODES.FORMAT, message: /layer norm epsilon is -1; it must be a small positive number/ },
  { name: 'a 613-byte config.json with a billion layers (refused at once)', model: (n) => brokenModel(n, (d) => editJson(join(d, 'config.json'), (j) => { j.num_hidden_layers = 1e9; })),
    args: (m) => ['info', '--model', m], code: EXIT_CODES.FORMAT, message: /number of layers is 1000000000, beyond the supported 1 … 1024/ },
  { name: 'a token id past the model vocabulary (refused at load, not wrapped or embedded out of range)', model: (n) => brokenModel(n, (d) => {
    editJson(join(d, 'tokenizer.json'), (j) => { ((j.model as Record<string, unknown>).vocab as Record<string, number>).guards = 3567587328; });
  }), args: (m, o) => ['forward', '--model', m, '--text', TEXT, '--out', o],
    code: EXIT_CODES.FORMAT, message: /token 'guards' has id 3567587328, not an integer in 0 … 2147483647/ },
  { name: 'an added token id past the model vocabulary', model: (n) => brokenModel(n, (d) => {
    editJson(join(d, 'tokenizer.json'), (j) => { (j.added_tokens as unknown[]).push({ id: 1000, content: '<x>', special: true }); });
  }), args: (m, o) => ['forward', '--model', m, '--text', TEXT, '--out', o],
    code: EXIT_CODES.SHAPE, message: /tokenizer.json has 1001 tokens but the model's vocabulary has 64/ },
  { name: 'data prompts longer than the model context (skipped as too-long, not run)', model: (n) => brokenModel(n, (d) => {
    editJson(join(d, 'config.json'), (j) => { j.max_position_embeddings = 4; });
  }), args: (m, o) => ['attribute', '--model', m, '--dictionaries', join(SMALL_A, 'dictionaries'), '--data', join(SMALL_A, 'data.jsonl'), '--out', o],
    code: EXIT_CODES.INPUT, message: /no usable examples among 40 lines \(skipped: 40 too-long\)/, hint: /at most 4 tokens \(the model's context\)/ },
  { name: 'output folder does not exist', args: (m) => ['forward', '--model', m, '--text', TEXT, '--out', join(TMP, 'no-such-dir', 'out.json')],
    code: EXIT_CODES.NOT_FOUND, message: /cannot write .*folder .* does not exist/ },
  { name: 'unknown flag', args: (m) => ['info', '--model', m, '--modle', 'x'], code: 2, message: /unknown option --modle/, hint: /did you mean --model\? \(`sfc info --help`/ },
  { name: 'missing required flag', args: (m) => ['forward', '--model', m], code: 2, message: /Missing required arguments: text, out/ },
  { name: 'unknown backend package', args: (m) => ['info', '--model', m, '--backend', 'sfc-backend-nonexistent'],
    code: EXIT_CODES.NOT_FOUND, message: /backend 'sfc-backend-nonexistent' is not a built-in backend/, hint: /npm install/ },
];

describe.concurrent('sfc on bad input: typed error, exit code, no stack trace', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const slug = c.name.replace(/\W+/g, '-');
      const model = c.model ? c.model(slug) : SMALL_A;
      const outDir = join(TMP, `out-${slug}`);
      mkdirSync(outDir);
      const out = join(outDir, 'out.json');
      const r = await sfc(c.args(model, out));
      expect(r.code, r.stderr).toBe(c.code);
      const [first, second] = r.stderr.split('\n');
      expect(first).toMatch(/^error: /);
      expect(first).toMatch(c.message);
      if (c.hint) expect(second).toMatch(/^hint: /);
      if (c.hint) expect(second).toMatch(c.hint);
      expect(r.stderr).not.toMatch(STACK_LINE);
      expect(r.stdout).toBe('');
      expect(readdirSync(outDir)).toEqual([]); // nothing written, not even a temp file
    });
  }
});

describe('errors in the config file and backends', () => {
  it('names the key path of an invalid config value', async () => {
    const dir = join(TMP, 'cfg');
    mkdirSync(dir);
    writeFileSync(join(dir, 'sfc.config.json'), JSON.stringify({ model: SMALL_A, circuit: { steps: 'ten' } }));
    const r = await sfc(['info'], { cwd: dir });
    expect(r.code).toBe(EXIT_CODES.CONFIG);
    expect(r.stderr).toContain('circuit.steps: expected integer ≥ 1, got "ten"');
    expect(r.stderr).not.toMatch(STACK_LINE);
  });

  it('refuses onnx with a CapabilityError naming tfjs until the onnx backend exists', async () => {
    const onnx = await import('@sfc/backend-onnx') as Record<string, unknown>;
    const r = await sfc(['info', '--model', SMALL_A, '--backend', 'onnx']);
    if (typeof onnx.onnxBackend === 'function') {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/backend\s+onnx/);
    } else {
      expect(r.code).toBe(EXIT_CODES.CAPABILITY);
      expect(r.stderr).toMatch(/^error: the onnx backend is not available in this build\nhint: .*--backend tfjs/);
    }
  });

  it('runs unknown words as the unknown token with --allow-unknown, and says so', async () => {
    const out = join(TMP, 'allow-unknown.json');
    const r = await sfc(['forward', '--model', SMALL_A, '--text', 'The zebras that the guards know', '--out', out, '--allow-unknown']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: unknown token 'zebras' in .*: encoded as the unknown token/);
    expect(existsSync(out)).toBe(true);
  });

  it('shows the stack trace with --verbose', async () => {
    const r = await sfc(['info', '--model', join(TMP, 'nope'), '--verbose']);
    expect(r.code).toBe(EXIT_CODES.NOT_FOUND);
    expect(r.stderr).toMatch(STACK_LINE);
  });

  it('bin/sfc.js says how to build when dist is missing', async () => {
    // A copy of the shim next to an empty package: it must not crash with a module error.
    const pkg = join(TMP, 'shim');
    mkdirSync(join(pkg, 'bin'), { recursive: true });
    copyFileSync(join(SMALL_A, '..', '..', 'packages', 'cli-tui', 'bin', 'sfc.js'), join(pkg, 'bin', 'sfc.js'));
    writeFileSync(join(pkg, 'package.json'), '{"type":"module"}');
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, [join(pkg, 'bin', 'sfc.js'), '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('sfc is not built: run `npm run build` at the repo root\n');
    expect(existsSync(join(pkg, 'dist'))).toBe(false);
  });
});
