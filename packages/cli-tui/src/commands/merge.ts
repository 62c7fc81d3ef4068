// `sfc merge`: the partial files of a sharded attribute, discover or evaluate run (--shard i/n)
// added up into exactly the file the single-process run writes (docs/scale.md).

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  buildCircuit, effectsToFile, evaluationToFile, InputError, mergePartials, NotFoundError, parsePartial, serializeCircuit, serializeEffects, serializeEvaluation,
  type MergedRun, type NamedPartial, type PartialFile,
} from '@sfc/core';
import { Session } from '../session.js';
import { checkOutputPath, writeFileAtomic } from '../write-atomic.js';
import { formatEvaluationTable } from './evaluate.js';
import type { SfcCommand } from './command.js';

/** A threshold flag, or the one the partials recorded. */
function threshold(flag: unknown, recorded: unknown, name: string): number | undefined {
  if (flag === undefined) return typeof recorded === 'number' ? recorded : undefined;
  const t = Number(flag);
  if (!(Number.isFinite(t) && t >= 0)) throw new InputError(`--${name} must be a number ≥ 0, got ${String(flag)}`);
  return t;
}

/** The merged run as the file the unsharded command writes, and a status line. */
export function mergedOutput(merged: MergedRun, first: PartialFile, flags: { nodeThreshold?: unknown; edgeThreshold?: unknown }): { text: string; status: string; table?: string } {
  const recorded = (first.identity.options ?? {}) as Record<string, unknown>;
  switch (merged.kind) {
    case 'attribute':
      return { text: serializeEffects(effectsToFile(merged.result, merged.meta)), status: `${merged.result.method}, ${merged.result.numExamples} examples, ${merged.result.submodules.length} submodules` };
    case 'discover': {
      const nodeThreshold = threshold(flags.nodeThreshold, undefined, 'node-threshold');
      const edgeThreshold = threshold(flags.edgeThreshold, recorded.edgeThreshold, 'edge-threshold');
      const c = buildCircuit(merged.result, { meta: merged.meta, ...(nodeThreshold !== undefined ? { nodeThreshold } : {}), ...(edgeThreshold !== undefined ? { edgeThreshold } : {}) });
      return { text: serializeCircuit(c), status: `${c.nodes.length - 1} nodes and ${c.edges.length} edges (node threshold ${c.nodeThreshold}, edge threshold ${c.edgeThreshold}), ${c.numExamples} examples` };
    }
    case 'evaluate': {
      const f = evaluationToFile(merged.result, merged.meta);
      return { text: serializeEvaluation(f), status: `${f.rows.length} thresholds, ${f.numExamples} examples`, table: formatEvaluationTable(f.rows) };
    }
  }
}

export async function readPartials(cwd: string, paths: readonly string[]): Promise<NamedPartial[]> {
  return Promise.all(paths.map(async (p) => {
    const path = resolve(cwd, p);
    if (!existsSync(path)) throw new NotFoundError(`partial file ${p} does not exist`, 'write partials with `sfc attribute|discover|evaluate --shard i/n --out FILE`');
    return { file: parsePartial(await readFile(path), p), source: p };
  }));
}

export const mergeCommand: SfcCommand = {
  command: 'merge <partials..>',
  describe: 'Merge the partial files of a sharded attribute, discover or evaluate run (--shard i/n) into the single-process result',
  options: ['out'],
  required: ['out'],
  builder: (y) => y
    .positional('partials', { type: 'string', array: true, describe: 'Every shard\'s partial file (sfc.partial/v1), in any order' })
    .option('node-threshold', { requiresArg: true, describe: 'discover: circuit node threshold (default: the run\'s --node-threshold)' })
    .option('edge-threshold', { requiresArg: true, describe: 'discover: edge threshold (default: the run\'s --edge-threshold)' }),
  examples: [
    ['$0 merge part-*.safetensors --out circuit.json', 'The circuit of a 4-shard `sfc discover --shard i/4` run'],
    ['$0 merge eval-part-*.safetensors --out eval.json', 'Faithfulness and completeness of a sharded `sfc evaluate`'],
  ],
  run: async (argv, io) => {
    const s = await Session.open(io, argv, []);
    const out = resolve(io.cwd, argv.out as string);
    checkOutputPath(out);
    const parts = await readPartials(io.cwd, argv.partials as string[]);
    const merged = mergePartials(parts);
    const { text, status, table } = mergedOutput(merged, parts[0]!.file, { nodeThreshold: argv['node-threshold'], edgeThreshold: argv['edge-threshold'] });
    await writeFileAtomic(out, text);
    if (table) io.stdout.write(table);
    s.status(`wrote ${argv.out as string}: merged ${parts.length} partials of ${merged.kind}: ${status}`);
  },
};
