// `sfc discover`: the circuit — IG node effects, edges between adjacent submodules, thresholds —
// written as sfc.circuit/v1.

import { resolve } from 'node:path';
import { buildCircuit, discover, serializeCircuit } from '@sfc/core';
import { withRunInputs } from '../run-inputs.js';
import { withInterrupt } from './interrupt.js';
import { Session } from '../session.js';
import { checkOutputPath, writeFileAtomic } from '../write-atomic.js';
import type { OptionId } from '../options.js';
import type { SfcCommand } from './command.js';

const OPTIONS: OptionId[] = ['model', 'dictionaries', 'dictRun', 'data', 'steps', 'aggregation', 'nodeThreshold', 'edgeThreshold', 'numExamples', 'batchSize', 'seed', 'minLengthOnly', 'backend'];

export const discoverCommand: SfcCommand = {
  command: 'discover',
  describe: 'Discover a circuit: integrated-gradient node effects and the edges between them (sfc.circuit/v1)',
  options: [...OPTIONS, 'out'],
  required: ['out'],
  builder: (y) => y.option('nodes-only', { type: 'boolean', describe: 'Skip edges (node effects only; much faster)' }),
  examples: [
    ['$0 discover --model fixtures/small-a --dictionaries fixtures/small-a/dictionaries --data fixtures/small-a/data.jsonl --out circuit.json', 'The circuit with the reference thresholds (0.1 nodes, 0.01 edges)'],
    ['$0 discover --node-threshold 0.2 --edge-threshold 0 --out circuit.json', 'Fewer nodes, every nonzero edge between them'],
  ],
  run: (argv, io) => withInterrupt((signal) => Session.with(io, argv, OPTIONS, async (s) => {
    const out = resolve(io.cwd, argv.out as string);
    checkOutputPath(out);
    const circuit = await withRunInputs(s, { numExamplesKey: 'circuit.numExamples', batchSizeKey: 'circuit.batchSize' }, async (inputs, onProgress) => {
      const result = await discover(inputs.model, inputs.dictionaries, inputs.batches, {
        nodeThreshold: s.config.get<number>('circuit.nodeThreshold')!,
        aggregation: s.config.get<'sum' | 'none'>('circuit.aggregation')!,
        steps: s.config.get<number>('circuit.steps')!,
        nodesOnly: argv['nodes-only'] === true,
        onProgress, signal,
      });
      const c = buildCircuit(result, { edgeThreshold: s.config.get<number>('circuit.edgeThreshold')!, meta: inputs.meta });
      await writeFileAtomic(out, serializeCircuit(c));
      return c;
    });
    s.status(`wrote ${argv.out as string}: ${circuit.nodes.length - 1} nodes and ${circuit.edges.length} edges `
      + `(node threshold ${circuit.nodeThreshold}, edge threshold ${circuit.edgeThreshold}), ${circuit.numExamples} examples`);
  })),
};
