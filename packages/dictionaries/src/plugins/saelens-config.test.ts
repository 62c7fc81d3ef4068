import { describe, expect, it } from 'vitest';
import { FormatError } from '@sfc/core';
import { migrateSaeLensConfig } from './saelens-config.js';

describe('migrateSaeLensConfig', () => {
  it('keeps a 6.x config and reads hook_name from metadata', () => {
    const cfg = migrateSaeLensConfig({
      architecture: 'jumprelu', d_in: 8, d_sae: 16, apply_b_dec_to_input: false, normalize_activations: 'none',
      metadata: { sae_lens_version: '6.5.1', hook_name: 'blocks.3.hook_resid_post', model_name: 'gemma-2-2b' },
    });
    expect(cfg).toMatchObject({ architecture: 'jumprelu', d_in: 8, d_sae: 16, apply_b_dec_to_input: false, migrated: false,
      metadata: { hook_name: 'blocks.3.hook_resid_post', model_name: 'gemma-2-2b' } });
  });

  it('accepts the "meta" block some 6.0 releases wrote', () => {
    const cfg = migrateSaeLensConfig({ architecture: 'standard', d_in: 4, d_sae: 8, meta: { sae_lens_version: '6.0.0-rc.1', hook_name: 'hook_embed' } });
    expect(cfg.migrated).toBe(false);
    expect(cfg.metadata.hook_name).toBe('hook_embed');
  });

  it('migrates the pre-6.0 flat layout', () => {
    const cfg = migrateSaeLensConfig({
      d_in: 512, d_sae: 4096, hook_point: 'blocks.2.hook_resid_pre', hook_point_head_index: null, hook_point_layer: 2,
      activation_fn_str: 'topk', activation_fn_kwargs: { k: 32 }, normalize_activations: true, model_name: 'gpt2',
      sae_lens_training_version: '3.20.0',
    });
    expect(cfg).toMatchObject({
      architecture: 'topk', k: 32, apply_b_dec_to_input: true, normalize_activations: 'expected_average_only_in', migrated: true,
      metadata: { hook_name: 'blocks.2.hook_resid_pre', hook_head_index: null, model_name: 'gpt2' },
    });
  });

  it('maps normalize_activations false/null to none and defaults architecture to standard', () => {
    expect(migrateSaeLensConfig({ d_in: 2, d_sae: 3, normalize_activations: false }).normalize_activations).toBe('none');
    expect(migrateSaeLensConfig({ d_in: 2, d_sae: 3, normalize_activations: null })).toMatchObject({ normalize_activations: 'none', architecture: 'standard' });
  });

  it('takes topk k from activation_fn_kwargs for architecture topk', () => {
    expect(migrateSaeLensConfig({ architecture: 'topk', d_in: 2, d_sae: 3, activation_fn_kwargs: { k: 2 } }).k).toBe(2);
  });

  it('marks hook_z SAEs for reshaping', () => {
    expect(migrateSaeLensConfig({ d_in: 2, d_sae: 3, hook_point: 'blocks.0.attn.hook_z' }).reshape_activations).toBe('hook_z');
  });

  it('rejects configs without dimensions or with an unknown normalisation', () => {
    expect(() => migrateSaeLensConfig({ architecture: 'standard' })).toThrow(FormatError);
    expect(() => migrateSaeLensConfig([])).toThrow(FormatError);
    expect(() => migrateSaeLensConfig({ d_in: 2, d_sae: 3, normalize_activations: 'whiten' })).toThrow(/normalize_activations/);
  });

  it('does not modify its input', () => {
    const raw = { d_in: 2, d_sae: 3, hook_point: 'hook_embed' };
    const copy = structuredClone(raw);
    migrateSaeLensConfig(raw);
    expect(raw).toEqual(copy);
  });
});
