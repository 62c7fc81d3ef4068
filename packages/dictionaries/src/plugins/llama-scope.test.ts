// Llama Scope folders (hyperparams.json + checkpoints/final.safetensors, and lm-saes 2.x config.json +
// sae_weights.safetensors at the end): detection, placement
// on the Llama family by hook_point_in, the memory check's view of checkpoints/, and every kind
// of bad input as a typed error. Numbers against PyTorch: parity.test.ts (test-data/llama-scope).

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CapabilityError, encodeSafetensors, FormatError, listSubmodules, NotFoundError, SafetensorsFile, ShapeError,
} from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { defaultDictionaryPlugins } from '../defaults.js';
import { checkDictionaryMemory, loadDictionarySet } from '../load-set.js';
import { DictionaryRegistry } from '../registry.js';
import { parseLlamaScopeConfig } from './llama-scope-config.js';
import { llamaScope } from './llama-scope.js';

const DATA = fileURLToPath(new URL('../../test-data/llama-scope', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'sfc-llama-scope-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const ops = referenceOps();

/** A copy of a test-data case with its config file (hyperparams.json, or config.json for v2-*) edited. */
function copyCase(name = 'L3R-2x', edit?: (h: Record<string, unknown>) => void): string {
  const dir = join(root, `${n++}`, name);
  cpSync(join(DATA, name), dir, { recursive: true });
  if (edit) {
    const file = join(dir, name.startsWith('v2-') ? 'config.json' : 'hyperparams.json');
    const h = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    edit(h);
    writeFileSync(file, JSON.stringify(h));
  }
  return dir;
}

/** Rewrites the release weights file of `dir` with `change` applied to its tensors. */
function editWeights(dir: string, change: (t: Map<string, { shape: readonly number[]; data: Float32Array }>) => void): void {
  const path = join(dir, 'checkpoints', 'final.safetensors');
  const f = SafetensorsFile.parse(new Uint8Array(readFileSync(path)), path);
  const t = new Map([...f.entries.keys()].map((k) => [k, { shape: f.entries.get(k)!.shape, data: f.getFloat32(k).slice() }]));
  change(t);
  writeFileSync(path, encodeSafetensors(t));
}

const load = (dir: string) => llamaScope().load(dir, { ops, dIn: 8 });
/** Two Llama layers of width 8: embed, attn_l, mlp_l, resid_l with TransformerLens hooks. */
const llama = () => listSubmodules(4, 'llama', { embed: true, dModel: 8 });

describe('Llama Scope detection', () => {
  it('recognises the release layout and names hook_point_in; other plugins do not claim it', async () => {
    const dir = copyCase();
    const hit = await new DictionaryRegistry(defaultDictionaryPlugins()).detect(dir);
    expect(hit.plugin.meta.name).toBe('llama-scope');
    expect(hit.detection.hook).toBe('blocks.3.hook_resid_post');
    expect(hit.detection.reason).toMatch(/Llama Scope \(lm-saes 1.x\) jumprelu SAE, d_model 8, d_sae 16/);
  });

  it('needs both hyperparams.json and a weights file', async () => {
    const dir = copyCase();
    rmSync(join(dir, 'checkpoints'), { recursive: true });
    expect((await llamaScope().detect(dir)).reason).toMatch(/hyperparams.json without sae_weights.safetensors or .*checkpoints\/final.safetensors/);
    rmSync(join(dir, 'hyperparams.json'));
    expect(await llamaScope().detect(dir)).toEqual({ ok: false, reason: 'no hyperparams.json or config.json' });
  });

  it('still claims a folder whose hyperparams it will refuse, so loading says why', async () => {
    const dir = copyCase('L3R-2x', (h) => { h.act_fn = 'softplus'; });
    const d = await llamaScope().detect(dir);
    expect(d.ok).toBe(true);
    expect(d.reason).toMatch(/cannot be loaded: .*unknown act_fn 'softplus'/);
  });
});

describe('Llama Scope on the Llama family', () => {
  it('attaches each SAE to the submodule its hook_point_in names (resid, attn_out, mlp_out), whatever the folder is called', async () => {
    const dir = join(root, `${n++}`);
    for (const c of ['L3R-2x', 'L1A-2x-topk', 'L2M-2x-relu']) cpSync(join(DATA, c), join(dir, `Llama3_1-8B-Base-${c}`), { recursive: true });
    const set = await loadDictionarySet(dir, llama(), { ops, dIn: 8, missing: 'skip' });
    expect([...set.keys()]).toEqual(['attn_1', 'mlp_2', 'resid_3']);
    expect(set.get('attn_1')!.architecture).toBe('topk');
    expect(set.get('resid_3')!.format).toBe('llama-scope');
    for (const d of set.values()) d.dispose();
  });

  it('a hook point that is not on the model is named in the error', async () => {
    const dir = join(root, `${n++}`);
    cpSync(join(DATA, 'L3R-2x'), join(dir, 'L40R-8x'), { recursive: true });
    const h = JSON.parse(readFileSync(join(dir, 'L40R-8x', 'hyperparams.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'L40R-8x', 'hyperparams.json'), JSON.stringify({ ...h, hook_point_in: 'blocks.40.hook_resid_post', hook_point_out: 'blocks.40.hook_resid_post' }));
    const warnings: string[] = [];
    const err = await loadDictionarySet(dir, llama(), { ops, dIn: 8, only: ['resid_3'], warn: (m) => warnings.push(m) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toMatch(/no dictionary for resid_3 .*skipped, their hook is not on this model: .*L40R-8x \(hook 'blocks\.40\.hook_resid_post'\)/);
    expect(warnings.join('\n')).toMatch(/L40R-8x: skipped/);
  });

  it('the memory check counts checkpoints/final.safetensors', () => {
    const dir = copyCase();
    const bytes = checkDictionaryMemory([{ submodule: 'resid_3', dir }], '', 1 << 30);
    expect(bytes).toBeGreaterThan(800); // hyperparams.json alone is under 1 KB; the weights are 888 bytes
    expect(() => checkDictionaryMemory([{ submodule: 'resid_3', dir }], '', 1000)).toThrow(CapabilityError);
  });

  it('a width other than the model\'s is a ShapeError naming the submodule', async () => {
    await expect(llamaScope().load(copyCase(), { ops, dIn: 4096, submodule: 'resid_3' })).rejects.toThrow(/for submodule 'resid_3' .* d_in = 8, but the model's width is 4096/);
  });
});

describe('Llama Scope bad input', () => {
  it('missing keys', async () => {
    await expect(load(copyCase('L3R-2x', (h) => { delete h.d_model; }))).rejects.toThrow(/hyperparams.json: no d_model/);
    await expect(load(copyCase('L3R-2x', (h) => { delete h.hook_point_in; }))).rejects.toThrow(FormatError);
    await expect(load(copyCase('L3R-2x', (h) => { delete h.dataset_average_activation_norm; }))).rejects.toThrow(/dataset-wise" but dataset_average_activation_norm is nothing/);
    await expect(load(copyCase('L3R-2x', (h) => { h.dataset_average_activation_norm = { in: 3 }; }))).rejects.toThrow(/dataset_average_activation_norm.out must be a finite positive number, got nothing/);
  });

  it('non-finite or non-positive norms', async () => {
    // JSON cannot hold NaN; a hand-edited file may say "NaN" or 1e999 (Infinity) or 0.
    for (const bad of ['"NaN"', '1e999', '0', '-3']) {
      const dir = copyCase();
      const path = join(dir, 'hyperparams.json');
      writeFileSync(path, readFileSync(path, 'utf8').replace(/"in": [0-9.]+/, `"in": ${bad}`));
      await expect(load(dir)).rejects.toThrow(/dataset_average_activation_norm.in must be a finite positive number/);
    }
  });

  it('unknown act_fn, negative or non-finite thresholds, top_k past d_sae', async () => {
    await expect(load(copyCase('L3R-2x', (h) => { h.act_fn = 'softplus'; }))).rejects.toThrow(/unknown act_fn 'softplus'/);
    await expect(load(copyCase('L3R-2x', (h) => { h.jump_relu_threshold = -0.5; }))).rejects.toThrow(/jump_relu_threshold -0.5 is negative/);
    await expect(load(copyCase('L3R-2x', (h) => { h.jump_relu_threshold = 'x'; }))).rejects.toThrow(/jump_relu_threshold must be a finite number/);
    await expect(load(copyCase('L3R-2x', (h) => { h.act_fn = 'topk'; h.jump_relu_threshold = 0; h.top_k = 17; }))).rejects.toThrow(/top_k 17 exceeds d_sae 16/);
  });

  it('transcoders, GLU encoders and per-token norms are capabilities sfc lacks', async () => {
    await expect(load(copyCase('L3R-2x', (h) => { h.hook_point_in = 'blocks.3.ln2.hook_normalized'; h.hook_point_out = 'blocks.3.hook_mlp_out'; })))
      .rejects.toThrow(CapabilityError);
    await expect(load(copyCase('L3R-2x', (h) => { h.use_glu_encoder = true; }))).rejects.toThrow(/use_glu_encoder/);
    await expect(load(copyCase('L3R-2x', (h) => { h.norm_activation = 'token-wise'; }))).rejects.toThrow(CapabilityError);
  });

  it('missing tensors and wrong shapes', async () => {
    const a = copyCase();
    editWeights(a, (t) => t.delete('decoder.bias'));
    const err = await load(a).catch((e: unknown) => e) as FormatError;
    expect(err).toBeInstanceOf(FormatError);
    expect(err.message).toMatch(/checkpoints\/final.safetensors: no tensor 'decoder.bias'$/);
    expect(err.hint).toMatch(/tensors present: 'decoder.weight', 'encoder.bias', 'encoder.weight'/);
    const b = copyCase();
    editWeights(b, (t) => t.set('decoder.weight', { shape: [16, 8], data: t.get('decoder.weight')!.data }));
    await expect(load(b)).rejects.toThrow(ShapeError);
    await expect(load(b)).rejects.toThrow(/decoder.weight has shape \[16, 8\], expected \[8, 16\]/);
    const c = copyCase('L3R-2x', (h) => { h.d_sae = 32; });
    await expect(load(c)).rejects.toThrow(/encoder.weight has shape \[16, 8\], expected \[32, 8\]/);
  });

  it('NaN in a weight is refused naming the tensor', async () => {
    const dir = copyCase();
    editWeights(dir, (t) => { t.get('encoder.bias')!.data[2] = Number.NaN; });
    await expect(load(dir)).rejects.toThrow(/tensor 'encoder.bias' holds 1 non-finite value/);
  });

  it('parses lm-saes defaults: d_sae from expansion_factor, hook_point_out = hook_point_in, TopK with a threshold runs as JumpReLU', () => {
    const cfg = parseLlamaScopeConfig({ d_model: 4, expansion_factor: 8, hook_point_in: 'blocks.0.hook_mlp_out', act_fn: 'topk', jump_relu_threshold: 0.25, norm_activation: 'none' });
    expect(cfg).toMatchObject({ dSae: 32, hookOut: 'blocks.0.hook_mlp_out', activation: 'jumprelu', actFn: 'topk', scaleIn: 1, scaleOut: 1, applyDecoderBiasToPreEncoder: true, sparsityIncludeDecoderNorm: true });
    expect(() => parseLlamaScopeConfig([], 'h.json')).toThrow(/h.json: not a JSON object/);
  });
});

/** A copy of an lm-saes 2.x test-data case with config.json edited. */
const copyV2 = (name = 'v2-L3R-jumprelu', edit?: (c: Record<string, unknown>) => void): string => copyCase(name, edit);

/** Rewrites `dir`'s sae_weights.safetensors (as F32) with `change` applied. */
function editV2Weights(dir: string, change: (t: Map<string, { shape: readonly number[]; data: Float32Array }>) => void): void {
  const path = join(dir, 'sae_weights.safetensors');
  const f = SafetensorsFile.parse(new Uint8Array(readFileSync(path)), path);
  const t = new Map([...f.entries.keys()].filter((k) => !k.startsWith('dataset_average_activation_norm.'))
    .map((k) => [k, { shape: f.entries.get(k)!.shape, data: f.getFloat32(k).slice() }]));
  t.set('dataset_average_activation_norm.blocks.3.hook_resid_post', { shape: [], data: new Float32Array([3.25]) });
  change(t);
  writeFileSync(path, encodeSafetensors(t));
}

describe('lm-saes 2.x config.json folders', () => {
  it('are detected by config.json with sae_type and placed by hook_point_in', async () => {
    const hit = await new DictionaryRegistry(defaultDictionaryPlugins()).detect(copyV2());
    expect(hit.plugin.meta.name).toBe('llama-scope');
    expect(hit.detection.hook).toBe('blocks.3.hook_resid_post');
    expect(hit.detection.reason).toMatch(/Llama Scope \(lm-saes 2.x\) jumprelu SAE, d_model 8, d_sae 16/);
    const dir = join(root, `${n++}`);
    for (const c of ['v2-L3R-jumprelu', 'v2-L1A-topk', 'v2-L2M-relu']) cpSync(join(DATA, c), join(dir, `sae-${c}`), { recursive: true });
    const set = await loadDictionarySet(dir, llama(), { ops, dIn: 8, missing: 'skip' });
    expect([...set.keys()]).toEqual(['attn_1', 'mlp_2', 'resid_3']);
    expect(set.get('attn_1')!.details).toMatchObject({ layout: 'lm-saes 2.x config.json', k: 3, sparsityIncludeDecoderNorm: true });
    expect(set.get('resid_3')!.details.datasetScale).toBeCloseTo(Math.sqrt(8) / 3.25, 6);
    for (const d of set.values()) d.dispose();
  });

  it('a config.json without weights, or not from lm-saes, is not claimed', async () => {
    const dir = copyV2();
    rmSync(join(dir, 'sae_weights.safetensors'));
    expect((await llamaScope().detect(dir)).reason).toMatch(/config.json without sae_weights.safetensors or sae_weights.pt/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama' }));
    expect(await llamaScope().detect(dir)).toEqual({ ok: false, reason: 'config.json is not an lm-saes one (no sae_type)' });
  });

  it('crosscoders, CLTs, transcoders, batchtopk, GLU and per-token norms are capabilities sfc lacks', async () => {
    for (const [edit, msg] of [
      [(c: Record<string, unknown>) => { c.sae_type = 'clt'; }, /sae_type 'clt' is a cross-layer transcoder/],
      [(c: Record<string, unknown>) => { c.sae_type = 'crosscoder'; }, /crosscoder/],
      [(c: Record<string, unknown>) => { c.hook_point_out = 'blocks.3.hook_mlp_out'; }, /a transcoder \(reads 'blocks.3.hook_resid_post', writes 'blocks.3.hook_mlp_out'\)/],
      [(c: Record<string, unknown>) => { c.act_fn = 'batchtopk'; }, /batchtopk.*across the whole batch/],
      [(c: Record<string, unknown>) => { c.use_glu_encoder = true; }, /use_glu_encoder/],
      [(c: Record<string, unknown>) => { c.norm_activation = 'token-wise'; }, /token-wise/],
    ] as const) {
      const err = await load(copyV2('v2-L3R-jumprelu', edit)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CapabilityError);
      expect((err as Error).message).toMatch(msg);
    }
  });

  it('bad configs are FormatErrors naming the key', async () => {
    await expect(load(copyV2('v2-L3R-jumprelu', (c) => { c.sae_type = 'mystery'; }))).rejects.toThrow(/unknown sae_type 'mystery'/);
    await expect(load(copyV2('v2-L3R-jumprelu', (c) => { c.expansion_factor = -2; }))).rejects.toThrow(/expansion_factor must be a positive number, got -2/);
    await expect(load(copyV2('v2-L3R-jumprelu', (c) => { delete c.hook_point_out; }))).rejects.toThrow(/no hook_point_out/);
    await expect(load(copyV2('v2-L3R-jumprelu', (c) => { c.act_fn = 'softplus'; }))).rejects.toThrow(/unknown act_fn 'softplus'/);
    await expect(load(copyV2('v2-L1A-topk', (c) => { c.top_k = 17; }))).rejects.toThrow(/top_k 17 exceeds d_sae 16/);
    await expect(load(copyV2('v2-L3R-jumprelu', (c) => { c.norm_activation = 'sometimes'; }))).rejects.toThrow(FormatError);
    await expect(load(copyV2('v2-L3R-jumprelu', (c) => { c.expansion_factor = 4; }))).rejects.toThrow(/W_D has shape \[16, 8\], expected \[32, 8\]/);
  });

  it('the dataset norm must be there, finite and positive, when norm_activation is dataset-wise (and is not read otherwise)', async () => {
    // v2-L2M-relu's unused norm slot holds NaN (lm-saes writes torch.empty there); as "dataset-wise" it is read and refused.
    await expect(load(copyV2('v2-L2M-relu', (c) => { c.norm_activation = 'dataset-wise'; }))).rejects.toThrow(/'dataset_average_activation_norm.blocks.2.hook_mlp_out' is not a finite number/);
    const a = copyV2();
    editV2Weights(a, (t) => t.delete('dataset_average_activation_norm.blocks.3.hook_resid_post'));
    await expect(load(a)).rejects.toThrow(/dataset-wise" but there is no scalar 'dataset_average_activation_norm.blocks.3.hook_resid_post'/);
    const b = copyV2();
    editV2Weights(b, (t) => t.set('dataset_average_activation_norm.blocks.3.hook_resid_post', { shape: [], data: new Float32Array([0]) }));
    await expect(load(b)).rejects.toThrow(/is 0, not a positive average norm/);
  });

  it('weights that disagree with the config: missing, extra (as strict loading) or misshapen tensors', async () => {
    const a = copyV2();
    editV2Weights(a, (t) => t.delete('activation_function.log_jumprelu_threshold'));
    await expect(load(a)).rejects.toThrow(/no tensor 'activation_function.log_jumprelu_threshold'/);
    const b = copyV2('v2-L3R-jumprelu', (c) => { c.act_fn = 'relu'; });
    await expect(load(b)).rejects.toThrow(/tensors the config does not account for: 'activation_function.log_jumprelu_threshold'/);
    const c = copyV2('v2-L3R-jumprelu', (cfg) => { cfg.use_decoder_bias = false; });
    await expect(load(c)).rejects.toThrow(/does not account for: 'b_D'/);
    const d = copyV2();
    editV2Weights(d, (t) => t.set('W_E', { shape: [16, 8], data: t.get('W_E')!.data }));
    await expect(load(d)).rejects.toThrow(/W_E has shape \[16, 8\], expected \[8, 16\]/);
  });

  it('a .pt checkpoint that lm-saes would load first is refused, not skipped', async () => {
    const dir = copyV2();
    writeFileSync(join(dir, 'sae_weights.pt'), 'not read');
    rmSync(join(dir, 'sae_weights.safetensors'));
    cpSync(join(DATA, 'v2-L3R-jumprelu', 'sae_weights.safetensors'), join(dir, 'checkpoints', 'final.safetensors'));
    await expect(load(dir)).rejects.toThrow(/sae_weights.pt: lm-saes loads this torch.save checkpoint first, and sfc reads only safetensors/);
  });

  it('a 2025 development config.json (lm-saes keys, no sae_type) is claimed and refused naming the SAELens conversion', async () => {
    const dir = copyV2('v2-L3R-jumprelu', (c) => { delete c.sae_type; });
    const hit = await new DictionaryRegistry(defaultDictionaryPlugins()).detect(dir);
    expect(hit.plugin.meta.name).toBe('llama-scope');
    const err = await load(dir).catch((e: unknown) => e) as CapabilityError;
    expect(err).toBeInstanceOf(CapabilityError);
    expect(err.message).toMatch(/from a 2025 development version/);
    expect(err.hint).toMatch(/llama_scope_r1_distill/);
  });

  it('weights with 1.x names under a config.json with sae_type are the same development layout', async () => {
    const dir = copyV2();
    editV2Weights(dir, (t) => { t.set('encoder.weight', t.get('W_E')!); t.delete('W_E'); });
    await expect(load(dir)).rejects.toThrow(/2025 development version .*weights named encoder.weight/);
  });
});
