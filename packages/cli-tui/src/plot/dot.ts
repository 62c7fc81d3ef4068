// A circuit as a Graphviz DOT graph, in the style of feature-circuits' plots: one row per
// submodule from the bottom (embed, attn_0, mlp_0, resid_0, …) to the metric `y` on top; fill
// blue for positive and red for negative effects, shaded by |effect|; SAE error nodes as
// triangles; edges blue/red with width proportional to |weight|. With positions (aggregation
// none) nodes line up in columns by position over the prompt's tokens.
//
// What is drawn is exactly what the file holds: sfc does not re-threshold when plotting (the
// reference's plotting re-applies thresholds that may differ from discovery's).

import { METRIC_NODE, parseSubmoduleName, type Circuit, type CircuitNode } from '@sfc/core';

export interface DotOptions {
  /** Feature id (`resid_5/3036`) → text shown instead of the id. */
  readonly annotations?: ReadonlyMap<string, string>;
  /** Width of the strongest edge, in points; others are proportional. */
  readonly penWidth?: number;
  /** Labels of the token positions (aggregation none), e.g. the words of an example prompt. */
  readonly tokens?: readonly string[];
  /** Draw the legend (colour = sign, triangle = error node, width = |weight|). Default true. */
  readonly legend?: boolean;
  /** Leave out nodes that no drawn edge touches (the metric node stays). Default false. */
  readonly dropIsolated?: boolean;
}

/** What a plot needs of a circuit (core's Circuit has more). */
export type PlotCircuit = Pick<Circuit, 'nodes' | 'edges'>;

export interface DotResult {
  readonly dot: string;
  /** Edges whose endpoints are not among the nodes (not drawn). */
  readonly skippedEdges: number;
  /** Nodes left out by dropIsolated. */
  readonly droppedNodes: number;
}

const ROLE_ORDER: Record<string, number> = { embed: 0, attn: 1, mlp: 2, resid: 3 };

/** Forward-order rank of a submodule name; unknown names sort after all known ones. */
export function rowRank(submodule: string): number {
  const p = parseSubmoduleName(submodule);
  if (!p) return Number.MAX_SAFE_INTEGER;
  return p.role === 'embed' ? 0 : 3 * p.layer + ROLE_ORDER[p.role]!;
}

/** Fill and text colours for an effect in [-scale, scale]: white → blue (positive) or red (negative). */
export function effectColors(effect: number, scale: number): { fill: string; text: string } {
  const x = scale > 0 ? Math.max(-1, Math.min(1, effect / scale)) : 0;
  const fade = (v: number) => Math.round((1 - Math.abs(v)) * 255);
  const [r, g, b] = x > 0 ? [fade(x), fade(x), 255] : x < 0 ? [255, fade(x), fade(x)] : [255, 255, 255];
  const hex = (v: number) => v.toString(16).padStart(2, '0').toUpperCase();
  // Dark fills get white text (same luminance rule as the reference plots).
  return { fill: `#${hex(r)}${hex(g)}${hex(b)}`, text: r * 0.299 + g * 0.587 + b * 0.114 > 170 ? '#000000' : '#FFFFFF' };
}

const q = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
const attrs = (a: Record<string, string | number>) => `[${Object.entries(a).map(([k, v]) => `${k}=${typeof v === 'number' ? v : q(v)}`).join(', ')}]`;

function isErrorNode(n: CircuitNode): boolean {
  return /\/err(@\d+)?$/.test(n.id);
}

function featureKey(n: CircuitNode): string {
  return n.id.replace(/@\d+$/, '');
}

function label(n: CircuitNode, annotations: ReadonlyMap<string, string> | undefined, tokens: readonly string[] | undefined): string {
  const base = isErrorNode(n) ? `${n.submodule}/ε` : featureKey(n);
  const ann = isErrorNode(n) ? undefined : annotations?.get(featureKey(n));
  // The annotation, with the feature id under it: a reader can look the feature up.
  const text = ann !== undefined ? `${ann}\n${base}` : base;
  if (n.pos === null) return text;
  const tok = tokens?.[n.pos];
  return `${n.pos}${tok !== undefined ? ` ${JSON.stringify(tok)}` : ''}: ${text}`;
}

