// Inputs of the circuit commands (attribute, discover, evaluate), loaded in one order with one set
// of messages: the model, the examples of the data file in batches, the dictionaries, and the
// run metadata recorded in every output file.

import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import {
  batchExamples, describeSkips, NotFoundError, recordInputs, selectExamples,
  type Dictionary, type Example, type Model, type PromptBatch, type RunMetadata,
} from '@sfc/core';
import { loadModelDictionaries, submoduleSelection } from './dictionaries.js';
import type { ProgressReporter } from './progress.js';
import type { Session } from './session.js';

export interface RunInputs {
  readonly model: Model;
  readonly batches: PromptBatch[];
  readonly dictionaries: Map<string, Dictionary>;
  readonly meta: RunMetadata;
  /**
   * The algorithms' `submodules` option: the --submodules / dictionaries.only selection, or {}
   * (every submodule) — spread it into attribute/discover options.
   */
  readonly selection: { readonly submodules?: readonly string[] };
  /** Releases the dictionaries (the session releases the model and backend). */
  dispose(): void;
}

export interface RunInputOptions {
  /** Config keys for the example count and batch size (attribute/discover vs evaluate). */
  readonly numExamplesKey: 'circuit.numExamples' | 'evaluate.numExamples';
  readonly batchSizeKey: 'circuit.batchSize' | 'evaluate.batchSize';
  /** Load dictionaries only for these submodules (default: every submodule). */
  readonly only?: readonly string[];
}

export interface DataBatches {
  readonly batches: PromptBatch[];
  /** The selected examples; PromptBatch.exampleIndex indexes them. */
  readonly examples: readonly Example[];
  /** What RunMetadata.data records. */
  readonly meta: NonNullable<RunMetadata['data']>;
}

/** The examples of the data file (config `data` / --data) in batches, with the status line every command prints. */
export async function loadDataBatches(s: Session, model: Model, options: Pick<RunInputOptions, 'numExamplesKey' | 'batchSizeKey'>): Promise<DataBatches> {
  const dataPath = s.config.require<string>('data', '--data');
  let text: string;
  try {
    text = await readFile(dataPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NotFoundError(`data file ${dataPath} does not exist`,
        'pass --data FILE with JSON lines of pairs {clean_prefix, patch_prefix, clean_answer, patch_answer} or of single prompts {clean_prefix, clean_answer}, or a cluster JSON {"<id>": {"context": [...], "answer": " x"}}');
    }
    throw e;
  }
  const asked = s.config.get<number>(options.numExamplesKey);
  const seed = s.config.get<number>('circuit.seed')!;
  const minLengthOnly = s.config.get<boolean>('circuit.minLengthOnly')!;
  const selection = selectExamples(text, model.tokenizer, {
    // Unset means every usable example (a cluster JSON file may be one line).
    numExamples: asked ?? Number.MAX_SAFE_INTEGER,
    seed, minLengthOnly, source: basename(dataPath), maxLength: model.spec.dims.maxPositions,
    ...(asked !== undefined ? { onWarning: s.warn } : {}),
  });
  const batchSize = s.config.get<number>(options.batchSizeKey)!;
  const batches = batchExamples(selection.examples, batchSize);
  const n = selection.examples.length;
  const padded = batches.some((b) => b.lengths !== undefined) ? ', right-padded (mixed lengths)' : '';
  // Single prompts are taken in file order with every length (the reference's --nopair): seed and
  // --min-length-only do not apply to them.
  const what = selection.paired ? `${n} examples` : `${n} single prompt${n === 1 ? '' : 's'} (file order, all lengths)`;
  s.status(`data: ${what} from ${basename(dataPath)} (${selection.lines} ${selection.paired ? 'lines' : 'entries'}, ${describeSkips(selection.skipped)}), ${batches.length} batch${batches.length === 1 ? '' : 'es'}${padded}`);
  return {
    batches, examples: selection.examples,
    meta: {
      path: dataPath, kind: selection.paired ? 'pairs' : 'single-prompts',
      ...(selection.paired ? { seed, minLengthOnly } : {}), requested: asked ?? null, used: n, skipped: selection.skipped,
    },
  };
}

/**
 * What every output file records about the run's model and SAEs (paths and content hashes: it lets
 * a circuit reopen its own inputs); RunMetadata without `data`. Hashing reads every weight file:
 * compute it once per model and dictionaries.
 */
export function inputsMetadata(s: Session, model: Model, dictionaries: ReadonlyMap<string, Dictionary>): Promise<Omit<RunMetadata, 'data'>> {
  return recordInputs(model, dictionaries, s.config.get<string>('dictionaries.folder') ?? null);
}

async function loadRunInputs(s: Session, options: RunInputOptions): Promise<RunInputs> {
  s.config.require<string>('data', '--data');
  const model = await s.model();
  const data = await loadDataBatches(s, model, options);
  const dictionaries = await loadModelDictionaries(s, model, options.only ? { only: options.only } : {});
  const meta: RunMetadata = { ...await inputsMetadata(s, model, dictionaries), data: data.meta };
  return {
    model, batches: data.batches, dictionaries, meta, selection: submoduleSelection(s, model),
    dispose: () => { for (const d of dictionaries.values()) d.dispose(); },
  };
}

/**
 * Loads the inputs, runs `fn` with them and a progress display, and always releases both (the
 * progress block is closed before any error is printed).
 */
export async function withRunInputs<T>(s: Session, options: RunInputOptions, fn: (inputs: RunInputs, onProgress: ProgressReporter['onProgress']) => Promise<T>): Promise<T> {
  const inputs = await loadRunInputs(s, options);
  const progress = s.progress();
  try {
    return await fn(inputs, progress.onProgress);
  } finally {
    progress.finish();
    inputs.dispose();
  }
}
