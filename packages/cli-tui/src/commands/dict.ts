// `sfc dict info`: what a dictionary folder holds — format, architecture, widths, hook — for one
// SAE or a folder of per-submodule SAEs (matched to a model's submodules when --model is given);
// with --model and --text also how well each fits that text's activations (L0, FVE).

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InputError, isSfcError, NotFoundError, resolveSubmoduleAlias, sanitizeMessage, type Dictionary, type Model } from '@sfc/core';
import { describeDictionary, DictionaryRegistry, type DictionaryDescription } from '@sfc/dictionaries';
import { dictionaryPlugins, loadModelDictionaries } from '../dictionaries.js';
import { Session } from '../session.js';
import type { SfcCommand } from './command.js';
import { dictionaryFits, type DictionaryFit } from './dict-fit.js';
import { dictTopCommand } from './dict-top.js';
import { fixed } from '../number-format.js';

interface Entry { readonly name: string; readonly description?: DictionaryDescription; readonly problem?: string; fit?: DictionaryFit; submodule?: string }

const fmt = (v: number, digits: number) => (Number.isFinite(v) ? fixed(v, digits) : 'n/a');

function formatEntries(dir: string, entries: readonly Entry[]): string {
  const w = Math.max(4, ...entries.map((e) => e.name.length));
  const lines = [`dictionaries in ${dir}`];
  const fitted = entries.find((e) => e.fit);
  if (fitted) lines.push(`  (L0: mean active features per token; FVE: fraction of variance explained, over ${fitted.fit!.tokens} tokens of --text)`);
  for (const e of entries) {
    if (!e.description) { lines.push(`  ${e.name.padEnd(w)}  (skipped: ${e.problem})`); continue; }
    const d = e.description;
    const extra = Object.entries(d.details).map(([k, v]) => `${k}=${v}`).join(' ');
    const fit = e.fit ? `  L0 ${fmt(e.fit.l0, 2)}  FVE ${fmt(e.fit.fve, 4)}` : '';
    lines.push(`  ${e.name.padEnd(w)}  ${d.format}/${d.architecture}  d_in ${d.dIn}  d_sae ${d.dSae}${d.hook ? `  hook ${d.hook}` : ''}${extra ? `  ${extra}` : ''}${fit}`);
  }
  // Folder names, hooks and details come from the files: no terminal escapes, no megabyte lines.
  return lines.map((l) => sanitizeMessage(l, 1000)).join('\n') + '\n';
}

const infoCommand: SfcCommand = {
  command: 'info [dir]',
  describe: 'Describe one SAE folder, or a folder of per-submodule SAEs (format, architecture, widths, hook); with --model and --text also L0 and fraction of variance explained on that text',
  options: ['model', 'backend', 'json', 'text'],
  builder: (y) => y.positional('dir', { type: 'string', describe: 'SAE folder (default: dictionaries.folder of the config)' }),
  examples: [
    ['$0 dict info fixtures/small-a/saelens/resid_out_layer0', 'One SAELens SAE'],
    ['$0 dict info fixtures/small-a/dictionaries --model fixtures/small-a', 'Every SAE, matched to the model\'s submodules'],
    ['$0 dict info fixtures/small-a/saelens --model fixtures/small-a --text "The parents that the guards know"', 'How sparse each SAE is (L0) and how much variance it explains (FVE) on a prompt'],
  ],
  run: async (argv, io) => {
    const ids = ['model', 'backend', 'dictionaries', 'submodules'] as const;
    await Session.with(io, { ...argv, ...(argv.dir ? { dictionaries: argv.dir } : {}) }, ids, async (s) => {
      const dir = s.config.require<string>('dictionaries.folder', '<dir>');
      if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new NotFoundError(`dictionary folder ${dir} does not exist`, 'give a folder holding an SAE, or a folder of per-submodule SAE folders');
      const text = typeof argv.text === 'string' ? argv.text : undefined;
      if (text !== undefined && s.config.get('model') === undefined) {
        throw new InputError('--text needs a model to compute activations', 'add --model DIR (the model the dictionaries were trained on)');
      }
      const entries: Entry[] = [];
      const loaded: Dictionary[] = [];
      const dictOf = new Map<Entry, Dictionary>();
      const add = (e: Entry, d: Dictionary) => { loaded.push(d); entries.push(e); dictOf.set(e, d); };
      try {
        const registry = new DictionaryRegistry(await dictionaryPlugins(s));
        const one = (await registry.detectAll(dir)).some((d) => d.detection.ok);
        let model: Model | undefined;
        if (!one && s.config.get('model') !== undefined) {
          model = await s.model();
          for (const [name, d] of await loadModelDictionaries(s, model)) add({ name, description: describeDictionary(d), submodule: name }, d);
        } else {
          if (text !== undefined) model = await s.model();
          const ops = model ? model.ops : (await s.backend()).ops;
          const targets = one ? [['.', dir] as const] : readdirSync(dir).filter((n) => statSync(join(dir, n)).isDirectory()).sort().map((n) => [n, join(dir, n)] as const);
          for (const [name, path] of targets) {
            try {
              const d = await registry.load(path, { ops, warn: s.warn, ...(model ? { dIn: model.spec.dims.dModel } : {}) });
              const sub = model && d.hook !== undefined ? resolveSubmoduleAlias(d.hook, model.submodules)?.name : undefined;
              add({ name, description: describeDictionary(d), ...(sub ? { submodule: sub } : {}) }, d);
            } catch (e) {
              if (one || !isSfcError(e)) throw e;
              entries.push({ name, problem: e.message });
            }
          }
        }
        if (text !== undefined && model) {
          const fitted = entries.filter((e) => e.submodule !== undefined);
          const skipped = entries.filter((e) => e.description && e.submodule === undefined).map((e) => e.name);
          if (skipped.length) s.warn(`no L0/FVE for ${skipped.join(', ')}: the dictionary names no hook of this model's submodules`);
          const fits = await dictionaryFits(model, fitted.map((e) => [e.submodule!, dictOf.get(e)!] as const), text);
          fitted.forEach((e, i) => { e.fit = fits[i]!; });
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
  examples: [['$0 dict info fixtures/small-a/saelens/embed', 'Describe one SAE'], ['$0 dict top --circuit circuit.json --corpus corpus.txt', 'Top-activating contexts of a circuit\'s features']],
  subcommands: [infoCommand, dictTopCommand],
};
