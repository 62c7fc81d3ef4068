// `--shard i/n` on attribute, discover and evaluate: run the batches b with b mod n = i of the
// whole run and write an sfc.partial/v1 file instead of the result; `sfc merge` adds the
// partials up (core/src/circuit/partial.ts, docs/scale.md). The identity recorded in every
// partial — options, run metadata, fingerprints of the inputs — is what merge compares.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import {
  emptyPartial, parseShard, serializePartial, shardBatchIndices,
  type PartialContext, type PartialFile, type PartialKind, type PromptBatch, type Shard,
} from '@sfc/core';
import type { RunInputs } from './run-inputs.js';
import type { Session } from './session.js';
import { writeFileAtomic } from './write-atomic.js';
import type { GlobalArgs } from './commands/command.js';

type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

export function withShardOption(y: Argv): Argv {
  return y.option('shard', {
    type: 'string', requiresArg: true,
    describe: 'Run shard i of n (i = 0 … n−1; batches b with b mod n = i) and write a partial file to --out for `sfc merge`',
  });
}

/** The --shard argument, or undefined when the run is not sharded. */
export function shardArg(argv: GlobalArgs): Shard | undefined {
  return typeof argv.shard === 'string' ? parseShard(argv.shard) : undefined;
}

export function sha256(bytes: string | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Number of files and bytes under `dir` (cheap: sizes, not contents, of weights that may be GBs). */
function folderSize(dir: string): { files: number; bytes: number } | null {
  try {
    let files = 0, bytes = 0;
    for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      files++;
      bytes += statSync(join(e.parentPath ?? e.path, e.name)).size;
    }
    return { files, bytes };
  } catch {
    return null;
  }
}

function fileHash(path: string): string | null {
  try { return sha256(readFileSync(path)); } catch { return null; }
}

/** What the partials of one run share: the command's options and fingerprints of its inputs. */
export function runIdentity(s: Session, inputs: RunInputs, options: Record<string, JsonValue>): Record<string, JsonValue> {
  const data = s.config.require<string>('data', '--data');
  const dictFolder = s.config.get<string>('dictionaries.folder');
  return {
    options,
    inputs: {
      data: fileHash(data),
      modelConfig: fileHash(join(inputs.model.dir, 'config.json')),
      modelFolder: folderSize(inputs.model.dir),
      dictionaries: dictFolder ? folderSize(dictFolder) : null,
      // Partials of runs on different --submodules selections are different runs.
      ...(inputs.selection.submodules ? { submodules: [...inputs.selection.submodules] } : {}),
    },
  };
}

/**
 * Runs shard `shard` of a run over `inputs.batches` and writes its partial to `out` atomically.
 * `run` gets the shard's batches and their global indices (never called for a shard without
 * batches, which writes an empty partial).
 */
export async function writeShard<R>(s: Session, out: string, kind: PartialKind, shard: Shard, inputs: RunInputs, options: Record<string, JsonValue>,
  run: (batches: PromptBatch[], indices: number[]) => Promise<R>, toPartial: (r: R, ctx: PartialContext) => PartialFile): Promise<PartialFile> {
  const indices = shardBatchIndices(inputs.batches.length, shard);
  const ctx: PartialContext = {
    shard, identity: { kind, ...runIdentity(s, inputs, options) }, meta: inputs.meta,
    batchSizes: inputs.batches.map((b) => b.size), batches: indices,
  };
  const file = indices.length === 0 ? emptyPartial(kind, ctx) : toPartial(await run(indices.map((b) => inputs.batches[b]!), indices), ctx);
  await writeFileAtomic(out, serializePartial(file));
  return file;
}

export function shardStatus(out: string, file: PartialFile): string {
  const { index, count } = file.shard;
  return `wrote ${out}: partial ${index}/${count} of ${file.kind}, ${file.batches.length} of ${file.batchSizes.length} batches (${file.numExamples} examples)`
    + ` — merge all ${count} with \`sfc merge\``;
}
