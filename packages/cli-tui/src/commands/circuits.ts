// `sfc circuits`: one circuit per data file of a folder (e.g. one file per cluster), written to an
// output folder — idempotent (finished circuits are skipped, each written atomically, so a crashed
// task leaves nothing that looks finished) and split over the tasks of a job array by index
// (--task N, or --task-from-env: SLURM_ARRAY_TASK_ID or Kubernetes' JOB_COMPLETION_INDEX). The
// model and SAEs are loaded once per task. docs/scale.md.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import {
  buildCircuit, discover, InputError, NotFoundError, parseCircuit, SfcError, serializeCircuit, type Model, type Dictionary, type RunMetadata,
} from '@sfc/core';
import { resolveConfig } from '../config/config.js';
import { loadModelDictionaries, submoduleSelection } from '../dictionaries.js';
import { flagValues, type OptionId } from '../options.js';
import { inputsMetadata, loadDataBatches } from '../run-inputs.js';
import { Session } from '../session.js';
import { writeFileAtomic } from '../write-atomic.js';
import { withInterrupt } from './interrupt.js';
import type { GlobalArgs, SfcCommand } from './command.js';

const OPTIONS: OptionId[] = ['model', 'dictionaries', 'dictRun', 'submodules', 'steps', 'aggregation', 'nodeThreshold', 'edgeThreshold', 'numExamples', 'batchSize', 'seed', 'minLengthOnly', 'backend'];

/** Data files sfc reads: JSON lines (pairs or single prompts) and cluster JSON. */
const DATA_EXTENSIONS = new Set(['.jsonl', '.json']);

/** The data files of `dir`, sorted by name (the task → file mapping must not depend on the machine). */
export function dataFiles(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new NotFoundError(`data folder ${dir} does not exist`, 'give a folder of data files (.jsonl or cluster .json)');
  // Circuit files are never data (the output folder may be the data folder).
  const files = readdirSync(dir).filter((f) => !f.startsWith('.') && !f.endsWith('.circuit.json') && DATA_EXTENSIONS.has(extname(f).toLowerCase())
    && statSync(join(dir, f)).isFile()).sort();
  if (files.length === 0) throw new InputError(`data folder ${dir} has no .jsonl or .json files`, 'put one data file per circuit in the folder');
  return files;
}

/** The circuit file of data file `file`: `<name>.circuit.json`. */
export function circuitFileName(file: string): string {
  return `${basename(file, extname(file))}.circuit.json`;
}

/** A finished circuit file: present and a complete sfc.circuit/v1 (atomic writes never leave anything else). */
function finished(path: string): boolean {
  if (!existsSync(path)) return false;
  try { parseCircuit(readFileSync(path, 'utf8'), path); return true; } catch { return false; }
}

const int = (v: string, what: string): number => {
  if (!/^\d+$/.test(v.trim())) throw new InputError(`${what} must be an integer ≥ 0, got ${JSON.stringify(v)}`);
  return Number(v);
};

/**
 * This task's index and the number of tasks: --task / --tasks, or with --task-from-env
 * SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN; tasks default SLURM_ARRAY_TASK_COUNT) or
 * JOB_COMPLETION_INDEX. undefined: every file.
 */
export function taskSelection(argv: GlobalArgs, env: NodeJS.ProcessEnv): { task: number; tasks: number | undefined; from: string } | undefined {
  const tasksFlag = argv.tasks === undefined ? undefined : int(String(argv.tasks), '--tasks');
  if (tasksFlag === 0) throw new InputError('--tasks must be ≥ 1');
  if (argv['task-from-env']) {
    if (env.SLURM_ARRAY_TASK_ID !== undefined) {
      const min = env.SLURM_ARRAY_TASK_MIN !== undefined ? int(env.SLURM_ARRAY_TASK_MIN, 'SLURM_ARRAY_TASK_MIN') : 0;
      const count = env.SLURM_ARRAY_TASK_COUNT !== undefined ? int(env.SLURM_ARRAY_TASK_COUNT, 'SLURM_ARRAY_TASK_COUNT') : undefined;
      return { task: int(env.SLURM_ARRAY_TASK_ID, 'SLURM_ARRAY_TASK_ID') - min, tasks: tasksFlag ?? count, from: 'SLURM_ARRAY_TASK_ID' };
    }
    if (env.JOB_COMPLETION_INDEX !== undefined) return { task: int(env.JOB_COMPLETION_INDEX, 'JOB_COMPLETION_INDEX'), tasks: tasksFlag, from: 'JOB_COMPLETION_INDEX' };
    throw new InputError('--task-from-env: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set',
      'run it as a Slurm array task (sbatch --array) or a Kubernetes Indexed Job, or pass --task N');
  }
  if (argv.task !== undefined) return { task: int(String(argv.task), '--task'), tasks: tasksFlag, from: '--task' };
  if (tasksFlag !== undefined) throw new InputError('--tasks needs --task N or --task-from-env');
  return undefined;
}

/** The files task `task` of `tasks` computes: indices i with i mod tasks = task (tasks default: one file per task). */
export function taskFiles(files: readonly string[], sel: { task: number; tasks: number | undefined } | undefined): string[] {
  if (!sel) return [...files];
  const tasks = sel.tasks ?? files.length;
  if (sel.task >= tasks) return [];
  return files.filter((_, i) => i % tasks === sel.task);
}

