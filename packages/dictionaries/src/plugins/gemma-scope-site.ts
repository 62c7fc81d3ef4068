// Where a Gemma Scope SAE sits, from its path, for folders without Gemma Scope 2's config.json
// (whose hf_hook_point_in wins, gemma-scope.ts): params.npz / params.safetensors carry no hook, so
// the release's folder names say it. Gemma Scope: `gemma-scope-2b-pt-{res,mlp,att}/layer_3/width_16k/
// average_l0_71`; Gemma Scope 2: `{resid_post,mlp_out,attn_out}/layer_3_width_16k_l0_medium`; hand-made
// layouts such as `layer_3_att`. The att SAEs read the attention's z (heads × head_dim, the input of
// o_proj: TransformerLens' `blocks.{l}.attn.hook_z`), as SAELens' Gemma Scope loader names them.

import { sep } from 'node:path';

/** Only the innermost folders count, so an unrelated parent (e.g. /home/mlp/) changes nothing. */
const DEPTH = 4;

/**
 * In order: the first that matches wins. Attention SAEs of every release are placed on z: Gemma
 * Scope's read z, and Gemma Scope 2's `attn_out` SAEs read o_proj's input (their config.json:
 * `model.layers.{l}.self_attn.o_proj.input`). One that read o_proj's output instead would have
 * d_in = d_model ≠ heads × head_dim on every Gemma, so the width check stops it with both widths named.
 */
const SITES: readonly [RegExp, (l: number) => string][] = [
  [/(?:^|[-_])(?:att|attn|attn_out|hook_z)(?:[-_]|$)/, (l) => `blocks.${l}.attn.hook_z`],
  [/(?:^|[-_])mlp(?:_out)?(?:[-_]|$)/, (l) => `blocks.${l}.hook_mlp_out`],
  [/(?:^|[-_])(?:res|resid|resid_post)(?:[-_]|$)/, (l) => `blocks.${l}.hook_resid_post`],
];

/** The TransformerLens hook of the Gemma Scope SAE in `dir`, or undefined when its path does not say. */
export function gemmaScopeHook(dir: string): string | undefined {
  const parts = dir.split(sep).filter(Boolean).slice(-DEPTH);
  let layer: number | undefined;
  let embedding = false;
  for (const p of [...parts].reverse()) {
    const m = /(?:^|[-_])layer_(\d+)(?:[-_]|$)/.exec(p);
    if (m && layer === undefined) layer = Number(m[1]);
    if (p === 'embedding' || /(?:^|[-_])embedding(?:[-_]|$)/.test(p)) embedding = true;
  }
  if (embedding && layer === undefined) return 'hook_embed';
  if (layer === undefined) return undefined;
  for (const p of [...parts].reverse()) { // innermost folder first
    const site = SITES.find(([re]) => re.test(p));
    if (site) return site[1](layer);
  }
  return undefined;
}