/**
 * The legend as one node with an HTML-like table: fills by sign, the error-node triangle, and
 * edge colour and width drawn as bars (penWidth and a quarter of it, in points).
 */
function legendNode(penWidth: number): string {
  const pos = effectColors(1, 1);
  const neg = effectColors(-1, 1);
  // Nested tables keep a cell's drawn size whatever the row's height (text is taller than a bar).
  const box = (w: number, h: number, fill: string, border = 0) =>
    `<TD><TABLE BORDER="${border}" COLOR="#555555" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0"><TR><TD WIDTH="${w}" HEIGHT="${h}" FIXEDSIZE="TRUE" BGCOLOR="${fill}"></TD></TR></TABLE></TD>`;
  const swatch = (fill: string) => box(18, 12, fill, 1);
  const bar = (color: string, pt: number) => box(28, Math.max(1, Math.round(pt)), color);
  // Inter is a little wider than the Helvetica metrics Graphviz measures with: pad the text.
  const text = (t: string) => `<TD ALIGN="LEFT" CELLPADDING="2"><FONT POINT-SIZE="10">${t}</FONT></TD><TD WIDTH="8"></TD>`;
  const gap = '<TD WIDTH="6"></TD>';
  const rows = [
    `<TR>${swatch(pos.fill)}${text('effect &gt; 0')}${gap}${swatch(neg.fill)}${text('effect &lt; 0')}${gap}<TD><FONT POINT-SIZE="12">▲</FONT></TD>${text('SAE error node')}</TR>`,
    `<TR>${bar('blue', penWidth)}${text('edge weight &gt; 0')}${gap}${bar('red', penWidth / 4)}${text('edge weight &lt; 0')}${gap}<TD></TD>${text('width proportional to |weight|')}</TR>`,
  ];
  const label = `<<TABLE BORDER="1" COLOR="#CCCCCC" CELLBORDER="0" CELLSPACING="3" CELLPADDING="1" STYLE="ROUNDED">${rows.join('')}</TABLE>>`;
  return `  "legend" [shape=plaintext, style="", margin=0, label=${label}];`;
}

/** The nodes some edge touches (both ends), when edges exist. */
function connected(circuit: PlotCircuit): Set<string> {
  const out = new Set<string>();
  for (const e of circuit.edges) { out.add(e.source); out.add(e.target); }
  return out;
}

