// SAELens `cfg.json`: one pure migration from any layout SAELens has written (the flat
// pre-6.0 layout and 6.x with a `metadata` block) to one normalised shape, mirroring SAELens'
// own `handle_config_defaulting` / `handle_pre_6_0_config`.

import { FormatError, showValue } from '@sfc/core';

export type SaeLensNormalization = 'none' | 'expected_average_only_in' | 'constant_norm_rescale' | 'layer_norm';

export interface SaeLensConfig {
  readonly architecture: string;
  readonly d_in: number;
  readonly d_sae: number;
  readonly dtype: string;
  readonly apply_b_dec_to_input: boolean;
  readonly normalize_activations: SaeLensNormalization;
  readonly reshape_activations: 'none' | 'hook_z';
  /** topk / batchtopk: features kept per row (batchtopk: on average). */
  readonly k?: number;
  readonly rescale_acts_by_decoder_norm: boolean;
  readonly finetuning_scaling_factor: boolean;
  /** Matryoshka level widths, when given. */
  readonly matryoshka_widths?: readonly number[];
  readonly metadata: {
    readonly hook_name?: string;
    readonly model_name?: string;
    readonly hook_head_index?: number | null;
    readonly sae_lens_version?: string;
    readonly neuronpedia_id?: string | null;
    readonly [key: string]: unknown;
  };
  /** True when the input was in the pre-6.0 flat layout. */
  readonly migrated: boolean;
}

const NORMALIZATIONS: readonly SaeLensNormalization[] = ['none', 'expected_average_only_in', 'constant_norm_rescale', 'layer_norm'];
const METADATA_KEYS = ['model_name', 'hook_name', 'model_class_name', 'hook_layer', 'hook_head_index', 'model_from_pretrained_kwargs',
  'prepend_bos', 'exclude_special_tokens', 'neuronpedia_id', 'context_size', 'seqpos_slice', 'dataset_path',
  'sae_lens_version', 'sae_lens_training_version'];

function isV6(cfg: Record<string, unknown>): boolean {
  const meta = (cfg.metadata ?? cfg.meta) as Record<string, unknown> | undefined;
  const version = cfg.sae_lens_version ?? meta?.sae_lens_version;
  if (typeof version !== 'string') return false;
  const major = Number(/^(\d+)/.exec(version)?.[1]);
  return Number.isFinite(major) && major >= 6;
}

/**
 * Normalises any SAELens cfg.json object. Old keys are renamed (`hook_point` → `hook_name`,
 * `hook_point_head_index` → `hook_head_index`, `activation_fn_str` → `activation_fn`), a boolean
 * `normalize_activations` becomes `expected_average_only_in`/`none`, and pre-6.0 TopK SAEs
 * (architecture `standard` with activation_fn `topk`, or `topk` without `k`) take k from
 * `activation_fn_kwargs.k`. Throws FormatError when d_in/d_sae are missing.
 */
export function migrateSaeLensConfig(raw: unknown, source = 'cfg.json'): SaeLensConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new FormatError(`${source}: not a JSON object`, 'a SAELens cfg.json is a JSON object with d_in, d_sae and architecture');
  const input = raw as Record<string, unknown>;
  const migrated = !isV6(input);
  const renames: Record<string, string> = migrated
    ? { hook_point: 'hook_name', hook_point_head_index: 'hook_head_index', activation_fn_str: 'activation_fn' }
    : {};
  const cfg: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) cfg[renames[k] ?? k] = v;

  const metaIn = { ...((input.meta ?? {}) as Record<string, unknown>), ...((input.metadata ?? {}) as Record<string, unknown>) };
  const metadata: Record<string, unknown> = {};
  for (const key of METADATA_KEYS) {
    if (cfg[key] !== undefined) metadata[key] = cfg[key];
    if (metaIn[key] !== undefined) metadata[key] = metaIn[key];
  }
  if (migrated && typeof metaIn.hook_point === 'string' && metadata.hook_name === undefined) metadata.hook_name = metaIn.hook_point;

  const dIn = cfg.d_in, dSae = cfg.d_sae;
  if (!Number.isSafeInteger(dIn) || (dIn as number) < 1 || !Number.isSafeInteger(dSae) || (dSae as number) < 1) {
    throw new FormatError(`${source}: d_in and d_sae must be positive integers (got ${showValue(dIn)}, ${showValue(dSae)})`,
      'check that this is a SAELens cfg.json');
  }

  let norm = cfg.normalize_activations;
  if (typeof norm === 'boolean') norm = norm ? 'expected_average_only_in' : 'none';
  if (norm === null || norm === undefined) norm = 'none';
  if (!NORMALIZATIONS.includes(norm as SaeLensNormalization)) {
    throw new FormatError(`${source}: normalize_activations ${showValue(norm)} is not one of ${NORMALIZATIONS.join(', ')}`);
  }

  let architecture = typeof cfg.architecture === 'string' ? cfg.architecture : 'standard';
  const activationFn = typeof cfg.activation_fn === 'string' ? cfg.activation_fn : 'relu';
  const fnKwargs = (cfg.activation_fn_kwargs ?? {}) as Record<string, unknown>;
  let k = typeof cfg.k === 'number' ? cfg.k : undefined;
  if (migrated && architecture === 'standard' && activationFn === 'topk') architecture = 'topk';
  if (k === undefined && (architecture === 'topk' || architecture === 'batchtopk') && typeof fnKwargs.k === 'number') k = fnKwargs.k;

  const reshape = cfg.reshape_activations ?? (typeof metadata.hook_name === 'string' && metadata.hook_name.endsWith('hook_z') ? 'hook_z' : 'none');
  const out: SaeLensConfig = {
    architecture,
    d_in: dIn as number,
    d_sae: dSae as number,
    dtype: typeof cfg.dtype === 'string' ? cfg.dtype : 'float32',
    apply_b_dec_to_input: typeof cfg.apply_b_dec_to_input === 'boolean' ? cfg.apply_b_dec_to_input : true,
    normalize_activations: norm as SaeLensNormalization,
    reshape_activations: reshape === 'hook_z' ? 'hook_z' : 'none',
    ...(k !== undefined ? { k } : {}),
    // SAELens' inference TopKSAEConfig defaults this to False; training configs to True.
    rescale_acts_by_decoder_norm: cfg.rescale_acts_by_decoder_norm === true,
    finetuning_scaling_factor: cfg.finetuning_scaling_factor === true,
    ...(Array.isArray(cfg.matryoshka_widths) ? { matryoshka_widths: cfg.matryoshka_widths as number[] } : {}),
    metadata,
    migrated,
  };
  return out;
}
