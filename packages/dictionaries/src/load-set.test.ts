import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, listSubmodules, NotFoundError, ShapeError } from '@sfc/core';
import { referenceOps } from '@sfc/core/testing';
import { loadDictionarySet } from './load-set.js';

const SAELENS = fileURLToPath(new URL('../../../fixtures/small-a/saelens', import.meta.url));
const SUBS = listSubmodules(2, 'gpt_neox');
const ORDER = ['embed', 'attn_0', 'mlp_0', 'resid_0', 'attn_1', 'mlp_1', 'resid_1'];
const FC_DIR: Record<string, string> = {
  embed: 'embed', attn_0: 'attn_out_layer0', mlp_0: 'mlp_out_layer0', resid_0: 'resid_out_layer0',
  attn_1: 'attn_out_layer1', mlp_1: 'mlp_out_layer1', resid_1: 'resid_out_layer1',
};
const TL_HOOK: Record<string, string> = {
  embed: 'hook_embed', attn_0: 'blocks.0.hook_attn_out', mlp_0: 'blocks.0.hook_mlp_out', resid_0: 'blocks.0.hook_resid_post',
  attn_1: 'blocks.1.hook_attn_out', mlp_1: 'blocks.1.hook_mlp_out', resid_1: 'blocks.1.hook_resid_post',
};

/** A fresh folder with the fixture's SAELens SAEs copied to `name(sub)`, optionally re-hooked. */
function layout(name: (sub: string) => string, hook?: (sub: string) => string, subs = ORDER): string {
  const root = mkdtempSync(join(tmpdir(), 'sfc-set-'));
  for (const sub of subs) {
    const dst = join(root, name(sub));
    mkdirSync(dst, { recursive: true });
    cpSync(join(SAELENS, FC_DIR[sub]!), dst, { recursive: true });
    if (hook) {
      const cfg = JSON.parse(readFileSync(join(dst, 'cfg.json'), 'utf8'));
      cfg.metadata.hook_name = hook(sub);
      writeFileSync(join(dst, 'cfg.json'), JSON.stringify(cfg));
    }
  }
  return root;
}

const base = () => ({ ops: referenceOps(), dIn: 32 });