export function circuitToDot(circuit: PlotCircuit, options: DotOptions = {}): DotResult {
  const penWidth = options.penWidth ?? 4;
  const tokens = options.tokens;
  // The metric node is drawn separately, on top.
  const all = circuit.nodes.filter((n) => n.submodule !== METRIC_NODE);
  const touched = options.dropIsolated ? connected(circuit) : undefined;
  const nodes = touched ? all.filter((n) => touched.has(n.id)) : all;
  const ids = new Set(nodes.map((n) => n.id));
  const scale = Math.max(0, ...nodes.map((n) => Math.abs(n.effect ?? 0)));
  const positional = nodes.some((n) => n.pos !== null);
  const lines: string[] = [
    'digraph "feature circuit" {',
    '  graph [rankdir=BT, newrank=true, nodesep=0.25, ranksep=0.45, fontname="Helvetica"];',
    '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, penwidth=0.6];',
    '  edge [arrowsize=0.5];',
  ];

  const rows = new Map<string, CircuitNode[]>();
  for (const n of nodes) rows.set(n.submodule, [...(rows.get(n.submodule) ?? []), n]);
  const rowNames = [...rows.keys()].sort((a, b) => rowRank(a) - rowRank(b) || a.localeCompare(b));
  const edges = circuit.edges.filter((e) => ids.has(e.source) && (ids.has(e.target) || e.target === METRIC_NODE));
  const hasY = edges.some((e) => e.target === METRIC_NODE);
  const anchors: string[] = [];

  const maxPos = Math.max(-1, ...nodes.map((n) => n.pos ?? -1));
  if (positional && maxPos >= 0) {
    // Bottom row: the prompt's tokens (or positions), one column each.
    lines.push('  subgraph "row:tokens" {', '    rank=same;');
    const words: string[] = [];
    for (let p = 0; p <= maxPos; p++) {
      const id = `tok:${p}`;
      words.push(id);
      lines.push(`    ${q(id)} ${attrs({ label: tokens?.[p] ?? `pos ${p}`, shape: 'plaintext', style: '', group: `p${p}`, fontsize: 14 })};`);
    }
    for (let i = 1; i < words.length; i++) lines.push(`    ${q(words[i - 1]!)} -> ${q(words[i]!)} [style=invis];`);
    lines.push('  }');
    anchors.push(words[0]!);
  }

  for (const row of rowNames) {
    const anchor = `row:${row}`;
    anchors.push(anchor);
    lines.push(`  subgraph ${q(anchor)} {`, '    rank=same;');
    lines.push(`    ${q(anchor)} ${attrs({ label: row, shape: 'plaintext', style: '', fontcolor: '#777777' })};`);
    const members = [...rows.get(row)!].sort((a, b) => (a.pos ?? 0) - (b.pos ?? 0) || Math.abs(b.effect ?? 0) - Math.abs(a.effect ?? 0));
    for (const n of members) {
      const effect = n.effect ?? 0;
      const c = effectColors(effect, scale);
      const a: Record<string, string | number> = {
        label: label(n, options.annotations, tokens), fillcolor: c.fill, fontcolor: c.text,
        tooltip: `${n.id}: effect ${effect.toPrecision(4)}`,
      };
      if (isErrorNode(n)) Object.assign(a, { shape: 'triangle', style: 'filled', width: n.pos === null ? 1.6 : 2.4, height: 0.8, fixedsize: 'true' });
      if (n.pos !== null) a.group = `p${n.pos}`;
      lines.push(`    ${q(n.id)} ${attrs(a)};`);
    }
    // Left to right: the row label, then the nodes in position order.
    const order = [anchor, ...members.map((n) => n.id)];
    for (let i = 1; i < order.length; i++) lines.push(`    ${q(order[i - 1]!)} -> ${q(order[i]!)} [style=invis];`);
    lines.push('  }');
  }
  if (positional) {
    // Columns: a heavy invisible edge between consecutive nodes of one position, token upward.
    for (let p = 0; p <= maxPos; p++) {
      const column = nodes.filter((n) => n.pos === p).sort((a, b) => rowRank(a.submodule) - rowRank(b.submodule));
      let prev = `tok:${p}`;
      for (const n of column) {
        if (rowRank(n.submodule) === rowRank(prev.replace(/\/.*$/, ''))) continue;
        lines.push(`  ${q(prev)} -> ${q(n.id)} [style=invis, weight=8];`);
        prev = n.id;
      }
    }
  }
  if (hasY) {
    lines.push(`  ${q(METRIC_NODE)} ${attrs({ shape: 'diamond', style: 'filled', fillcolor: '#EEEEEE', label: METRIC_NODE })};`);
    anchors.push(METRIC_NODE);
  }
  if (options.legend ?? true) {
    // On the top row, beside y, where no edge runs.
    lines.push(legendNode(penWidth));
    if (hasY) lines.push(`  { rank=same; ${q(METRIC_NODE)}; "legend"; }`, `  ${q(METRIC_NODE)} -> "legend" [style=invis];`);
    else anchors.push('legend');
  }
  // Rows stacked bottom to top in forward order even where no edge connects them.
  for (let i = 1; i < anchors.length; i++) lines.push(`  ${q(anchors[i - 1]!)} -> ${q(anchors[i]!)} [style=invis];`);

  const maxW = Math.max(0, ...edges.map((e) => Math.abs(e.weight)));
  for (const e of edges) {
    const w = maxW > 0 ? (Math.abs(e.weight) / maxW) * penWidth : 0;
    lines.push(`  ${q(e.source)} -> ${q(e.target)} ${attrs({ color: e.weight < 0 ? 'red' : 'blue', penwidth: Number(w.toFixed(3)), tooltip: `${e.source} → ${e.target}: ${e.weight.toPrecision(4)}` })};`);
  }
  lines.push('}');
  const allIds = new Set(all.map((n) => n.id));
  const skippedEdges = circuit.edges.filter((e) => !allIds.has(e.source) || !(e.target === METRIC_NODE || allIds.has(e.target))).length;
  return { dot: lines.join('\n') + '\n', skippedEdges, droppedNodes: all.length - nodes.length };
}
