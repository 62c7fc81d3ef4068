// The CLI's view of the outside world: output streams, working directory and environment.
// Commands write only through a CliIO, so tests run them in-process with captured output.

export interface OutStream {
  write(text: string): void;
  /** True when the stream is an interactive terminal (progress bars, colours). */
  readonly isTTY: boolean;
  /** Terminal width, when known. */
  readonly columns?: number;
}

export interface CliIO {
  readonly stdout: OutStream;
  readonly stderr: OutStream;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export function processIO(): CliIO {
  const wrap = (s: NodeJS.WriteStream): OutStream => ({
    write: (text) => { s.write(text); },
    get isTTY() { return s.isTTY === true; },
    get columns() { return s.columns; },
  });
  return { stdout: wrap(process.stdout), stderr: wrap(process.stderr), cwd: process.cwd(), env: process.env };
}

/** Captures output in memory (tests, docs generation). */
export function memoryIO(options: { cwd?: string; env?: Record<string, string | undefined>; stderrTTY?: boolean; columns?: number } = {}): CliIO & { out(): string; err(): string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (t) => { out += t; }, isTTY: false },
    stderr: { write: (t) => { err += t; }, isTTY: options.stderrTTY ?? false, columns: options.columns },
    cwd: options.cwd ?? process.cwd(),
    env: options.env ?? {},
    out: () => out,
    err: () => err,
  };
}
