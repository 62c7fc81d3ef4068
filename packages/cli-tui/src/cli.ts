// The `sfc` command line: builds the yargs parser from the command modules and runs the chosen
// command. Returns the exit code instead of exiting, so tests and the docs generator call it
// in-process.

import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import type { CommandModule } from 'yargs';
import { DEFAULT_USAGE_HINT, formatError, UsageError } from './error-format.js';
import { processIO, type CliIO } from './io.js';
import { GLOBAL_OPTIONS, withOptions } from './options.js';
import type { GlobalArgs, SfcCommand } from './commands/command.js';
import { COMMANDS } from './commands/index.js';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

interface Chosen { command: SfcCommand; argv: GlobalArgs }

const GLOBAL_FLAGS = [...Object.keys(GLOBAL_OPTIONS), 'help', 'version'];

/** The yargs parser; `onChosen` receives the command that parsing selected. */
export function buildParser(io: CliIO, onChosen: (c: Chosen) => void = () => undefined, commands: readonly SfcCommand[] = COMMANDS): Argv {
  let y: Argv = yargs()
    .scriptName('sfc')
    .usage('$0 <command> [options]\n\nSparse feature circuits: find, evaluate, plot and steer the SAE features behind a model behaviour.')
    .version(VERSION)
    .options(GLOBAL_OPTIONS)
    .strict()
    .recommendCommands()
    .demandCommand(1, 'give a command (`sfc --help` lists them)')
    .completion('completion', 'Print a bash/zsh completion script (`sfc completion >> ~/.bashrc`)')
    .help()
    .alias('help', 'h')
    .group(GLOBAL_FLAGS, 'Global options:')
    .wrap(Math.min(io.stdout.columns || 100, 120))
    .epilogue('Every flag that has a [config: key] overrides that key of sfc.config.json. Docs: docs/cli.md, docs/config.md.')
    .fail((msg, err) => {
      if (err && err.name !== 'YError') throw err;
      throw new UsageError(msg ?? err?.message ?? 'invalid command line');
    });
  for (const c of commands) y = y.command(toModule(c, onChosen));
  return y;
}

function toModule(c: SfcCommand, onChosen: (c: Chosen) => void): CommandModule {
  return {
    command: c.command,
    describe: c.describe,
    builder: (y: Argv) => {
      let b = withOptions(y, c.options ?? [], c.required ?? []);
      if (c.builder) b = c.builder(b);
      // Command options first, global ones after (yargs lists named groups in creation order).
      // Keys already in a group stay there: `.positional()` puts its key under "Positionals:", and
      // grouping it again would list it a second time, as a `--flag`.
      const inspect = b as unknown as { getOptions(): { key: Record<string, unknown> }; getGroups(): Record<string, string[]> };
      const grouped = new Set(Object.values(inspect.getGroups()).flat());
      const own = Object.keys(inspect.getOptions().key).filter((k) => !GLOBAL_FLAGS.includes(k) && k !== '$0' && !grouped.has(k));
      if (own.length) b = b.group(own, 'Options:');
      b = b.group(GLOBAL_FLAGS, 'Global options:');
      for (const sub of c.subcommands ?? []) b = b.command(toModule(sub, onChosen));
      if (c.subcommands?.length) b = b.demandCommand(1, `give a subcommand: ${c.subcommands.map((s) => s.command.split(' ')[0]).join(', ')}`);
      for (const [cmd, what] of c.examples) b = b.example(cmd, what);
      return b;
    },
    handler: (argv) => { if (c.run) onChosen({ command: c, argv: argv as GlobalArgs }); },
  };
}

/** Parses `args` (without `node sfc`), runs the command, prints failures; returns the exit code. */
export async function runCli(args: readonly string[], io: CliIO = processIO()): Promise<number> {
  const verbose = args.includes('--verbose');
  let chosen: Chosen | undefined;
  try {
    let output = '';
    const parser = buildParser(io, (c) => { chosen = c; });
    await parser.parseAsync([...args], {}, (_err: unknown, _argv: unknown, out: string) => { output = out; });
    if (output) io.stdout.write(output.endsWith('\n') ? output : `${output}\n`);
    if (chosen) await chosen.command.run!(chosen.argv, io);
    return 0;
  } catch (e) {
    const f = formatError(e instanceof UsageError ? withCommandHint(e, args) : e, { verbose });
    io.stderr.write(f.text);
    return f.exitCode;
  }
}

/** Points a generic usage error at the help of the command that was attempted. */
function withCommandHint(e: UsageError, args: readonly string[]): UsageError {
  if (e.hint !== DEFAULT_USAGE_HINT) return e;
  const name = args.find((a) => !a.startsWith('-'));
  const known = name !== undefined && COMMANDS.some((c) => c.command.split(' ')[0] === name);
  const typo = /^Did you mean (\S+)\?$/.exec(e.message);
  if (typo) return new UsageError(`unknown command '${name}'`, `did you mean \`sfc ${typo[1]}\`? (\`sfc --help\` lists the commands)`);
  return new UsageError(e.message, `run \`sfc ${known ? `${name} ` : ''}--help\` for usage`);
}
