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
  /** TransformerLens / SAELens hook name, e.g. `blocks.3.hook_resid_post`, `blocks.3.attn.hook_z` (Gemma). */
  readonly hook: string;
  /** Position in forward order (0 = the first submodule). */
  readonly order: number;
  /**
   * Width of the submodule's output (its dictionaries' d_in): the model width, except Gemma's
   * attn_l (the concatenated heads, nHeads × headDim). Absent when listed without a model spec.
   */
  readonly width?: number;
  /** Other names that resolve to this submodule exactly (Hugging Face module paths). */
  readonly aliases: readonly string[];
}

/** The `model_type`s sfc runs (`gemma3` stands for gemma3 and gemma3_text). */
export type Architecture = 'gpt_neox' | 'gpt2' | 'gemma2' | 'gemma3' | 'llama' | 'mistral' | 'qwen2' | 'qwen3';

/** Gemma places attn_l before o_proj (feature-circuits, Gemma Scope): the concatenated heads, SAELens `hook_z`. */
export function isGemma(arch: Architecture): boolean {
  return arch === 'gemma2' || arch === 'gemma3';
}

export function submoduleName(role: SubmoduleRole, layer: number): string {
  return role === 'embed' ? 'embed' : `${role}_${layer}`;
}

export function hookName(role: SubmoduleRole, layer: number, arch: Architecture): string {
  switch (role) {
    case 'embed': return arch === 'gpt2' ? 'blocks.0.hook_resid_pre' : 'hook_embed';
    case 'attn': return isGemma(arch) ? `blocks.${layer}.attn.hook_z` : `blocks.${layer}.hook_attn_out`;
    case 'mlp': return `blocks.${layer}.hook_mlp_out`;
    case 'resid': return `blocks.${layer}.hook_resid_post`;
  }
}

/**
 * Hugging Face module paths of a submodule for the architectures whose modules are
 * `model.layers.{l}…` (Llama family, Gemma): the module whose output (or, for Gemma's attn_l, whose
 * input: o_proj) the submodule is. NeoX and GPT-2 paths are resolved by pattern (resolveSubmoduleAlias).
 */
function hfPaths(role: SubmoduleRole, layer: number, arch: Architecture): string[] {
  if (arch === 'gpt_neox' || arch === 'gpt2') return [];
  const prefixes = arch === 'gemma3' ? ['model.', 'model.language_model.', 'language_model.model.'] : ['model.'];
  const tail = role === 'embed' ? 'embed_tokens'
    : role === 'resid' ? `layers.${layer}`
      : role === 'attn' ? (isGemma(arch) ? `layers.${layer}.self_attn.o_proj` : `layers.${layer}.self_attn`)
        : (isGemma(arch) ? `layers.${layer}.post_feedforward_layernorm` : `layers.${layer}.mlp`);
  const tails = [tail];
  // Gemma Scope 2's config.json names its sites by module and side (`hf_hook_point_in`):
  // `model.layers.{l}.output`, `….self_attn.o_proj.input`, `….post_feedforward_layernorm.output`.
  if (arch === 'gemma3' && role !== 'embed') tails.push(`${tail}.${role === 'attn' ? 'input' : 'output'}`);
  return prefixes.flatMap((p) => tails.map((t) => `${p}${t}`));
}

export interface SubmoduleLayout {
  /** Whether the embedding output is a submodule (false for Gemma: feature-circuits' include_embed=False). */
  readonly embed: boolean;
  /** Width of every submodule but attn_l. */
  readonly dModel?: number;
  /** Width of attn_l (Gemma: nHeads × headDim). */
  readonly attnWidth?: number;
}