/** What a task loads once for all its files: the model, its SAEs, and their record for the circuits' metadata. */
interface Loaded {
  readonly model: Model;
  readonly dictionaries: Map<string, Dictionary>;
  readonly inputs: Omit<RunMetadata, 'data'>;
  /** discover's `submodules` option (--submodules / dictionaries.only). */
  readonly selection: { readonly submodules?: readonly string[] };
}

async function runFile(s: Session, argv: GlobalArgs, io: { cwd: string }, { model, dictionaries, inputs, selection }: Loaded, dataPath: string, out: string, signal: AbortSignal): Promise<string> {
  // This file's config: the command's flags plus --data, so selection and batching are exactly `sfc discover --data FILE`'s.
  const config = await resolveConfig({ cwd: io.cwd, configPath: argv.config, flags: [...flagValues(argv, OPTIONS), { key: 'data', flag: '--data', raw: dataPath }] });
  const fs = new Session(s.io, argv, config);
  const data = await loadDataBatches(fs, model, { numExamplesKey: 'circuit.numExamples', batchSizeKey: 'circuit.batchSize' });
  const progress = fs.progress();
  try {
    const result = await discover(model, dictionaries, data.batches, {
      ...selection,
      nodeThreshold: config.get<number>('circuit.nodeThreshold')!,
      aggregation: config.get<'sum' | 'none'>('circuit.aggregation')!,
      steps: config.get<number>('circuit.steps')!,
      onProgress: progress.onProgress, signal,
    });
    const c = buildCircuit(result, { edgeThreshold: config.get<number>('circuit.edgeThreshold')!, meta: { ...inputs, data: data.meta } });
    await writeFileAtomic(out, serializeCircuit(c));
    return `${c.nodes.length - 1} nodes, ${c.edges.length} edges, ${c.numExamples} examples`;
  } finally {
    progress.finish();
  }
}

export const circuitsCommand: SfcCommand = {
  command: 'circuits <data-dir>',
  describe: 'One circuit per data file of a folder (e.g. clusters), written to --out-dir; finished ones skipped; split over job-array tasks with --task / --task-from-env',
  options: OPTIONS,
  builder: (y) => y
    .positional('data-dir', { type: 'string', describe: 'Folder of data files (.jsonl pairs or single prompts, cluster .json), one circuit each' })
    .option('out-dir', { type: 'string', requiresArg: true, demandOption: true, describe: 'Folder for the circuits: <name>.circuit.json per data file <name>.jsonl/.json' })
    .option('task', { requiresArg: true, describe: 'Compute only the files of task N (files sorted by name; file i belongs to task i mod --tasks)' })
    .option('tasks', { requiresArg: true, describe: 'Number of tasks (default: one file per task; with Slurm, SLURM_ARRAY_TASK_COUNT)' })
    .option('task-from-env', { type: 'boolean', describe: 'Take the task index from SLURM_ARRAY_TASK_ID (Slurm job array) or JOB_COMPLETION_INDEX (Kubernetes Indexed Job)' })
    .conflicts('task', 'task-from-env'),
  examples: [
    ['$0 circuits clusters/ --out-dir circuits/', 'Every cluster file, one after the other (reruns skip finished circuits)'],
    ['$0 circuits clusters/ --out-dir circuits/ --task-from-env', 'In a job array: task i computes file i (sbatch --array=0-99, or an Indexed Job)'],
    ['$0 circuits clusters/ --out-dir circuits/ --task 3 --tasks 10', 'Task 3 of 10: files 3, 13, 23, …'],
  ],
  run: (argv, io) => withInterrupt((signal) => Session.with(io, argv, OPTIONS, async (s) => {
    const dir = resolve(io.cwd, argv['data-dir'] as string);
    const outDir = resolve(io.cwd, argv['out-dir'] as string);
    if (!existsSync(outDir) || !statSync(outDir).isDirectory()) throw new NotFoundError(`output folder ${outDir} does not exist`, 'create it first (mkdir -p)');
    const files = dataFiles(dir);
    const sel = taskSelection(argv, process.env);
    const mine = taskFiles(files, sel);
    const who = sel ? `task ${sel.task} (${sel.from}) of ${sel.tasks ?? files.length}` : 'all files';
    const todo = mine.filter((f) => !finished(join(outDir, circuitFileName(f))));
    s.status(`circuits: ${files.length} data files in ${argv['data-dir'] as string}; ${who}: ${mine.length} file${mine.length === 1 ? '' : 's'}, ${mine.length - todo.length} already finished`);
    if (todo.length === 0) return;
    const model = await s.model();
    const dictionaries = await loadModelDictionaries(s, model);
    const failed: [string, unknown][] = [];
    try {
      const loaded: Loaded = { model, dictionaries, inputs: await inputsMetadata(s, model, dictionaries), selection: submoduleSelection(s, model) };
      for (const f of todo) {
        const out = join(outDir, circuitFileName(f));
        try {
          const what = await runFile(s, argv, io, loaded, join(dir, f), out, signal);
          s.status(`wrote ${circuitFileName(f)}: ${what}`);
        } catch (e) {
          if (signal.aborted || !(e instanceof SfcError)) throw e;
          s.warn(`${f}: ${e.message}${e.hint ? ` (${e.hint})` : ''}`);
          failed.push([f, e]);
        }
      }
    } finally {
      for (const d of dictionaries.values()) d.dispose();
    }
    if (failed.length > 0) {
      const first = failed[0]![1] as SfcError;
      throw Object.assign(first, { message: `${failed.length} of ${todo.length} data files failed (first: ${failed[0]![0]}): ${first.message}` });
    }
  })),
};
