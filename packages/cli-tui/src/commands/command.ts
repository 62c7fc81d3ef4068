// The shape of one `sfc` command module. Yargs only parses: its handler records which command
// was chosen, and cli.ts runs it afterwards, so every failure goes through one error path.

import type { Argv } from 'yargs';
import type { CliIO } from '../io.js';
import type { OptionId } from '../options.js';

export interface GlobalArgs {
  readonly config?: string;
  readonly verbose?: boolean;
  readonly quiet?: boolean;
  readonly [key: string]: unknown;
}

export interface SfcCommand {
  /** yargs command string, e.g. `plot <circuit>`. */
  readonly command: string;
  readonly describe: string;
  /** Shared options (options.ts); the second list must be given (for flags without a config key). */
  readonly options?: readonly OptionId[];
  readonly required?: readonly OptionId[];
  /** Positionals and command-specific options. */
  readonly builder?: (y: Argv) => Argv;
  readonly examples: readonly (readonly [string, string])[];
  /** Nested commands (`sfc config print`). */
  readonly subcommands?: readonly SfcCommand[];
  readonly run?: (argv: GlobalArgs, io: CliIO) => Promise<void>;
}
