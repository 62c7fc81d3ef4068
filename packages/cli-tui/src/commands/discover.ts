// `sfc discover`: the circuit — IG node effects, edges between adjacent submodules, thresholds —
// written as sfc.circuit/v1.

import { resolve } from 'node:path';
import { buildCircuit, discover, discoveryPartial, serializeCircuit } from '@sfc/core';
import { shardArg, shardStatus, withShardOption, writeShard } from '../shard.js';
import { withRunInputs } from '../run-inputs.js';
import { withInterrupt } from './interrupt.js';
import { Session } from '../session.js';
import { checkOutputPath, writeFileAtomic } from '../write-atomic.js';
import type { OptionId } from '../options.js';
import type { SfcCommand } from './command.js';

const OPTIONS: OptionId[] = ['model', 'dictionaries', 'dictRun', 'submodules', 'data', 'steps', 'aggregation', 'nodeThreshold', 'edgeThreshold', 'numExamples', 'batchSize', 'seed', 'minLengthOnly', 'backend'];

export const discoverCommand: SfcCommand = {
  command: 'discover',
  describe: 'Discover a circuit: integrated-gradient node effects and the edges between them (sfc.circuit/v1)',
  options: [...OPTIONS, 'out'],
  required: ['out'],
  builder: (y) => withShardOption(y.option('nodes-only', { type: 'boolean', describe: 'Skip edges (node effects only; much faster)' })),
  examples: [
    ['$0 discover --model fixtures/small-a --dictionaries fixtures/small-a/dictionaries --data fixtures/small-a/data.jsonl --out circuit.json', 'The circuit with the reference thresholds (0.1 nodes, 0.01 edges)'],
    ['$0 discover --node-threshold 0.2 --edge-threshold 0 --out circuit.json', 'Fewer nodes, every nonzero edge between them'],
    ['$0 discover --shard 0/4 --out part-0.safetensors', 'Shard 0 of 4 (one job-array task); then `sfc merge part-*.safetensors --out circuit.json`'],
  ],
  run: (argv, io) => withInterrupt((signal) => Session.with(io, argv, OPTIONS, async (s) => {
    const out = resolve(io.cwd, argv.out as string);
    checkOutputPath(out);
    const shard = shardArg(argv);
    const options = {
      nodeThreshold: s.config.get<number>('circuit.nodeThreshold')!,
      aggregation: s.config.get<'sum' | 'none'>('circuit.aggregation')!,
      steps: s.config.get<number>('circuit.steps')!,
      nodesOnly: argv['nodes-only'] === true,
    };
    const edgeThreshold = s.config.get<number>('circuit.edgeThreshold')!;
    const circuit = await withRunInputs(s, { numExamplesKey: 'circuit.numExamples', batchSizeKey: 'circuit.batchSize' }, async (inputs, onProgress) => {
      if (shard) {
        // The edge threshold is applied at merge; it is recorded so merge can default to it.
        const file = await writeShard(s, out, 'discover', shard, inputs, { ...options, edgeThreshold },
          (batches) => discover(inputs.model, inputs.dictionaries, batches, { ...options, ...inputs.selection, onProgress, signal }), discoveryPartial);
        return shardStatus(argv.out as string, file);
      }
      const result = await discover(inputs.model, inputs.dictionaries, inputs.batches, { ...options, ...inputs.selection, onProgress, signal });
      const c = buildCircuit(result, { edgeThreshold, meta: inputs.meta });
      await writeFileAtomic(out, serializeCircuit(c));
      return c;
    });
    if (typeof circuit === 'string') return s.status(circuit);
    s.status(`wrote ${argv.out as string}: ${circuit.nodes.length - 1} nodes and ${circuit.edges.length} edges `
      + `(node threshold ${circuit.nodeThreshold}, edge threshold ${circuit.edgeThreshold}), ${circuit.numExamples} examples`);
  })),
};
