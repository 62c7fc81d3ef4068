// `sfc plot`: a circuit file drawn as a layered graph (SVG through Graphviz-wasm, PNG from that SVG
// through resvg, or the DOT text).

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { InputError, NotFoundError, parseCircuit } from '@sfc/core';
import { readAnnotations } from '../annotations.js';
import { circuitToDot } from '../plot/dot.js';
import { renderSvg } from '../plot/render.js';
import { withEmbeddedFont } from '../plot/font.js';
import { renderPng } from '../plot/raster.js';
import { Session } from '../session.js';
import { checkOutputPath, writeFileAtomic } from '../write-atomic.js';
import type { SfcCommand } from './command.js';

const FORMATS: Record<string, 'svg' | 'png' | 'dot'> = { '.svg': 'svg', '.png': 'png', '.dot': 'dot', '.gv': 'dot' };

export const plotCommand: SfcCommand = {
  command: 'plot <circuit>',
  describe: 'Draw a circuit (sfc.circuit/v1) as a graph: rows embed → attn → mlp → resid per layer, blue/red by effect sign. Draws exactly the nodes and edges in the file (no re-thresholding)',
  options: ['out', 'annotations'],
  required: ['out'],
  builder: (y) => y
    .positional('circuit', { type: 'string', describe: 'Circuit file written by `sfc discover`' })
    .option('prompt', { type: 'string', requiresArg: true, describe: 'Example prompt whose words label the positions (aggregation none)' })
    .option('pen-width', { type: 'number', requiresArg: true, default: 4, describe: 'Width of the strongest edge (others proportional to |weight|)' })
    .option('legend', { type: 'boolean', default: true, describe: 'Draw the legend (colour = sign of the effect, triangle = SAE error node, width = |edge weight|); --no-legend leaves it out' })
    .option('drop-isolated', { type: 'boolean', describe: 'Leave out nodes that no edge touches' })
    .option('embed-font', { type: 'boolean', describe: 'SVG only: embed the Inter font (~460 KB), so every viewer draws the same font as the PNG' })
    .option('scale', { type: 'number', requiresArg: true, default: 2, describe: 'PNG only: pixels per SVG pixel (1 = 96 dpi)' }),
  examples: [
    ['$0 plot circuit.json --out circuit.svg', 'SVG with Graphviz (built in, no install)'],
    ['$0 plot circuit.json --annotations ann.jsonl --out c.svg', 'Label features with your annotations'],
    ['$0 plot circuit.json --out circuit.png --scale 3', 'PNG at 288 dpi (rasterized with resvg)'],
    ['$0 plot circuit.json --out circuit.dot', 'The DOT text, to style it yourself'],
    ['$0 plot circuit.json --drop-isolated --annotations ann.jsonl --out c.svg', 'For a paper: only connected nodes, labelled, with the legend'],
    ['$0 plot circuit-none.json --prompt "The parents that the guards know" --out c.svg', 'Position-aligned, labelled with the prompt\'s words'],
  ],
  run: async (argv, io) => {
    const s = await Session.open(io, argv, ['annotations']);
    const out = resolve(io.cwd, argv.out as string);
    const format = FORMATS[extname(out).toLowerCase()];
    if (!format) throw new InputError(`cannot tell the output format of ${argv.out as string}`, 'use --out FILE.svg or FILE.png (image) or FILE.dot (Graphviz source)');
    const penWidth = argv['pen-width'] as number;
    if (!Number.isFinite(penWidth) || penWidth <= 0) throw new InputError(`--pen-width must be a positive number, got ${String(argv['pen-width'])}`);
    const scale = argv.scale as number;
    if (!Number.isFinite(scale) || scale <= 0) throw new InputError(`--scale must be a positive number, got ${String(argv.scale)}`);
    if (argv['embed-font'] === true && format !== 'svg') throw new InputError('--embed-font applies to SVG output', 'use --out FILE.svg (a PNG always uses the shipped font)');
    checkOutputPath(out);
    const path = resolve(io.cwd, argv.circuit as string);
    if (!existsSync(path)) throw new NotFoundError(`circuit file ${path} does not exist`, 'write one with `sfc discover --out circuit.json`');
    const circuit = parseCircuit(await readFile(path, 'utf8'), path);
    const annotationsPath = s.config.get<string>('annotations');
    const annotations = annotationsPath !== undefined ? await readAnnotations(annotationsPath) : undefined;
    const tokens = typeof argv.prompt === 'string' ? argv.prompt.split(/\s+/).filter(Boolean) : undefined;
    const dropIsolated = argv['drop-isolated'] === true;
    if (dropIsolated && circuit.nodesOnly) throw new InputError('the circuit has no edges (discovered with --nodes-only), so every node would be dropped', 'drop --drop-isolated');
    const { dot, skippedEdges, droppedNodes } = circuitToDot(circuit, { annotations, penWidth, legend: argv.legend !== false, dropIsolated, ...(tokens ? { tokens } : {}) });
    if (skippedEdges) s.warn(`${skippedEdges} edges refer to nodes that are not in the circuit; not drawn`);
    let size = '';
    if (format === 'png') {
      const img = await renderPng(await renderSvg(dot), { scale });
      await writeFileAtomic(out, img.png);
      size = ` (${img.width}×${img.height} px)`;
    } else {
      const svg = format === 'svg' ? await renderSvg(dot) : undefined;
      await writeFileAtomic(out, svg === undefined ? dot : argv['embed-font'] === true ? withEmbeddedFont(svg) : svg);
    }
    const drawn = circuit.nodes.filter((n) => n.index !== null).length - droppedNodes;
    s.status(`wrote ${argv.out as string}${size}: ${drawn} nodes${droppedNodes ? ` (${droppedNodes} without edges left out)` : ''}, ${circuit.edges.length - skippedEdges} edges`);
  },
};
