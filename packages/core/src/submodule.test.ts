import { describe, expect, it } from 'vitest';
import { describeSubmodules, listSubmodules, parseSubmoduleName, requireSubmodule, resolveSubmoduleAlias, selectSubmodules } from './submodule.js';
import { NotFoundError } from './errors.js';

describe('submodules', () => {
  const subs = listSubmodules(2, 'gpt_neox');
  it('lists forward order with TransformerLens hooks', () => {
    expect(subs.map((s) => s.name)).toEqual(['embed', 'attn_0', 'mlp_0', 'resid_0', 'attn_1', 'mlp_1', 'resid_1']);
    expect(subs.map((s) => s.hook)).toEqual(['hook_embed', 'blocks.0.hook_attn_out', 'blocks.0.hook_mlp_out', 'blocks.0.hook_resid_post',
      'blocks.1.hook_attn_out', 'blocks.1.hook_mlp_out', 'blocks.1.hook_resid_post']);
    expect(listSubmodules(1, 'gpt2')[0]!.hook).toBe('blocks.0.hook_resid_pre');
  });
  it('resolves aliases', () => {
    const r = (a: string) => resolveSubmoduleAlias(a, subs)?.name;
    expect(r('blocks.1.hook_resid_post')).toBe('resid_1');
    expect(r('blocks.1.hook_resid_pre')).toBe('resid_0');
    expect(r('blocks.0.hook_resid_pre')).toBe('embed');
    expect(r('gpt_neox.layers.1.attention')).toBe('attn_1');
    expect(r('gpt_neox.layers.0.mlp')).toBe('mlp_0');
    expect(r('gpt_neox.layers.0')).toBe('resid_0');
    expect(r('transformer.h.1.attn')).toBe('attn_1');
    expect(r('resid_out_layer1')).toBe('resid_1');
    expect(r('attn_out_layer0')).toBe('attn_0');
    expect(r('embed')).toBe('embed');
    expect(r('resid_7')).toBeUndefined();
    expect(parseSubmoduleName('mlp_12')).toEqual({ role: 'mlp', layer: 12 });
    expect(parseSubmoduleName('mlp12')).toBeUndefined();
  });
  it('names the valid submodules when one is unknown', () => {
    expect(() => requireSubmodule('resid_9', subs)).toThrow(NotFoundError);
    try { requireSubmodule('resid_9', subs); } catch (e) { expect((e as NotFoundError).hint).toContain('resid_1'); }
  });
  it('Gemma: no embed, attn_l is hook_z (its own width), HF paths of o_proj and post_feedforward_layernorm', () => {
    const g = listSubmodules(2, 'gemma2', { embed: false, dModel: 32, attnWidth: 48 });
    expect(g.map((s) => s.name)).toEqual(['attn_0', 'mlp_0', 'resid_0', 'attn_1', 'mlp_1', 'resid_1']);
    expect(g.map((s) => s.width)).toEqual([48, 32, 32, 48, 32, 32]);
    expect(g[0]!.order).toBe(0);
    const r = (a: string) => resolveSubmoduleAlias(a, g)?.name;
    expect(r('blocks.1.attn.hook_z')).toBe('attn_1');
    expect(r('blocks.1.hook_attn_out')).toBeUndefined(); // after o_proj and the post-norm: not attn_l
    expect(r('blocks.1.hook_mlp_out')).toBe('mlp_1');
    expect(r('blocks.0.hook_resid_post')).toBe('resid_0');
    expect(r('blocks.1.hook_resid_pre')).toBe('resid_0');
    expect(r('blocks.0.hook_resid_pre')).toBeUndefined();
    expect(r('model.layers.1.self_attn.o_proj')).toBe('attn_1');
    expect(r('model.layers.1.self_attn')).toBeUndefined();
    expect(r('model.layers.0.post_feedforward_layernorm')).toBe('mlp_0');
    expect(r('model.layers.1')).toBe('resid_1');
    expect(r('attn_out_layer1')).toBe('attn_1');
    expect(r('embed')).toBeUndefined();
    expect(r('gpt_neox.layers.1')).toBeUndefined();
    const g3 = listSubmodules(1, 'gemma3', { embed: false });
    expect(resolveSubmoduleAlias('model.language_model.layers.0.self_attn.o_proj', g3)?.name).toBe('attn_0');
    expect(r('model.layers.1.output')).toBeUndefined(); // Gemma Scope 2's names are Gemma 3's only
  });

  // Where Gemma Scope 2's SAEs read, as their config.json files declare it (`hf_hook_point_in`)
  // and SAELens names it: decoderesearch/SAELens tests/loading/test_pretrained_sae_loaders.py
  // (test_get_gemma_3_config_from_hf, test_infer_gemma_3_raw_cfg_dict) and
  // sae_lens/loading/pretrained_sae_loaders.py (get_gemma_3_config_from_hf). The attention SAEs read
  // o_proj's input (d_in 1024 = 4 heads × 256 on gemma-3-1b), i.e. z, which is sfc's attn_l.
  it('Gemma 3: the sites Gemma Scope 2 declares are attn_l, mlp_l and resid_l', () => {
    const g3 = listSubmodules(18, 'gemma3', { embed: false, dModel: 1152, attnWidth: 1024 });
    const r = (a: string) => resolveSubmoduleAlias(a, g3);
    const sites: [string, string, string][] = [
      // [Gemma Scope 2 hf_hook_point_in, SAELens hook_name, sfc submodule]
      ['model.layers.10.output', 'blocks.10.hook_resid_post', 'resid_10'],
      ['model.layers.11.self_attn.o_proj.input', 'blocks.11.attn.hook_z', 'attn_11'],
      ['model.layers.17.post_feedforward_layernorm.output', 'blocks.17.hook_mlp_out', 'mlp_17'],
    ];
    for (const [hf, tl, name] of sites) {
      expect(r(hf)?.name, hf).toBe(name);
      expect(r(tl)?.name, tl).toBe(name);
      expect(g3.find((s) => s.name === name)!.hook).toBe(tl);
    }
    expect(r('model.language_model.layers.11.self_attn.o_proj.input')?.name).toBe('attn_11');
    expect(r('blocks.11.attn.hook_z')!.width).toBe(1024);
    // Transcoders read the MLP's input (pre_feedforward_layernorm output): no submodule of sfc's.
    expect(r('model.layers.5.pre_feedforward_layernorm.output')).toBeUndefined();
    // Older SAELens versions named the attention SAEs blocks.{l}.hook_attn_out; on Gemma that is after o_proj.
    expect(r('blocks.11.hook_attn_out')).toBeUndefined();
  });

  it('Llama family: TransformerLens placement and model.layers paths', () => {
    const l = listSubmodules(2, 'qwen3', { embed: true, dModel: 32 });
    expect(l.map((s) => s.hook).slice(0, 4)).toEqual(['hook_embed', 'blocks.0.hook_attn_out', 'blocks.0.hook_mlp_out', 'blocks.0.hook_resid_post']);
    const r = (a: string) => resolveSubmoduleAlias(a, l)?.name;
    expect(r('model.embed_tokens')).toBe('embed');
    expect(r('model.layers.1.self_attn')).toBe('attn_1');
    expect(r('model.layers.1.mlp')).toBe('mlp_1');
    expect(r('model.layers.0')).toBe('resid_0');
    expect(r('blocks.0.hook_resid_pre')).toBe('embed');
    expect(l.every((s) => s.width === 32)).toBe(true);
  });
});


