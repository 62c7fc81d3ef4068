// `sfc dict info`: what a dictionary folder holds — format, architecture, widths, hook — for one
// SAE or a folder of per-submodule SAEs (matched to a model's submodules when --model is given).

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isSfcError, NotFoundError, type Dictionary } from '@sfc/core';
import { describeDictionary, DictionaryRegistry, type DictionaryDescription } from '@sfc/dictionaries';
import { dictionaryPlugins, loadModelDictionaries } from '../dictionaries.js';
import { Session } from '../session.js';
import type { SfcCommand } from './command.js';

interface Entry { readonly name: string; readonly description?: DictionaryDescription; readonly problem?: string }

function formatEntries(dir: string, entries: readonly Entry[]): string {
  const w = Math.max(4, ...entries.map((e) => e.name.length));
  const lines = [`dictionaries in ${dir}`];
  for (const e of entries) {
    if (!e.description) { lines.push(`  ${e.name.padEnd(w)}  (skipped: ${e.problem})`); continue; }
    const d = e.description;
    const extra = Object.entries(d.details).map(([k, v]) => `${k}=${v}`).join(' ');
    lines.push(`  ${e.name.padEnd(w)}  ${d.format}/${d.architecture}  d_in ${d.dIn}  d_sae ${d.dSae}${d.hook ? `  hook ${d.hook}` : ''}${extra ? `  ${extra}` : ''}`);
  }
  return lines.join('\n') + '\n';
}

const infoCommand: SfcCommand = {
  command: 'info [dir]',
  describe: 'Describe one SAE folder, or a folder of per-submodule SAEs (format, architecture, widths, hook)',
  options: ['model', 'backend', 'json'],
  builder: (y) => y.positional('dir', { type: 'string', describe: 'SAE folder (default: dictionaries.folder of the config)' }),
  examples: [
    ['$0 dict info fixtures/small-a/saelens/resid_out_layer0', 'One SAELens SAE'],
    ['$0 dict info fixtures/small-a/dictionaries --model fixtures/small-a', 'Every SAE, matched to the model\'s submodules'],
  ],
  run: async (argv, io) => {
    const ids = ['model', 'backend', 'dictionaries'] as const;
    await Session.with(io, { ...argv, ...(argv.dir ? { dictionaries: argv.dir } : {}) }, ids, async (s) => {
      const dir = s.config.require<string>('dictionaries.folder', '<dir>');
      if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new NotFoundError(`dictionary folder ${dir} does not exist`, 'give a folder holding an SAE, or a folder of per-submodule SAE folders');
      const entries: Entry[] = [];
      const loaded: Dictionary[] = [];
      try {
        const registry = new DictionaryRegistry(await dictionaryPlugins(s));
        const one = (await registry.detectAll(dir)).some((d) => d.detection.ok);
        if (!one && s.config.get('model') !== undefined) {
          const model = await s.model();
          for (const [name, d] of await loadModelDictionaries(s, model)) { loaded.push(d); entries.push({ name, description: describeDictionary(d) }); }
        } else {
          const ops = (await s.backend()).ops;
          const targets = one ? [['.', dir] as const] : readdirSync(dir).filter((n) => statSync(join(dir, n)).isDirectory()).sort().map((n) => [n, join(dir, n)] as const);
          for (const [name, path] of targets) {
            try {
              const d = await registry.load(path, { ops, warn: s.warn });
              loaded.push(d);
              entries.push({ name, description: describeDictionary(d) });
            } catch (e) {
              if (one || !isSfcError(e)) throw e;
              entries.push({ name, problem: e.message });
            }
          }
        }
      } finally {
        for (const d of loaded) d.dispose();
      }
      io.stdout.write(argv.json
        ? `${JSON.stringify({ schema: 'sfc.dict-info/v1', dir: resolve(dir), dictionaries: entries }, null, 2)}\n`
        : formatEntries(dir, entries));
    });
  },
};

export const dictCommand: SfcCommand = {
  command: 'dict',
  describe: 'Inspect SAE dictionaries',
  examples: [['$0 dict info fixtures/small-a/saelens/embed', 'Describe one SAE']],
  subcommands: [infoCommand],
};
