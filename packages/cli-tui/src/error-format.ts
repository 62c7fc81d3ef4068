// How failures reach the user: typed errors print `error:` and `hint:` lines and exit with the
// code of their family (core's EXIT_CODES); anything unexpected prints one short line and exit 1.
// Stack traces only with --verbose.

import { EXIT_CODES, InputError, isSfcError, sanitizeMessage } from '@sfc/core';

/** A command line that yargs (or our own flag checks) rejected: exit 2 with the usage hint. */
export const DEFAULT_USAGE_HINT = 'run `sfc --help` (or `sfc <command> --help`) for usage';

export class UsageError extends InputError {
  constructor(message: string, hint = DEFAULT_USAGE_HINT) {
    super(message, hint);
  }
}

export interface FormattedError {
  readonly text: string;
  readonly exitCode: number;
}

export function formatError(e: unknown, options: { verbose?: boolean } = {}): FormattedError {
  const lines: string[] = [];
  let exitCode: number;
  if (isSfcError(e)) {
    // Messages quote file-derived names already (core quoteName); this is the last line of
    // defence against terminal escape sequences and megabyte-long messages.
    lines.push(`error: ${sanitizeMessage(e.message)}`);
    if (e.hint) lines.push(`hint: ${sanitizeMessage(e.hint)}`);
    exitCode = EXIT_CODES[e.code] ?? 1;
  } else {
    const message = e instanceof Error ? e.message : String(e);
    lines.push(`error: unexpected failure: ${sanitizeMessage(firstLine(message))}`);
    if (!options.verbose) lines.push('hint: run with --verbose for details, and report it if it persists');
    exitCode = 1;
  }
  if (options.verbose) {
    for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 5; cur = cur.cause, depth++) {
      lines.push(depth === 0 ? (cur.stack ?? String(cur)) : `caused by: ${cur.stack ?? String(cur)}`);
    }
  }
  return { text: lines.join('\n') + '\n', exitCode };
}

function firstLine(s: string): string {
  const line = s.split('\n', 1)[0]!.trim();
  return line.length > 300 ? `${line.slice(0, 300)}…` : line || '(no message)';
}
