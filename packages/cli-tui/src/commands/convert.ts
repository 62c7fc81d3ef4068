// `sfc convert`: a circuit saved by feature-circuits (`circuit.py`, a torch `.pt`) as
// `sfc.circuit/v1`, so `sfc plot`, `sfc evaluate`, `sfc steer` and the TUI read it. The
// conversion itself is @sfc/dictionaries' (readFcCircuitFile); this module also gives the
// CircuitReader that lets steering commands take a `.pt` directly.

import { resolve } from 'node:path';
import { InputError, serializeCircuit } from '@sfc/core';
import { readFcCircuitFile, type FcConversion, type FcConvertOptions } from '@sfc/dictionaries';
import type { CircuitReader } from '@sfc/steering';
import { Session } from '../session.js';
import { checkOutputPath, writeFileAtomic } from '../write-atomic.js';
import type { SfcCommand } from './command.js';

/** Reads feature-circuits `.pt` circuits for readCircuitFile (keeping every node and edge of the file). */
export function fcCircuitReader(options: FcConvertOptions = {}, onConverted?: (c: FcConversion) => void): CircuitReader {
  return {
    name: 'feature-circuits',
    canRead: (path) => /\.(pt|pth)$/i.test(path),
    read: async (path) => {
      const c = await readFcCircuitFile(path, options);
      onConverted?.(c);
      return c.circuit;
    },
  };
}

function threshold(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (typeof v === 'boolean' || !Number.isFinite(n) || n < 0) throw new InputError(`${flag} must be a number ≥ 0, got ${String(v)}`, 'the default 0 keeps every node and edge the file holds');
  return n;
}

export const convertCommand: SfcCommand = {
  command: 'convert <file>',
  describe: 'Convert a circuit saved by feature-circuits (.pt) to sfc.circuit/v1 JSON (metric values are not in the file: they stay null)',
  options: ['out'],
  required: ['out'],
  builder: (y) => y
    .positional('file', { type: 'string', describe: 'Circuit file from feature-circuits\' circuit.py (torch .pt: {examples, nodes, edges})' })
    .option('node-threshold', { requiresArg: true, describe: 'Keep nodes with |effect| above this (default 0: every nonzero node in the file)' })
    .option('edge-threshold', { requiresArg: true, describe: 'Keep edges with |weight| above this (default 0: every nonzero edge between kept nodes)' }),
  examples: [
    ['$0 convert circuits/pythia-70m-deduped_simple_train_n100_aggsum_node0.1.pt --out circuit.json', 'Everything the file holds'],
    ['$0 convert circuit.pt --node-threshold 0.1 --edge-threshold 0.01 --out circuit.json', 'The circuit feature-circuits plots (its default thresholds)'],
  ],
  run: async (argv, io) => {
    const s = await Session.open(io, argv, []);
    const out = resolve(io.cwd, argv.out as string);
    checkOutputPath(out);
    const nodeThreshold = threshold(argv['node-threshold'], '--node-threshold');
    const edgeThreshold = threshold(argv['edge-threshold'], '--edge-threshold');
    const path = resolve(io.cwd, argv.file as string);
    const r = await readFcCircuitFile(path, { ...(nodeThreshold !== undefined ? { nodeThreshold } : {}), ...(edgeThreshold !== undefined ? { edgeThreshold } : {}) });
    for (const w of r.warnings) s.warn(w);
    const c = r.circuit;
    await writeFileAtomic(out, serializeCircuit(c));
    const examples = c.numExamples === null ? 'example count unknown' : `${c.numExamples} examples`;
    s.status(`wrote ${argv.out as string}: ${c.nodes.length - 1} nodes and ${c.edges.length} edges of ${r.fileNodes} nodes and ${r.fileEdges} edges in the file `
      + `(feature-circuits, aggregation ${c.aggregation}, ${examples}${c.nodesOnly ? ', nodes only' : ''})`);
    const named = r.fileName.nodeThreshold;
    if (named !== undefined && nodeThreshold === undefined) {
      s.status(`note: the file name records node threshold ${named}; feature-circuits draws the nodes above it (add --node-threshold ${named})`);
    }
  },
};
