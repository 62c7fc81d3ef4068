// `sfc config print` and `sfc config schema`: the effective configuration with the origin of
// every value (default, which file, which flag), and the JSON Schema of sfc.config.json.

import { codeSources } from '../code-sources.js';
import { configSearchFolders, describeSource, type EffectiveConfig } from '../config/config.js';
import { toJsonSchema } from '../config/schema.js';
import { OPTIONS, type OptionId } from '../options.js';
import { Session } from '../session.js';
import type { SfcCommand } from './command.js';

/** Every option that overrides a config key, so `config print` shows what a flag would do. */
const CONFIG_FLAGS = (Object.keys(OPTIONS) as OptionId[]).filter((id) => {
  const o = OPTIONS[id] as { configKey?: string };
  return o.configKey !== undefined && !id.startsWith('eval'); // eval* reuse flag names of circuit.*
});

export function formatConfig(config: EffectiveConfig, cwd: string): string {
  const rows = config.entries().map((e) => [e.path, e.value === undefined ? '(unset)' : JSON.stringify(e.value), e.value === undefined ? '' : describeSource(e.source)] as const);
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.min(48, Math.max(...rows.map((r) => r[1].length)));
  const head = `config file: ${config.file ?? `(none found in ${searched(cwd)}; using defaults)`}`;
  const code = codeSources(config, cwd).map((c) => `${c.kind.padEnd(17)}  ${c.name}  ${c.file ?? '(not installed)'}`);
  return `${head}\n${rows.map(([k, v, s]) => `${k.padEnd(w0)}  ${v.padEnd(w1)}  ${s}`.trimEnd()).join('\n')}\n\ncode loaded from:\n${code.map((l) => `  ${l}`).join('\n')}\n`;
}

function searched(cwd: string): string {
  const dirs = configSearchFolders(cwd);
  return dirs.length === 1 ? dirs[0]! : `${dirs[0]} … ${dirs[dirs.length - 1]}`;
}

export function configJson(config: EffectiveConfig, cwd: string): object {
  return {
    schema: 'sfc.config-print/v1',
    file: config.file ?? null,
    searched: config.file ? undefined : configSearchFolders(cwd),
    code: codeSources(config, cwd).map((c) => ({ kind: c.kind, name: c.name, file: c.file ?? null })),
    values: Object.fromEntries(config.entries().map((e) => [e.path, { value: e.value ?? null, source: e.value === undefined ? null : describeSource(e.source) }])),
  };
}

const printCommand: SfcCommand = {
  command: 'print',
  describe: 'Show the effective configuration and where each value came from (default, file, flag)',
  options: [...CONFIG_FLAGS, 'json'],
  builder: (y) => y.option('circuit', { type: 'string', requiresArg: true, describe: 'A circuit file whose recorded model and SAEs apply (flag > circuit > config file)' }),
  examples: [
    ['$0 config print', 'Values from sfc.config.json and defaults, and the files backends and plugins load from'],
    ['$0 config print --steps 20 --backend tfjs-wasm', 'See how flags override the file'],
    ['$0 config print --circuit sfc-demo/circuit.json', 'Where the model and SAEs come from when a command opens this circuit'],
  ],
  run: async (argv, io) => {
    const s = await Session.open(io, argv, CONFIG_FLAGS);
    io.stdout.write(argv.json ? `${JSON.stringify(configJson(s.config, io.cwd), null, 2)}\n` : formatConfig(s.config, io.cwd));
  },
};

const schemaCommand: SfcCommand = {
  command: 'schema',
  describe: 'Print the JSON Schema of sfc.config.json (for editor completion)',
  examples: [['$0 config schema > sfc.config.schema.json', 'Save it next to your config and add "$schema"']],
  run: async (_argv, io) => {
    io.stdout.write(`${JSON.stringify(toJsonSchema(), null, 2)}\n`);
  },
};

export const configCommand: SfcCommand = {
  command: 'config',
  describe: 'Inspect the configuration (sfc.config.json + flags)',
  examples: [['$0 config print', 'Effective configuration with sources']],
  subcommands: [printCommand, schemaCommand],
};