/** Submodules in forward order: (embed,) attn_0, mlp_0, resid_0, attn_1, … */
export function listSubmodules(nLayers: number, arch: Architecture, layout: SubmoduleLayout = { embed: true }): Submodule[] {
  const out: Submodule[] = [];
  const add = (role: SubmoduleRole, layer: number) => {
    const width = role === 'attn' ? layout.attnWidth ?? layout.dModel : layout.dModel;
    out.push({
      name: submoduleName(role, layer), role, layer, hook: hookName(role, layer, arch), order: out.length,
      ...(width !== undefined ? { width } : {}), aliases: hfPaths(role, layer, arch),
    });
  };
  if (layout.embed) add('embed', -1);
  for (let l = 0; l < nLayers; l++) for (const role of ['attn', 'mlp', 'resid'] as const) add(role, l);
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
 * Resolves any alias to a submodule: sfc names (`resid_3`), TransformerLens/SAELens hooks as the
 * submodule declares them (`blocks.3.hook_resid_post`, `hook_embed`, `blocks.3.attn.hook_z` on
 * Gemma) and `blocks.{l}.hook_resid_pre`, Hugging Face module paths (`gpt_neox.layers.3`,
 * `gpt_neox.layers.3.attention`, `transformer.h.3.mlp`, `gpt_neox.embed_in`, `model.layers.3`,
 * `model.layers.3.self_attn`, Gemma's `model.layers.3.self_attn.o_proj`) and feature-circuits
 * dictionary folders (`resid_out_layer3`, `attn_out_layer3`, `embed`). A hook that names another
 * point of the model (Gemma's `hook_attn_out`, which is after o_proj) resolves to nothing.
 */
export function resolveSubmoduleAlias(alias: string, submodules: readonly Submodule[]): Submodule | undefined {
  const byName = (n: string) => submodules.find((s) => s.name === n);
  const direct = byName(alias) ?? submodules.find((s) => s.hook === alias || s.aliases.includes(alias));
  if (direct) return direct;
  let m: RegExpExecArray | null;
  if (alias === 'hook_embed') return byName('embed');
  if ((m = /^(attn|mlp|resid)_out_layer(\d+)$/.exec(alias))) return byName(`${m[1]}_${m[2]}`);
  if ((m = /^blocks\.(\d+)\.hook_resid_pre$/.exec(alias))) {
    const l = Number(m[1]);
    return l === 0 ? byName('embed') : byName(`resid_${l - 1}`);
  }
  // NeoX and GPT-2 module paths (their submodules carry no alias list).
  if (submodules.some((s) => s.aliases.length > 0)) return undefined;
  if (alias === 'gpt_neox.embed_in' || alias === 'transformer.wte' || alias === 'embed_in') return byName('embed');
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

/**
 * Submodules as messages list them: embed, then each role's layers with runs of three or more
 * shortened (`attn_0…attn_25`), in the order the roles first appear.
 */
export function describeSubmodules(submodules: readonly Submodule[]): string {
  const byRole = new Map<SubmoduleRole, number[]>();
  for (const s of submodules) byRole.set(s.role, [...(byRole.get(s.role) ?? []), s.layer]);
  const parts: string[] = [];
  for (const [role, layers] of byRole) {
    if (role === 'embed') { parts.push('embed'); continue; }
    const sorted = [...layers].sort((a, b) => a - b);
    for (let i = 0; i < sorted.length;) {
      let j = i;
      while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
      if (j - i >= 2) parts.push(`${submoduleName(role, sorted[i]!)}…${submoduleName(role, sorted[j]!)}`);
      else for (let k = i; k <= j; k++) parts.push(submoduleName(role, sorted[k]!));
      i = j + 1;
    }
  }
  return parts.join(', ');
}

/** A pattern over sfc names: `*` stands for any characters (`resid_*`, `*_3`, `*`). */
function patternMatcher(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/**
 * The submodules a list names, in forward order and each once: sfc names, any alias
 * resolveSubmoduleAlias knows (TransformerLens hooks, Hugging Face module paths, feature-circuits
 * folders), or a pattern with `*` over sfc names (`resid_*`). An entry that names no submodule is
 * a NotFoundError listing the valid names; `from` says where the list came from (`--submodules`).
 */
export function selectSubmodules(list: readonly string[], submodules: readonly Submodule[], from = 'the submodule list'): Submodule[] {
  const chosen = new Set<string>();
  for (const entry of list) {
    const hits = entry.includes('*')
      ? submodules.filter((s) => patternMatcher(entry).test(s.name))
      : [resolveSubmoduleAlias(entry, submodules)].filter((s): s is Submodule => s !== undefined);
    if (!hits.length) {
      throw new NotFoundError(`${entry.includes('*') ? 'the pattern' : 'unknown submodule'} '${entry}' in ${from}${entry.includes('*') ? ' matches no submodule' : ''}`,
        `valid submodules of this model: ${describeSubmodules(submodules)} (TransformerLens hooks such as ${submodules.at(-1)?.hook ?? 'blocks.0.hook_resid_post'} and patterns such as resid_* work too)`);
    }
    for (const s of hits) chosen.add(s.name);
  }
  return submodules.filter((s) => chosen.has(s.name));
}
