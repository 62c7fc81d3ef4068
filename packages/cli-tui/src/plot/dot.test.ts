import { describe, expect, it } from 'vitest';
import { FormatError, parseCircuit, type CircuitEdge, type CircuitNode } from '@sfc/core';
import { parseAnnotations } from '../annotations.js';
import { circuitToDot, effectColors, rowRank, type PlotCircuit } from './dot.js';
import { renderSvg } from './render.js';

const circuit = (nodes: CircuitNode[], edges: CircuitEdge[]): PlotCircuit => ({ nodes: [{ id: 'y', submodule: 'y', index: null, pos: null, effect: 2 }, ...nodes], edges });

const sum = circuit([
  { id: 'embed/3', submodule: 'embed', index: 3, pos: null, effect: 0.5 },
  { id: 'resid_0/7', submodule: 'resid_0', index: 7, pos: null, effect: -1.0 },
  { id: 'attn_0/err', submodule: 'attn_0', index: 64, pos: null, effect: 0.25 },
  { id: 'mlp_0/1', submodule: 'mlp_0', index: 1, pos: null, effect: 0.1 },
], [
  { source: 'embed/3', target: 'resid_0/7', weight: 0.2 },
  { source: 'attn_0/err', target: 'resid_0/7', weight: -0.4 },
  { source: 'resid_0/7', target: 'y', weight: 1 },
  { source: 'mlp_0/999', target: 'resid_0/7', weight: 1 },
]);