describe('selectSubmodules', () => {
  const subs = listSubmodules(4, 'gpt_neox');
  const names = (list: string[]) => selectSubmodules(list, subs, '--submodules').map((s) => s.name);
  it('takes names, aliases and * patterns, in forward order, each once', () => {
    expect(names(['resid_2', 'embed', 'blocks.0.hook_resid_post'])).toEqual(['embed', 'resid_0', 'resid_2']);
    expect(names(['resid_*'])).toEqual(['resid_0', 'resid_1', 'resid_2', 'resid_3']);
    expect(names(['*_3', 'resid_3'])).toEqual(['attn_3', 'mlp_3', 'resid_3']);
    expect(names(['*'])).toEqual(subs.map((s) => s.name));
  });
  it('an unknown name or a pattern matching nothing lists the valid names', () => {
    expect(() => names(['resid_9'])).toThrow(NotFoundError);
    expect(() => names(['resid_9'])).toThrow("unknown submodule 'resid_9' in --submodules");
    try { names(['resid_9']); } catch (e) {
      expect((e as NotFoundError).hint).toContain('embed, attn_0…attn_3, mlp_0…mlp_3, resid_0…resid_3');
    }
    expect(() => names(['res_*'])).toThrow("the pattern 'res_*' in --submodules matches no submodule");
    expect(() => names(['resid_.'])).toThrow(NotFoundError);
  });
  it('describes short runs name by name', () => {
    expect(describeSubmodules(subs.filter((s) => s.name === 'resid_0' || s.name === 'resid_1' || s.name === 'mlp_3'))).toBe('resid_0, resid_1, mlp_3');
  });
});
