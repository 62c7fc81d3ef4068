// Test support: the small-a test circuit with a model and SAE record (paths and content hashes),
// as `sfc discover` now writes it, so tests can open a circuit that knows its model.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { contentHash, modelContentHash } from '@sfc/core';

export const SMALL_A = fileURLToPath(new URL('../../../../fixtures/small-a/', import.meta.url)).replace(/\/$/, '');
export const SMALL_A_CIRCUIT = fileURLToPath(new URL('../tui/test-data/small-a-circuit.json', import.meta.url));

const folderOf = (sub: string): string => (sub === 'embed' ? 'embed' : sub.replace(/^(attn|mlp|resid)_(\d+)$/, '$1_out_layer$2'));

/** Writes the small-a circuit with a record of `model` (default small-a) and small-a's SAEs to `path`. */
export async function writeRecordedCircuit(path: string, model = SMALL_A): Promise<void> {
  const c = JSON.parse(readFileSync(SMALL_A_CIRCUIT, 'utf8')) as { submodules: string[] } & Record<string, unknown>;
  const folder = join(SMALL_A, 'dictionaries');
  const saes: Record<string, unknown> = {};
  for (const sub of c.submodules) {
    const dir = join(folder, folderOf(sub));
    saes[sub] = { path: dir, format: 'dictionary-learning/relu', hash: await contentHash(dir) };
  }
  c.model = { path: model, name: 'small-a', architecture: 'gpt_neox', backend: 'tfjs', hash: await modelContentHash(model) };
  c.dictionaries = { folder, formats: {}, saes };
  writeFileSync(path, JSON.stringify(c));
}
