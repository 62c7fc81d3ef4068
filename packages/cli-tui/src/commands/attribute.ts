// `sfc attribute`: node effects of every SAE feature and error term (attrib, ig or exact),
// written as sfc.effects/v1 with the full dense effects per submodule.

import { resolve } from 'node:path';
import { attribute, attributionPartial, effectsToFile, serializeEffects, type AttributionMethod } from '@sfc/core';
import { shardArg, shardStatus, withShardOption, writeShard } from '../shard.js';
import { withRunInputs } from '../run-inputs.js';
import { withInterrupt } from './interrupt.js';
import { Session } from '../session.js';
import { checkOutputPath, writeFileAtomic } from '../write-atomic.js';
import type { OptionId } from '../options.js';
import type { SfcCommand } from './command.js';

const OPTIONS: OptionId[] = ['model', 'dictionaries', 'dictRun', 'submodules', 'data', 'method', 'steps', 'aggregation', 'numExamples', 'batchSize', 'seed', 'minLengthOnly', 'backend'];

export const attributeCommand: SfcCommand = {
  command: 'attribute',
  describe: 'Node effects of every SAE feature and error term on the metric (sfc.effects/v1)',
  options: [...OPTIONS, 'out'],
  required: ['out'],
  builder: withShardOption,
  examples: [
    ['$0 attribute --model fixtures/small-a --dictionaries fixtures/small-a/dictionaries --data fixtures/small-a/data.jsonl --method ig --out effects.json', 'Integrated-gradient effects, summed over positions'],
    ['$0 attribute --method exact --aggregation none --num-examples 8 --out exact.json', 'Ground-truth effects per position (model etc. from sfc.config.json)'],
    ['$0 attribute --method ig --shard 1/3 --out part-1.safetensors', 'Shard 1 of 3; then `sfc merge part-*.safetensors --out effects.json`'],
  ],
  run: (argv, io) => withInterrupt((signal) => Session.with(io, argv, OPTIONS, async (s) => {
    const out = resolve(io.cwd, argv.out as string);
    checkOutputPath(out);
    const kind = s.config.get<'attrib' | 'ig' | 'exact'>('circuit.method')!;
    const method: AttributionMethod = kind === 'ig' ? { kind, steps: s.config.get<number>('circuit.steps')! } : { kind };
    const aggregation = s.config.get<'sum' | 'none'>('circuit.aggregation')!;
    const shard = shardArg(argv);
    const result = await withRunInputs(s, { numExamplesKey: 'circuit.numExamples', batchSizeKey: 'circuit.batchSize' }, async (inputs, onProgress) => {
      const run = (batches: typeof inputs.batches) => attribute(inputs.model, inputs.dictionaries, batches, { ...inputs.selection, method, aggregation, onProgress, signal });
      if (shard) {
        const file = await writeShard(s, out, 'attribute', shard, inputs, { method: kind, steps: method.kind === 'ig' ? method.steps ?? null : null, aggregation }, run, attributionPartial);
        return shardStatus(argv.out as string, file);
      }
      const result = await run(inputs.batches);
      await writeFileAtomic(out, serializeEffects(effectsToFile(result, inputs.meta)));
      return result;
    });
    if (typeof result === 'string') return s.status(result);
    const te = result.totalEffect === null ? '' : `, total effect ${result.totalEffect.toPrecision(4)}`;
    s.status(`wrote ${argv.out as string}: ${result.method}${result.steps ? ` (${result.steps} steps)` : ''}, ${result.numExamples} examples, ${result.submodules.length} submodules; metric ${result.metricClean.toPrecision(4)} clean${te}`);
  })),
};
