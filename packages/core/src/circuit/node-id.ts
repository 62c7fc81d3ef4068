// The one grammar for circuit node ids, parsed and printed only here:
//   y                      the metric
//   <submodule>/<index>    an SAE feature, e.g. resid_3/1234
//   <submodule>/err        the SAE error term of a submodule, e.g. resid_3/err
//   …@<pos>                the same at one token position (aggregation none), e.g. attn_1/17@5
// <submodule> is an sfc submodule name: embed, attn_<l>, mlp_<l>, resid_<l>.

import { InputError } from '../errors.js';
import { parseSubmoduleName } from '../submodule.js';

export const METRIC_NODE = 'y';

export type NodeRef =
  | { readonly kind: 'metric' }
  | { readonly kind: 'feature'; readonly submodule: string; readonly index: number; readonly pos: number | null }
  | { readonly kind: 'error'; readonly submodule: string; readonly pos: number | null };

const ID_RE = /^([a-z]+(?:_\d+)?)\/(\d+|err)(?:@(\d+))?$/;

function nonNegInt(text: string): number | undefined {
  if (text.length > 1 && text.startsWith('0')) return undefined; // no leading zeros: one spelling per node
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** Parses a node id; returns undefined when it does not follow the grammar. */
export function tryParseNodeId(id: string): NodeRef | undefined {
  if (id === METRIC_NODE) return { kind: 'metric' };
  const m = ID_RE.exec(id);
  if (!m || !parseSubmoduleName(m[1]!)) return undefined;
  let pos: number | null = null;
  if (m[3] !== undefined) {
    const p = nonNegInt(m[3]);
    if (p === undefined) return undefined;
    pos = p;
  }
  if (m[2] === 'err') return { kind: 'error', submodule: m[1]!, pos };
  const index = nonNegInt(m[2]!);
  if (index === undefined) return undefined;
  return { kind: 'feature', submodule: m[1]!, index, pos };
}

/** Parses a node id or throws an InputError that shows the grammar. */
export function parseNodeId(id: string): NodeRef {
  const ref = tryParseNodeId(id);
  if (!ref) {
    throw new InputError(`'${id}' is not a node id`,
      "node ids look like resid_3/1234 (a feature), resid_3/err (an SAE error), attn_1/17@5 (at position 5) or y (the metric)");
  }
  return ref;
}

export function formatNodeId(ref: NodeRef): string {
  if (ref.kind === 'metric') return METRIC_NODE;
  const at = ref.pos === null ? '' : `@${ref.pos}`;
  return ref.kind === 'error' ? `${ref.submodule}/err${at}` : `${ref.submodule}/${ref.index}${at}`;
}

/** Id of node `index` of a submodule whose SAE has dSae features (index dSae is the error node). */
export function nodeIdAt(submodule: string, index: number, dSae: number, pos: number | null): string {
  return index === dSae ? formatNodeId({ kind: 'error', submodule, pos }) : formatNodeId({ kind: 'feature', submodule, index, pos });
}
