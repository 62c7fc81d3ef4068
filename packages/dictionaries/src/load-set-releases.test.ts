// Today's SAE releases in a dictionaries folder: Gemma Scope release layouts (nested run folders,
// the site in the folder names), SAELens hook_z SAEs under any folder name, jumprelu/topk SAEs on
// the Llama family, per-submodule widths (also of identity dictionaries), the memory check.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CapabilityError, encodeSafetensors, listSubmodules, SafetensorsFile, ShapeError, type Submodule } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { checkDictionaryMemory, loadDictionarySet } from './load-set.js';

const ARCHS = fileURLToPath(new URL('../test-data/archs', import.meta.url));

/** Two layers of a Gemma-like model: attn_l is z (width 8 here), no embed submodule. */
function gemmaSubmodules(width?: { attn: number; d: number }): Submodule[] {
  const out: Submodule[] = [];
  for (let l = 0; l < 2; l++) {
    for (const [role, hook] of [['attn', `blocks.${l}.attn.hook_z`], ['mlp', `blocks.${l}.hook_mlp_out`], ['resid', `blocks.${l}.hook_resid_post`]] as const) {
      out.push({ name: `${role}_${l}`, role, layer: l, hook, order: out.length, aliases: [], ...(width ? { width: role === 'attn' ? width.attn : width.d } : {}) } as Submodule);
    }
  }
  return out;
}

function gemmaScopeRelease(sites: readonly string[], runs: readonly string[] = ['width_16k/average_l0_71']): string {
  const root = mkdtempSync(join(tmpdir(), 'sfc-gs-'));
  for (const site of sites) {
    for (let l = 0; l < 2; l++) {
      for (const run of runs) {
        const dir = join(root, `gemma-scope-2b-pt-${site}`, `layer_${l}`, run);
        mkdirSync(dir, { recursive: true });
        cpSync(join(ARCHS, 'gemma_scope', 'params.npz'), join(dir, 'params.npz'));
      }
    }
  }
  return root;
}

const ops = referenceOps();