describe('circuit → DOT', () => {
  it('orders rows in forward order from the bottom', () => {
    expect(['resid_1', 'embed', 'mlp_0', 'attn_1', 'resid_0', 'attn_0'].sort((a, b) => rowRank(a) - rowRank(b)))
      .toEqual(['embed', 'attn_0', 'mlp_0', 'resid_0', 'attn_1', 'resid_1']);
    const { dot } = circuitToDot(sum);
    expect(dot).toContain('rankdir=BT');
    const chain = [...dot.matchAll(/^ {2}"(row:[^"]+|y)" -> "(row:[^"]+|y)" \[style=invis\];$/gm)].map((m) => `${m[1]}>${m[2]}`);
    expect(chain).toEqual(['row:embed>row:attn_0', 'row:attn_0>row:mlp_0', 'row:mlp_0>row:resid_0', 'row:resid_0>y']);
  });

  it('fills blue for positive and red for negative effects, scaled by |effect|', () => {
    expect(effectColors(1, 1)).toEqual({ fill: '#0000FF', text: '#FFFFFF' });
    expect(effectColors(-1, 1)).toEqual({ fill: '#FF0000', text: '#FFFFFF' });
    expect(effectColors(0, 1)).toEqual({ fill: '#FFFFFF', text: '#000000' });
    expect(effectColors(0.5, 1).fill).toBe('#8080FF');
    const { dot } = circuitToDot(sum);
    expect(dot).toMatch(/"resid_0\/7" \[label="resid_0\/7", fillcolor="#FF0000"/);
    expect(dot).toMatch(/"embed\/3" \[label="embed\/3", fillcolor="#8080FF"/);
  });

  it('draws error nodes as triangles and the metric as a diamond', () => {
    const { dot } = circuitToDot(sum);
    expect(dot).toMatch(/"attn_0\/err" \[label="attn_0\/ε", [^\]]*shape="triangle"/);
    expect(dot).toMatch(/"y" \[shape="diamond"/);
  });

  it('gives edges a width proportional to |weight| and a colour by sign; skips edges to unknown nodes', () => {
    const { dot, skippedEdges } = circuitToDot(sum, { penWidth: 5 });
    expect(skippedEdges).toBe(1);
    expect(dot).toMatch(/"embed\/3" -> "resid_0\/7" \[color="blue", penwidth=1,/);
    expect(dot).toMatch(/"attn_0\/err" -> "resid_0\/7" \[color="red", penwidth=2,/);
    expect(dot).toMatch(/"resid_0\/7" -> "y" \[color="blue", penwidth=5,/);
    expect(dot).not.toContain('mlp_0/999');
  });

  it('labels annotated features and aligns positions in columns over the tokens', () => {
    const pos = circuit([
      { id: 'resid_0/7@1', submodule: 'resid_0', index: 7, pos: 1, effect: 1 },
      { id: 'resid_0/2@0', submodule: 'resid_0', index: 2, pos: 0, effect: 0.5 },
    ], []);
    const { dot } = circuitToDot(pos, { tokens: ['The', ' cats'], annotations: parseAnnotations('{"Name": "resid_0/7", "Annotation": "plural \\"noun\\""}\n') });
    expect(dot).toContain('label="1 \\" cats\\": plural \\"noun\\"\\nresid_0/7"');
    expect(dot).toMatch(/"tok:0" \[label="The", [^\]]*group="p0"/);
    expect(dot).toMatch(/"row:resid_0" -> "resid_0\/2@0" \[style=invis\];\n\s+"resid_0\/2@0" -> "resid_0\/7@1" \[style=invis\];/);
    expect(dot).toContain('"tok:0" -> "resid_0/2@0" [style=invis, weight=8];'); // column above its token
    expect(dot).toContain('"tok:1" -> "resid_0/7@1" [style=invis, weight=8];');
  });

  it('renders SVG with Graphviz', async () => {
    const svg = await renderSvg(circuitToDot(sum).dot);
    expect(svg).toMatch(/^<\?xml|<svg/);
    expect(svg).toContain('resid_0/7');
    expect(svg).toContain('fill="#ff0000"');
  });
});

describe('files', () => {
  it('plots a circuit file as core parses it (the metric node y included)', () => {
    const file = parseCircuit(JSON.stringify({
      schema: 'sfc.circuit/v1', method: 'ig', steps: 10, aggregation: 'sum', numExamples: 2, seqLen: 6, metric: 'logit diff',
      nodeThreshold: 0.1, edgeThreshold: 0.01, nodesOnly: false, submodules: ['embed', 'resid_0'], dSae: { embed: 64, resid_0: 64 },
      metricClean: -1, metricPatch: 1, totalEffect: 2,
      nodes: [{ id: 'y', submodule: 'y', index: null, pos: null, effect: 2 },
        { id: 'embed/err', submodule: 'embed', index: 64, pos: null, effect: 0.3 },
        { id: 'resid_0/5', submodule: 'resid_0', index: 5, pos: null, effect: -0.6 }],
      edges: [{ source: 'embed/err', target: 'resid_0/5', weight: 0.2 }, { source: 'resid_0/5', target: 'y', weight: -0.6 }],
    }));
    const { dot, skippedEdges } = circuitToDot(file);
    expect(skippedEdges).toBe(0);
    expect(dot).toMatch(/"embed\/err" \[label="embed\/ε"/);
    expect(dot).toMatch(/"resid_0\/5" -> "y" \[color="red", penwidth=4,/);
    expect(dot).not.toMatch(/"row:y"/);
  });

  it('rejects malformed annotation lines with their line number', () => {
    expect(() => parseAnnotations('{"Name": "a", "Annotation": "b"}\nnot json', 'ann.jsonl')).toThrow(/ann\.jsonl:2: not valid JSON/);
    expect(() => parseAnnotations('{"Name": 1}')).toThrow(FormatError);
  });

  it('draws a legend (sign, error node, edge width) unless asked not to', async () => {
    const { dot } = circuitToDot(sum, { penWidth: 5 });
    expect(dot).toContain('"legend"');
    for (const t of ['effect &gt; 0', 'effect &lt; 0', 'SAE error node', 'width proportional to |weight|']) expect(dot).toContain(t);
    expect(dot).toMatch(/HEIGHT="5" FIXEDSIZE="TRUE" BGCOLOR="blue"/); // the strongest edge's width
    expect(circuitToDot(sum, { legend: false }).dot).not.toContain('"legend"');
    const svg = await renderSvg(dot);
    expect(svg).toContain('edge weight &lt; 0');
    expect(svg).toContain('font-family="Inter, Helvetica, Arial, sans-serif"');
    expect(svg).not.toMatch(/font-family="Helvetica/);
  });

  it('leaves out nodes that no edge touches when asked', () => {
    const c = { nodes: [
      { id: 'y', submodule: 'y', index: null, pos: null, effect: 1 },
      { id: 'resid_0/7', submodule: 'resid_0', index: 7, pos: null, effect: -1 },
      { id: 'resid_0/8', submodule: 'resid_0', index: 8, pos: null, effect: 0.5 },
    ], edges: [{ source: 'resid_0/7', target: 'y', weight: 1 }] };
    const kept = circuitToDot(c, { dropIsolated: true });
    expect(kept.droppedNodes).toBe(1);
    expect(kept.dot).not.toContain('"resid_0/8"');
    expect(circuitToDot(c).dot).toContain('"resid_0/8"');
  });
});