describe('loadDictionarySet', () => {
  it('loads the feature-circuits layout in forward order', async () => {
    const set = await loadDictionarySet(SAELENS, SUBS, base());
    expect([...set.keys()]).toEqual(ORDER);
    expect(set.get('attn_1')!.hook).toBe('gpt_neox.layers.1.attention');
  });

  it('understands sfc names (attn_{l}) and run-id subfolders', async () => {
    const dir = layout((s) => join(s, '10_32768'));
    expect([...(await loadDictionarySet(dir, SUBS, base())).keys()]).toEqual(ORDER);
  });

  it('attaches arbitrarily named SAELens folders by hook_name (TransformerLens names)', async () => {
    const dir = layout((s) => `sae-${s.replace('_', '-')}-v2`, (s) => TL_HOOK[s]!);
    const set = await loadDictionarySet(dir, SUBS, base());
    expect([...set.keys()]).toEqual(ORDER);
    expect(set.get('resid_1')!.hook).toBe('blocks.1.hook_resid_post');
  });

  it('asks for a run id when a folder has several, and uses the one given', async () => {
    const dir = layout((s) => join(FC_DIR[s]!, '10_32768'));
    cpSync(join(SAELENS, 'resid_out_layer0'), join(dir, 'resid_out_layer0', '5_16384'), { recursive: true });
    await expect(loadDictionarySet(dir, SUBS, base())).rejects.toThrow(/several dictionaries \('10_32768', '5_16384'\)/);
    const set = await loadDictionarySet(dir, SUBS, { ...base(), runId: '10_32768' });
    expect(set.size).toBe(7);
  });

  it('refuses a folder whose name and hook disagree, and two folders for one submodule', async () => {
    const clash = layout((s) => FC_DIR[s]!, (s) => (s === 'mlp_0' ? 'blocks.1.hook_mlp_out' : TL_HOOK[s]!));
    await expect(loadDictionarySet(clash, SUBS, base())).rejects.toThrow(ConfigError);
    const dup = layout((s) => FC_DIR[s]!);
    cpSync(join(SAELENS, 'mlp_out_layer0'), join(dup, 'mlp_0'), { recursive: true });
    await expect(loadDictionarySet(dup, SUBS, base())).rejects.toThrow(/two dictionaries for mlp_0/);
  });

  it('checks every dictionary against the model width, naming the submodule', async () => {
    const err = await loadDictionarySet(SAELENS, SUBS, { ...base(), dIn: 64 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShapeError);
    expect((err as Error).message).toMatch(/submodule 'embed'.*d_in = 32.*width is 64/);
  });

  it('reports missing submodules unless told to skip them or use identities', async () => {
    const dir = layout((s) => FC_DIR[s]!, undefined, ['resid_0', 'resid_1']);
    const err = await loadDictionarySet(dir, SUBS, base()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toContain('embed, attn_0, mlp_0, attn_1, mlp_1');
    expect([...(await loadDictionarySet(dir, SUBS, { ...base(), missing: 'skip' })).keys()]).toEqual(['resid_0', 'resid_1']);
    const filled = await loadDictionarySet(dir, SUBS, { ...base(), missing: 'identity' });
    expect([...filled.keys()]).toEqual(ORDER);
    expect(filled.get('mlp_1')!.architecture).toBe('identity');
    expect(filled.get('resid_1')!.architecture).toBe('relu');
  });

  it('loads a subset with `only` (aliases and resid_* patterns accepted)', async () => {
    const set = await loadDictionarySet(SAELENS, SUBS, { ...base(), only: ['blocks.1.hook_resid_post', 'embed'] });
    expect([...set.keys()]).toEqual(['embed', 'resid_1']); // forward order, whatever order `only` names them in
    for (const d of set.values()) d.dispose();
    const resid = await loadDictionarySet(SAELENS, SUBS, { ...base(), only: ['resid_*'] });
    expect([...resid.keys()]).toEqual(SUBS.filter((x) => x.role === 'resid').map((x) => x.name));
    for (const d of resid.values()) d.dispose();
    await expect(loadDictionarySet(SAELENS, SUBS, { ...base(), only: ['resid_9'] })).rejects.toThrow("unknown submodule 'resid_9' in the `only` option");
  });

  it('warns about folders it cannot place and skips them', async () => {
    const dir = layout((s) => FC_DIR[s]!);
    mkdirSync(join(dir, 'notes'));
    cpSync(join(SAELENS, 'embed'), join(dir, 'unplaced'), { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, 'unplaced', 'cfg.json'), 'utf8'));
    cfg.metadata.hook_name = 'blocks.7.hook_resid_post';
    writeFileSync(join(dir, 'unplaced', 'cfg.json'), JSON.stringify(cfg));
    const warnings: string[] = [];
    const set = await loadDictionarySet(dir, SUBS, { ...base(), warn: (m) => warnings.push(m) });
    expect(set.size).toBe(7);
    expect(warnings.some((w) => w.includes('notes') && w.includes('skipped'))).toBe(true);
    expect(warnings.some((w) => w.includes("'blocks.7.hook_resid_post' match no submodule"))).toBe(true);
  });

  it('gives identity dictionaries for every submodule with loader identity', async () => {
    const set = await loadDictionarySet('', SUBS, { ...base(), loader: 'identity' });
    expect([...set.keys()]).toEqual(ORDER);
    expect(set.get('attn_0')).toMatchObject({ architecture: 'identity', dIn: 32, dSae: 32, hook: 'blocks.0.hook_attn_out' });
  });

  it('disposes what it loaded when a later dictionary fails', async () => {
    const dir = layout((s) => FC_DIR[s]!);
    writeFileSync(join(dir, 'resid_out_layer1', 'sae_weights.safetensors'), new Uint8Array(16));
    const ops = referenceOps();
    await expect(loadDictionarySet(dir, SUBS, { ops, dIn: 32 })).rejects.toThrow(/safetensors/);
    expect(ops.numTensors()).toBe(0);
  });

  it('says when the folder does not exist', async () => {
    await expect(loadDictionarySet('/nonexistent/dicts', SUBS, base())).rejects.toThrow(NotFoundError);
  });
});