describe('loadDictionarySet on Gemma Scope releases', () => {
  it('places layer_{l}/width_16k/average_l0_N by the release name (res → resid_l, att → attn_l = hook_z, mlp → mlp_l)', async () => {
    const root = gemmaScopeRelease(['res', 'att', 'mlp']);
    const res = await loadDictionarySet(join(root, 'gemma-scope-2b-pt-res'), gemmaSubmodules(), { ops, dIn: 8, missing: 'skip' });
    expect([...res.keys()]).toEqual(['resid_0', 'resid_1']);
    expect(res.get('resid_1')!.hook).toBe('blocks.1.hook_resid_post');
    const att = await loadDictionarySet(join(root, 'gemma-scope-2b-pt-att'), gemmaSubmodules(), { ops, dIn: 8, missing: 'skip' });
    expect([...att.keys()]).toEqual(['attn_0', 'attn_1']);
    expect(att.get('attn_0')!.hook).toBe('blocks.0.attn.hook_z');
    const mlp = await loadDictionarySet(join(root, 'gemma-scope-2b-pt-mlp'), gemmaSubmodules(), { ops, dIn: 8, missing: 'skip' });
    expect([...mlp.keys()]).toEqual(['mlp_0', 'mlp_1']);
  });

  it('the res release\'s embedding/width_4k/average_l0_N (hook_embed) loads onto embed when the model has one (Gemma with embed asked), else is skipped', async () => {
    const root = gemmaScopeRelease(['res']);
    const dir = join(root, 'gemma-scope-2b-pt-res', 'embedding', 'width_4k', 'average_l0_6');
    mkdirSync(dir, { recursive: true });
    cpSync(join(ARCHS, 'gemma_scope', 'params.npz'), join(dir, 'params.npz'));
    const withEmbed = listSubmodules(2, 'gemma2', { embed: true, dModel: 8, attnWidth: 8 });
    const set = await loadDictionarySet(join(root, 'gemma-scope-2b-pt-res'), withEmbed, { ops, dIn: 8, missing: 'skip' });
    expect([...set].map(([k, d]) => `${k}:${d.hook}:${d.architecture}`)).toEqual(['embed:hook_embed:jumprelu', 'resid_0:blocks.0.hook_resid_post:jumprelu', 'resid_1:blocks.1.hook_resid_post:jumprelu']);
    expect(set.get('embed')!.source).toMatch(/embedding\/width_4k\/average_l0_6\/params.npz$/);
    const warnings: string[] = [];
    const without = await loadDictionarySet(join(root, 'gemma-scope-2b-pt-res'), gemmaSubmodules(), { ops, dIn: 8, missing: 'skip', warn: (m) => warnings.push(m) });
    expect([...without.keys()]).toEqual(['resid_0', 'resid_1']);
    expect(warnings.join('\n')).toMatch(/embedding: skipped .*hook 'hook_embed'.*; this model has an embed submodule only when asked for: sfc --submodules embed/);
  });

  it('a folder holding several releases (res, att, mlp side by side) loads every site at once', async () => {
    const root = gemmaScopeRelease(['res', 'att', 'mlp'], ['width_16k/average_l0_71', 'width_16k/average_l0_140']);
    await expect(loadDictionarySet(root, gemmaSubmodules(), { ops, dIn: 8 })).rejects.toThrow(/several dictionaries \('layer_0\/width_16k\/average_l0_140', 'layer_0\/width_16k\/average_l0_71'\)/);
    const set = await loadDictionarySet(root, gemmaSubmodules(), { ops, dIn: 8, runId: 'average_l0_71' });
    expect([...set.keys()]).toEqual(['attn_0', 'mlp_0', 'resid_0', 'attn_1', 'mlp_1', 'resid_1']);
    expect(set.get('attn_1')!.source).toMatch(/gemma-scope-2b-pt-att\/layer_1\/width_16k\/average_l0_71\/params.npz$/);
  });

  it('asks which run when a layer has several L0s, and takes the last path parts as the run id', async () => {
    const root = join(gemmaScopeRelease(['res'], ['width_16k/average_l0_71', 'width_16k/average_l0_140']), 'gemma-scope-2b-pt-res');
    await expect(loadDictionarySet(root, gemmaSubmodules(), { ops, dIn: 8, missing: 'skip' }))
      .rejects.toThrow(/several dictionaries \('width_16k\/average_l0_140', 'width_16k\/average_l0_71'\)/);
    for (const runId of ['average_l0_71', 'width_16k/average_l0_71']) {
      const set = await loadDictionarySet(root, gemmaSubmodules(), { ops, dIn: 8, missing: 'skip', runId });
      expect(set.get('resid_0')!.source).toMatch(/layer_0\/width_16k\/average_l0_71\/params.npz$/);
    }
  });

  it('checks each SAE against its submodule\'s own width (attn_l = heads × head_dim ≠ d_model)', async () => {
    const root = gemmaScopeRelease(['att', 'res']);
    const subs = gemmaSubmodules({ attn: 8, d: 12 });
    const att = await loadDictionarySet(join(root, 'gemma-scope-2b-pt-att'), subs, { ops, dIn: 12, missing: 'skip' });
    expect(att.get('attn_1')!.dIn).toBe(8);
    const err = await loadDictionarySet(join(root, 'gemma-scope-2b-pt-res'), subs, { ops, dIn: 12, missing: 'skip' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShapeError);
    expect((err as Error).message).toMatch(/submodule 'resid_0'.*d_in = 8.*width is 12/);
    // identity dictionaries (the reference's --use_neurons) take each submodule's width too
    const ids = await loadDictionarySet('', subs, { ops, dIn: 12, loader: 'identity' });
    expect([...ids.values()].map((d) => d.dIn)).toEqual([8, 12, 12, 8, 12, 12]);
  });

  it('refuses, before reading any, SAEs that need more memory than is free, naming the bytes', async () => {
    const root = join(gemmaScopeRelease(['res']), 'gemma-scope-2b-pt-res');
    const fresh = referenceOps();
    const err = await loadDictionarySet(root, gemmaSubmodules(), { ops: fresh, dIn: 8, missing: 'skip', memoryBudget: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CapabilityError);
    expect((err as Error).message).toMatch(/^loading 2 dictionaries from .* needs [\d.]+ MiB \(\d+ bytes\) but only 0\.0 MiB is available \(largest: resid_0/);
    // The hint names the CLI flag to pass instead (docs/gemma-2-2b.md, only some SAEs).
    expect((err as CapabilityError).hint).toMatch(/fewer submodules: on the command line --submodules \(e\.g\. --submodules resid_\* /);
    expect(fresh.numTensors()).toBe(0);
    // What the hint says to do: one SAE fits a budget the two do not.
    const oneSae = statSync(join(ARCHS, 'gemma_scope', 'params.npz')).size;
    await expect(loadDictionarySet(root, gemmaSubmodules(), { ops: fresh, dIn: 8, only: ['resid_*'], memoryBudget: oneSae })).rejects.toThrow(/^loading 2 dictionaries/);
    const one = await loadDictionarySet(root, gemmaSubmodules(), { ops: fresh, dIn: 8, only: ['resid_1'], memoryBudget: oneSae });
    expect([...one.keys()]).toEqual(['resid_1']);
    for (const d of one.values()) d.dispose();
    // SAEs named one by one (a circuit's record) are checked the same way.
    const named = [{ submodule: 'resid_1', dir: join(root, 'layer_1', 'width_16k', 'average_l0_71') }];
    expect(checkDictionaryMemory(named, 'named by circuit c.json', oneSae)).toBe(oneSae);
    expect(() => checkDictionaryMemory(named, 'named by circuit c.json', oneSae - 1))
      .toThrow(/^loading 1 dictionary named by circuit c\.json needs [\d.]+ MiB \(\d+ bytes\) but only/);
    expect(checkDictionaryMemory([{ submodule: 'resid_0', dir: join(root, 'nowhere') }], '', 0)).toBe(0); // loading reports a missing folder
  });
});

describe('SAELens hook_z SAEs', () => {
  /** The saelens_jumprelu fixture (d_in 8) re-hooked on attn z, with its weights saved per head (2 heads × 4). */
  function hookZFolder(perHead: boolean): string {
    const root = mkdtempSync(join(tmpdir(), 'sfc-hz-'));
    const dir = join(root, 'layer_1_att');
    mkdirSync(dir);
    const src = join(ARCHS, 'saelens_jumprelu');
    const cfg = JSON.parse(readFileSync(join(src, 'cfg.json'), 'utf8'));
    cfg.metadata.hook_name = 'blocks.1.attn.hook_z';
    delete cfg.reshape_activations;
    writeFileSync(join(dir, 'cfg.json'), JSON.stringify(cfg));
    const file = SafetensorsFile.parse(readFileSync(join(src, 'sae_weights.safetensors')));
    const shapes: Record<string, number[]> = perHead ? { W_enc: [2, 4, 16], W_dec: [16, 2, 4], b_dec: [2, 4] } : {};
    const tensors = new Map([...file.entries.keys()].map((n) => [n, { shape: shapes[n] ?? file.entries.get(n)!.shape, data: file.getFloat32(n) }]));
    writeFileSync(join(dir, 'sae_weights.safetensors'), encodeSafetensors(tensors));
    return root;
  }

  it('a folder named layer_1_att attaches through its hook_name, and per-head weights are the flat SAE', async () => {
    const flat = (await loadDictionarySet(hookZFolder(false), gemmaSubmodules(), { ops, dIn: 8, missing: 'skip' })).get('attn_1')!;
    const heads = (await loadDictionarySet(hookZFolder(true), gemmaSubmodules(), { ops, dIn: 8, missing: 'skip' })).get('attn_1')!;
    expect(heads.hook).toBe('blocks.1.attn.hook_z');
    const x = ops.tensor(Float32Array.from({ length: 24 }, (_, i) => Math.sin(i) * 2), [3, 8]);
    expect(await heads.encode(x).data()).toEqual(await flat.encode(x).data());
    expect(await heads.decoderRows().data()).toEqual(await flat.decoderRows().data());
  });
});

describe('SAELens jumprelu and topk SAEs on the Llama family', () => {
  it('attach by hook_name whatever the folder is called (Llama Scope release names), on llama and qwen2', async () => {
    for (const arch of ['llama', 'qwen2'] as const) {
      const root = mkdtempSync(join(tmpdir(), 'sfc-llama-'));
      const put = (folder: string, fixture: string, hook: string) => {
        const dir = join(root, folder);
        cpSync(join(ARCHS, fixture), dir, { recursive: true });
        const cfg = JSON.parse(readFileSync(join(dir, 'cfg.json'), 'utf8'));
        cfg.metadata.hook_name = hook;
        writeFileSync(join(dir, 'cfg.json'), JSON.stringify(cfg));
      };
      put('Llama3_1-8B-Base-L1R-8x', 'saelens_jumprelu', 'blocks.1.hook_resid_post');
      put('Llama3_1-8B-Base-L0M-8x', 'saelens_topk', 'blocks.0.hook_mlp_out');
      put('L0A', 'saelens_jumprelu', 'blocks.0.hook_attn_out');
      const subs = listSubmodules(2, arch, { embed: true, dModel: 8 });
      const set = await loadDictionarySet(root, subs, { ops, dIn: 8, missing: 'skip' });
      expect([...set.keys()], arch).toEqual(['attn_0', 'mlp_0', 'resid_1']);
      expect(set.get('mlp_0')!.architecture).toBe('topk');
      expect(set.get('resid_1')!.architecture).toBe('jumprelu');
    }
  });

  it('identity dictionaries (--use_neurons) on every architecture take each submodule\'s width', async () => {
    for (const arch of ['gpt_neox', 'gpt2', 'gemma2', 'gemma3', 'llama', 'mistral', 'qwen2', 'qwen3'] as const) {
      const gemma = arch.startsWith('gemma');
      const subs = listSubmodules(1, arch, { embed: !gemma, dModel: 12, attnWidth: gemma ? 16 : 12 });
      const set = await loadDictionarySet('', subs, { ops, dIn: 12, loader: 'identity' });
      expect([...set].map(([k, d]) => `${k}:${d.dIn}:${d.hook}`), arch).toEqual(subs.map((s) => `${s.name}:${s.width}:${s.hook}`));
      for (const d of set.values()) d.dispose();
    }
  });
});

describe('Gemma Scope 2 folders with config.json', () => {
  /**
   * A Gemma Scope 2 release folder (google/gemma-scope-2-*): `{site}/layer_{l}_width_16k_l0_medium/`
   * with params.safetensors and a config.json declaring hf_hook_point_in, as the release's files do
   * (keys as SAELens reads them: get_gemma_3_config_from_hf). The folder names say nothing here
   * (`sites/…`): the config decides.
   */
  function release(entries: readonly [string, string, string?][]): string {
    const root = mkdtempSync(join(tmpdir(), 'sfc-gs2-'));
    const npz = SafetensorsFile.parse(readFileSync(join(ARCHS, 'saelens_jumprelu', 'sae_weights.safetensors')));
    const tensors = new Map(['W_enc', 'W_dec', 'b_enc', 'b_dec', 'threshold'].map((n) => [n.replace('W_', 'w_'), { shape: npz.entries.get(n)!.shape, data: npz.getFloat32(n) }]));
    for (const [folder, hookIn, hookOut] of entries) {
      const dir = join(root, 'sites', folder);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'params.safetensors'), encodeSafetensors(tensors));
      writeFileSync(join(dir, 'config.json'), JSON.stringify({
        hf_hook_point_in: hookIn, ...(hookOut ? { hf_hook_point_out: hookOut } : {}), width: 16, model_name: 'gemma-v3-1b-pt', architecture: 'jump_relu', l0: 5,
      }));
    }
    return join(root, 'sites');
  }
  const gemma3 = () => listSubmodules(2, 'gemma3', { embed: false, dModel: 8, attnWidth: 8 });

  it('places each SAE where its hf_hook_point_in says: o_proj input → attn_l, post_feedforward_layernorm output → mlp_l, layer output → resid_l', async () => {
    const dir = release([
      ['a', 'model.layers.1.self_attn.o_proj.input'], ['b', 'model.layers.0.post_feedforward_layernorm.output'], ['c', 'model.layers.1.output'],
    ]);
    const set = await loadDictionarySet(dir, gemma3(), { ops, dIn: 8, missing: 'skip' });
    expect([...set].map(([k, d]) => `${k}:${d.hook}`)).toEqual([
      'mlp_0:model.layers.0.post_feedforward_layernorm.output', 'attn_1:model.layers.1.self_attn.o_proj.input', 'resid_1:model.layers.1.output',
    ]);
    for (const d of set.values()) d.dispose();
  });

  it('refuses transcoders (hf_hook_point_out differs) and, on Gemma 2, names the hooks that are not on the model', async () => {
    const tc = release([['t', 'model.layers.0.pre_feedforward_layernorm.output', 'model.layers.0.post_feedforward_layernorm.output']]);
    await expect(loadDictionarySet(tc, gemma3(), { ops, dIn: 8, missing: 'skip' })).resolves.toEqual(new Map()); // its input is no submodule: skipped
    const named = join(tc, '..', 'mlp_0');
    cpSync(join(tc, 't'), named, { recursive: true });
    await expect(loadDictionarySet(join(tc, '..'), gemma3(), { ops, dIn: 8, only: ['mlp_0'] })).rejects.toThrow(CapabilityError);
    const g2 = listSubmodules(2, 'gemma2', { embed: false, dModel: 8, attnWidth: 8 });
    const res = release([['c', 'model.layers.1.output']]);
    await expect(loadDictionarySet(res, g2, { ops, dIn: 8, only: ['resid_1'] })).rejects.toThrow(/skipped, their hook is not on this model: .*c \(hook 'model\.layers\.1\.output'\)/);
  });
});
