import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gemmaScopeHook } from './gemma-scope-site.js';

describe('gemmaScopeHook', () => {
  it.each([
    ['gemma-scope-2b-pt-res/layer_3/width_16k/average_l0_71', 'blocks.3.hook_resid_post'],
    ['gemma-scope-2b-pt-res-canonical/layer_12/width_16k/canonical', 'blocks.12.hook_resid_post'],
    ['gemma-scope-2b-pt-att/layer_0/width_16k/average_l0_50', 'blocks.0.attn.hook_z'],
    ['gemma-scope-2b-pt-mlp/layer_25/width_65k/average_l0_10', 'blocks.25.hook_mlp_out'],
    ['saes/layer_3_att', 'blocks.3.attn.hook_z'],
    ['gemma-scope-2-1b-pt/resid_post/layer_7_width_16k_l0_medium', 'blocks.7.hook_resid_post'],
    ['gemma-scope-2-1b-pt/resid_post_all/layer_7_width_16k_l0_big', 'blocks.7.hook_resid_post'],
    ['gemma-scope-2-1b-pt/mlp_out/layer_2_width_16k_l0_small', 'blocks.2.hook_mlp_out'],
    ['gemma-scope-2-1b-pt/attn_out/layer_2_width_16k_l0_small', 'blocks.2.attn.hook_z'],
    ['gemma-scope-2b-pt-res/embedding/width_4k/average_l0_6', 'hook_embed'],
  ])('%s → %s', (path, hook) => {
    expect(gemmaScopeHook(join('/data', path))).toBe(hook);
  });

  it('says nothing when the path does not name a layer or a site, and ignores far-away parents', () => {
    expect(gemmaScopeHook('/data/saes/layer_3')).toBeUndefined();
    expect(gemmaScopeHook('/data/saes/width_16k/average_l0_71')).toBeUndefined();
    expect(gemmaScopeHook('/home/mlp/a/b/c/d/layer_3/x')).toBeUndefined();
  });
});
