// Typed errors: every failure sfc reports carries a stable `code`, what went wrong, and a hint
// saying what to do next. The CLI prints `message` and `hint` (stack only with --verbose).

export type SfcErrorCode =
  | 'INPUT'        // bad user input: flags, texts, data lines
  | 'FORMAT'       // a malformed or unsupported file
  | 'NOT_FOUND'    // a missing file, folder, submodule, feature or token
  | 'CONFIG'       // an invalid configuration value
  | 'SHAPE'        // tensors or weights of the wrong shape
  | 'CAPABILITY'   // the backend cannot do what was asked
  | 'SECURITY'     // a file tried something forbidden (e.g. a pickle global outside the allowlist)
  | 'BACKEND'      // the backend itself failed
  | 'IO'           // the file system refused a write: disk full, file-size limit, permission denied
  | 'CANCELLED'    // the caller aborted the run (Ctrl-C, the TUI's cancel key, an AbortSignal)
  | 'INTERNAL';

export class SfcError extends Error {
  readonly code: SfcErrorCode;
  readonly hint: string | undefined;
  constructor(code: SfcErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.hint = hint;
    this.name = new.target.name;
  }
}

export class InputError extends SfcError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) { super('INPUT', message, hint, options); }
}
export class FormatError extends SfcError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) { super('FORMAT', message, hint, options); }
}
export class NotFoundError extends SfcError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) { super('NOT_FOUND', message, hint, options); }
}
export class ConfigError extends SfcError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) { super('CONFIG', message, hint, options); }
}
export class ShapeError extends SfcError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) { super('SHAPE', message, hint, options); }
}
export class CapabilityError extends SfcError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) { super('CAPABILITY', message, hint, options); }
}
export class SecurityError extends SfcError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) { super('SECURITY', message, hint, options); }
}
export class BackendError extends SfcError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) { super('BACKEND', message, hint, options); }
}

/** The file system refused a write (disk full, file-size limit, permission, read-only); nothing was half-written. */
export class IoError extends SfcError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) { super('IO', message, hint, options); }
}

/**
 * A long run stopped because its AbortSignal fired. `operation` names what was cancelled
 * (`discover`, `attribute (ig)`, `evaluate`); the abort reason, if any, is the `cause`. No hint:
 * the user asked for it, there is nothing to fix.
 */
export class CancelledError extends SfcError {
  readonly operation: string;
  constructor(operation: string, options?: { cause?: unknown }) {
    super('CANCELLED', `${operation} cancelled`, undefined, options);
    this.operation = operation;
  }
}

/** Exit codes of the CLI, one per error family (documented in docs/cli.md). */
export const EXIT_CODES: Record<SfcErrorCode, number> = {
  INPUT: 2, CONFIG: 2, NOT_FOUND: 3, FORMAT: 4, SHAPE: 4, SECURITY: 5, CAPABILITY: 6, BACKEND: 7, IO: 8, INTERNAL: 1,
  CANCELLED: 130, // 128 + SIGINT, what shells report for a Ctrl-C'd process
};

export function isSfcError(e: unknown): e is SfcError {
  return e instanceof SfcError;
}
