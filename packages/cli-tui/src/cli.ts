// The `sfc` command line: builds the yargs parser from the command modules and runs the chosen
// command. Returns the exit code instead of exiting, so tests and the docs generator call it
// in-process.

import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import type { CommandModule } from 'yargs';
import { DEFAULT_USAGE_HINT, formatError, UsageError } from './error-format.js';
import { processIO, type CliIO } from './io.js';
import { suggest } from './config/validate.js';
import { GLOBAL_OPTIONS, withOptions } from './options.js';
import type { GlobalArgs, SfcCommand } from './commands/command.js';
import { COMMANDS } from './commands/index.js';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

interface Chosen { command: SfcCommand; argv: GlobalArgs }

const GLOBAL_FLAGS = [...Object.keys(GLOBAL_OPTIONS), 'help', 'version'];
const EPILOGUE = 'Every flag that has a [config: key] overrides that key of sfc.config.json. Docs: docs/cli.md, docs/config.md.';
const helpWidth = (io: CliIO) => Math.min(io.stdout.columns || 100, 120);

function wrapWords(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = indent;
  for (const w of text.split(/\s+/)) {
    if (line.trim() && line.length + 1 + w.length > width) { lines.push(line); line = indent; }
    line += line.trim() ? ` ${w}` : w;
  }
  return [...lines, line];
}

/** Shell words of an example command, quoted strings kept whole, each flag with its value. */
function shellWords(cmd: string): string[] {
  const units: string[] = [];
  for (const w of cmd.match(/(?:[^\s"']+|"[^"]*"|'[^']*')+/g) ?? []) {
    const last = units[units.length - 1];
    if (last && /^--?[^\s=]+$/.test(last) && !w.startsWith('-')) units[units.length - 1] = `${last} ${w}`;
    else units.push(w);
  }
  return units;
}

/**
 * "Examples:" with each description, then its command indented below; a command longer than the
 * width continues on the next line (`\` at the end) at an argument boundary, never inside one.
 */
export function formatExamples(examples: readonly (readonly [string, string])[], width: number): string {
  const out = ['Examples:'];
  for (const [cmd, what] of examples) {
    out.push(...wrapWords(what, width, '  '));
    const lines: string[] = [];
    let line = '    ';
    for (const w of shellWords(cmd.replace(/\$0/g, 'sfc'))) {
      if (line.trim() && line.length + 1 + w.length + 2 > width) { lines.push(`${line} \\`); line = '      '; }
      line += line.trim() ? ` ${w}` : w;
    }
    lines.push(line);
    out.push(...lines);
  }
  return out.join('\n');
}

/**
 * The yargs parser; `onChosen` receives the command that parsing selected. `args` (the command
 * line being parsed) lets a misspelt flag be named with a suggestion before anything else.
 */
export function buildParser(io: CliIO, onChosen: (c: Chosen) => void = () => undefined, commands: readonly SfcCommand[] = COMMANDS,
  args: readonly string[] = []): Argv {
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
    .wrap(helpWidth(io))
    .epilogue(EPILOGUE)
    .fail((msg, err) => {
      if (err && err.name !== 'YError') throw err;
      const typo = unknownFlag(args, y); // yargs holds the options of the command being parsed
      if (typo) throw typo;
      throw new UsageError(msg ?? err?.message ?? 'invalid command line');
    });
  for (const c of commands) y = y.command(toModule(c, onChosen, io));
  return y;
}

/** The first `--flag` of `args` that the command being parsed does not know, with the closest known flag. */
function unknownFlag(args: readonly string[], current: Argv): UsageError | undefined {
  const opts = (current as unknown as { getOptions(): { key: Record<string, unknown>; alias: Record<string, string[]> } }).getOptions();
  const known = new Set([...Object.keys(opts.key), ...Object.values(opts.alias).flat()].filter((k) => k !== '$0'));
  const camel = (s: string) => s.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
  const flags = new Set([...known].filter((k) => k.length > 1 && !/[A-Z]/.test(k)));
  for (const a of args) {
    if (a === '--') break;
    const m = /^--([^=]+)/.exec(a);
    if (!m) continue;
    const name = m[1]!;
    const bare = name.startsWith('no-') ? name.slice(3) : name;
    if (known.has(name) || known.has(bare) || known.has(camel(name)) || known.has(camel(bare))) continue;
    const near = suggest(name, flags);
    const help = `\`sfc ${commandPath(args).map((c) => `${c} `).join('')}--help\` lists the options`;
    return new UsageError(`unknown option --${name}`, near ? `did you mean --${near}? (${help})` : help);
  }
  return undefined;
}

/** The command and subcommand names at the start of `args` (`['config', 'print']`). */
function commandPath(args: readonly string[], list: readonly SfcCommand[] = COMMANDS): string[] {
  const c = list.find((x) => x.command.split(' ')[0] === args[0]);
  return c ? [args[0]!, ...commandPath(args.slice(1), c.subcommands ?? [])] : [];
}

function toModule(c: SfcCommand, onChosen: (c: Chosen) => void, io: CliIO): CommandModule {
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
      for (const sub of c.subcommands ?? []) b = b.command(toModule(sub, onChosen, io));
      if (c.subcommands?.length) b = b.demandCommand(1, `give a subcommand: ${c.subcommands.map((s) => s.command.split(' ')[0]).join(', ')}`);
      // Examples as sfc prints them, not yargs' two columns: those wrap a command (and a path) at
      // any character; here a long command breaks between arguments, with \ so it still pastes.
      if (c.examples.length) b = b.epilogue(`${formatExamples(c.examples, helpWidth(io))}\n\n${EPILOGUE}`);
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
    if (completionHelp(args)) {
      io.stdout.write(COMPLETION_HELP);
      return 0;
    }
    const parser = buildParser(io, (c) => { chosen = c; }, COMMANDS, args);
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

const COMPLETION_HELP = `sfc completion

Print a bash/zsh completion script for sfc (commands and options complete with Tab).

Install it once:
  sfc completion >> ~/.bashrc     # bash
  sfc completion >> ~/.zshrc      # zsh
then open a new shell.
`;

/** \`sfc completion --help\`: yargs would print the script itself. */
function completionHelp(args: readonly string[]): boolean {
  return args[0] === 'completion' && args.some((a) => a === '--help' || a === '-h');
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
