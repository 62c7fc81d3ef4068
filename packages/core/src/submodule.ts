// Submodules: the named points of the forward pass whose outputs circuits are made of.
// One grammar for their names (feature-circuits roles) and one table of aliases
// (TransformerLens hook names, Hugging Face module paths, feature-circuits dictionary folders).

import { NotFoundError } from './errors.js';

export type SubmoduleRole = 'embed' | 'attn' | 'mlp' | 'resid';

export interface Submodule {
  /** `embed`, `attn_3`, `mlp_3`, `resid_3`. */
  readonly name: string;
  readonly role: SubmoduleRole;
  /** Layer index; -1 for embed. */
  readonly layer: number;
  /** TransformerLens hook name, e.g. `blocks.3.hook_resid_post`. */
  readonly hook: string;
  /** Position in forward order (0 = embed). */
  readonly order: number;
}

export type Architecture = 'gpt_neox' | 'gpt2';

export function submoduleName(role: SubmoduleRole, layer: number): string {
  return role === 'embed' ? 'embed' : `${role}_${layer}`;
}

export function hookName(role: SubmoduleRole, layer: number, arch: Architecture): string {
  switch (role) {
    case 'embed': return arch === 'gpt2' ? 'blocks.0.hook_resid_pre' : 'hook_embed';
    case 'attn': return `blocks.${layer}.hook_attn_out`;
    case 'mlp': return `blocks.${layer}.hook_mlp_out`;
    case 'resid': return `blocks.${layer}.hook_resid_post`;
  }
}

/** Submodules in forward order: embed, attn_0, mlp_0, resid_0, attn_1, … */
export function listSubmodules(nLayers: number, arch: Architecture): Submodule[] {
  const out: Submodule[] = [{ name: 'embed', role: 'embed', layer: -1, hook: hookName('embed', -1, arch), order: 0 }];
  for (let l = 0; l < nLayers; l++) {
    for (const role of ['attn', 'mlp', 'resid'] as const) {
      out.push({ name: submoduleName(role, l), role, layer: l, hook: hookName(role, l, arch), order: out.length });
    }
  }
  return out;
}

const NAME_RE = /^(?:embed|(attn|mlp|resid)_(\d+))$/;

export function parseSubmoduleName(name: string): { role: SubmoduleRole; layer: number } | undefined {
  const m = NAME_RE.exec(name);
  if (!m) return undefined;
  if (!m[1]) return { role: 'embed', layer: -1 };
  return { role: m[1] as SubmoduleRole, layer: Number(m[2]) };
}

/**
 * Resolves any alias to a submodule: sfc names (`resid_3`), TransformerLens hooks
 * (`blocks.3.hook_resid_post`, `hook_embed`, `blocks.0.hook_resid_pre`), Hugging Face module
 * paths (`gpt_neox.layers.3`, `gpt_neox.layers.3.attention`, `transformer.h.3.mlp`, `gpt_neox.embed_in`)
 * and feature-circuits dictionary folders (`resid_out_layer3`, `attn_out_layer3`, `embed`).
 */
export function resolveSubmoduleAlias(alias: string, submodules: readonly Submodule[]): Submodule | undefined {
  const byName = (n: string) => submodules.find((s) => s.name === n);
  const direct = byName(alias) ?? submodules.find((s) => s.hook === alias);
  if (direct) return direct;
  let m: RegExpExecArray | null;
  if (alias === 'hook_embed' || alias === 'blocks.0.hook_resid_pre' || alias === 'gpt_neox.embed_in'
    || alias === 'transformer.wte' || alias === 'embed_in') return byName('embed');
  if ((m = /^(attn|mlp|resid)_out_layer(\d+)$/.exec(alias))) return byName(`${m[1]}_${m[2]}`);
  if ((m = /^blocks\.(\d+)\.hook_(attn_out|mlp_out|resid_post)$/.exec(alias))) {
    const role = m[2] === 'attn_out' ? 'attn' : m[2] === 'mlp_out' ? 'mlp' : 'resid';
    return byName(`${role}_${m[1]}`);
  }
  if ((m = /^blocks\.(\d+)\.hook_resid_pre$/.exec(alias))) {
    const l = Number(m[1]);
    return l === 0 ? byName('embed') : byName(`resid_${l - 1}`);
  }
  if ((m = /^(?:gpt_neox\.layers|transformer\.h|h|layers)\.(\d+)(?:\.(attention|attn|mlp))?$/.exec(alias))) {
    const role = m[2] === undefined ? 'resid' : m[2] === 'mlp' ? 'mlp' : 'attn';
    return byName(`${role}_${m[1]}`);
  }
  return undefined;
}

export function requireSubmodule(name: string, submodules: readonly Submodule[]): Submodule {
  const s = resolveSubmoduleAlias(name, submodules);
  if (!s) {
    throw new NotFoundError(`unknown submodule '${name}'`,
      `valid submodules: ${submodules.map((x) => x.name).join(', ')} (TransformerLens hook names work too)`);
  }
  return s;
}
