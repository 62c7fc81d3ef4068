// `sfc evaluate`: faithfulness and completeness of the circuits a circuit or effects file gives
// at each node threshold (ablating everything else), as a table and as sfc.eval/v1.

import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  circuitNodeEffects, effectsFromFile, evaluate, evaluationPartial, evaluationToFile, NotFoundError, parseCircuit, parseEffects, serializeEvaluation,
  type Ablation, type ErrorHandling, type EvaluationRow, type NodeEffects,
} from '@sfc/core';
import { UsageError } from '../error-format.js';
import { withRunInputs } from '../run-inputs.js';
import { sha256, shardArg, shardStatus, withShardOption, writeShard } from '../shard.js';
import { withInterrupt } from './interrupt.js';
import { Session } from '../session.js';
import { checkOutputPath, writeFileAtomic } from '../write-atomic.js';
import type { OptionId } from '../options.js';
import type { SfcCommand } from './command.js';
import { fixed } from '../number-format.js';

const OPTIONS: OptionId[] = ['model', 'dictionaries', 'dictRun', 'submodules', 'data', 'evalNumExamples', 'evalBatchSize', 'ablation', 'handleErrors', 'startLayer', 'includeEmbed', 'thresholds', 'seed', 'minLengthOnly', 'backend'];

async function readEffects(path: string, kind: 'circuit' | 'effects'): Promise<{ effects: Map<string, NodeEffects>; hash: string }> {
  if (!existsSync(path)) throw new NotFoundError(`${kind} file ${path} does not exist`, kind === 'circuit' ? 'write one with `sfc discover --out FILE`' : 'write one with `sfc attribute --out FILE`');
  const text = await readFile(path, 'utf8');
  return { effects: kind === 'circuit' ? circuitNodeEffects(parseCircuit(text, path)) : effectsFromFile(parseEffects(text, path)), hash: sha256(text) };
}

const num = (x: number | null, w: number) => (x === null ? 'n/a' : fixed(x, 4)).padStart(w);

export function formatEvaluationTable(rows: readonly EvaluationRow[]): string {
  const head = `${'threshold'.padStart(10)} ${'nodes'.padStart(7)} ${'faithfulness'.padStart(13)} ${'completeness'.padStart(13)} ${'m(C)'.padStart(10)} ${'m(M\\C)'.padStart(10)}`;
  const lines = rows.map((r) => `${String(r.threshold).padStart(10)} ${String(r.nodes).padStart(7)} ${num(r.faithfulness, 13)} ${num(r.completeness, 13)} ${num(r.mCircuit, 10)} ${num(r.mComplement, 10)}`);
  const r0 = rows[0];
  const tail = r0 ? `m(M) full model ${fixed(r0.mFull, 4)}, m(∅) everything ablated ${fixed(r0.mEmpty, 4)}` : '';
  return `${head}\n${lines.join('\n')}\n${tail}\n`;
}

export const evaluateCommand: SfcCommand = {
  command: 'evaluate',
  describe: 'Faithfulness and completeness of a circuit at several node thresholds (table, and sfc.eval/v1 with --out)',
  options: [...OPTIONS, 'json'],
  builder: (y) => withShardOption(y)
    .option('circuit', { type: 'string', requiresArg: true, describe: 'Circuit file (sfc.circuit/v1) whose node effects rank the nodes' })
    .option('effects', { type: 'string', requiresArg: true, describe: 'Effects file (sfc.effects/v1) instead of a circuit' })
    .option('out', { type: 'string', requiresArg: true, describe: 'Also write the rows as sfc.eval/v1 (atomically)' })
    .conflicts('circuit', 'effects'),
  examples: [
    ['$0 evaluate --circuit circuit.json --data fixtures/small-a/data.jsonl --thresholds 0.01,0.1,1', 'Faithfulness of the circuit at three thresholds'],
    ['$0 evaluate --effects effects.json --ablation zero --handle-errors keep --out eval.json', 'Zero ablation, SAE errors kept live'],
    ['$0 evaluate --circuit circuit.json --shard 0/2 --out part-0.safetensors', 'Shard 0 of 2 (mean ablation values still from every example); then `sfc merge`'],
  ],
  run: (argv, io) => withInterrupt((signal) => Session.with(io, argv, OPTIONS, async (s) => {
    const source = argv.circuit ? 'circuit' : argv.effects ? 'effects' : undefined;
    if (!source) throw new UsageError('give --circuit FILE or --effects FILE', 'the file ranks the nodes; write it with `sfc discover` or `sfc attribute`');
    const out = argv.out ? resolve(io.cwd, argv.out as string) : undefined;
    if (out) checkOutputPath(out);
    const shard = shardArg(argv);
    if (shard && !out) throw new UsageError('--shard needs --out FILE (the partial file)', 'e.g. --shard 0/4 --out part-0.safetensors, then `sfc merge part-*.safetensors --out eval.json`');
    const { effects, hash } = await readEffects(resolve(io.cwd, argv[source] as string), source);
    const kind = s.config.get<Ablation['kind']>('evaluate.ablation')!;
    const ablation: Ablation = kind === 'resample' ? { kind, seed: s.config.get<number>('circuit.seed')! } : { kind };
    const startLayer = s.config.get<number>('evaluate.startLayer');
    const options = { numExamplesKey: 'evaluate.numExamples', batchSizeKey: 'evaluate.batchSize', only: [...effects.keys()] } as const;
    const thresholds = s.config.get<number[]>('evaluate.thresholds')!;
    const handleErrors = s.config.get<ErrorHandling>('evaluate.handleErrors')!;
    const includeEmbed = s.config.get<boolean>('evaluate.includeEmbed') === true;
    const file = await withRunInputs(s, options, async (inputs, onProgress) => {
      const run = (onlyBatches?: number[]) => evaluate(inputs.model, inputs.dictionaries, inputs.batches, {
        effects, thresholds, ablation, handleErrors,
        ...(startLayer !== undefined ? { startLayer } : {}),
        ...(onlyBatches ? { onlyBatches } : {}),
        includeEmbed,
        onProgress, signal,
      });
      if (shard) {
        const identity = { [source]: hash, thresholds, ablation: kind, seed: ablation.kind === 'resample' ? ablation.seed ?? null : null, handleErrors, startLayer: startLayer ?? null, includeEmbed };
        const part = await writeShard(s, out!, 'evaluate', shard, inputs, identity, (_b, indices) => run(indices), evaluationPartial);
        return shardStatus(argv.out as string, part);
      }
      const result = await run();
      const f = evaluationToFile(result, inputs.meta);
      if (out) await writeFileAtomic(out, serializeEvaluation(f));
      return f;
    });
    if (typeof file === 'string') return s.status(file);
    io.stdout.write(argv.json ? `${JSON.stringify(file, null, 2)}\n` : formatEvaluationTable(file.rows));
    if (out) s.status(`wrote ${argv.out as string}`);
  })),
};
