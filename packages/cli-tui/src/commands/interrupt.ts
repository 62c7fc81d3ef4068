// Ctrl-C during a long computation (discover, attribute, evaluate). The first SIGINT aborts the
// run's AbortSignal: core stops at its next unit of work, disposes its tensors and throws
// CancelledError, which the CLI prints as one line and exits with (130). Nothing is written: the
// output is only written after the computation, atomically. A second SIGINT, for a unit that takes
// too long, goes to whatever the process did on SIGINT before (main.ts: remove pending temp files
// and exit 130 at once; without a handler, Node's default exit).

type SignalTarget = Pick<NodeJS.Process, 'listeners' | 'on' | 'removeListener' | 'kill' | 'pid'>;

/** Runs `fn` with a signal that the first Ctrl-C aborts; the process's own SIGINT handling is back afterwards. */
export async function withInterrupt<T>(fn: (signal: AbortSignal) => Promise<T>, target: SignalTarget = process): Promise<T> {
  const controller = new AbortController();
  const previous = target.listeners('SIGINT') as ((signal: NodeJS.Signals) => void)[];
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    target.removeListener('SIGINT', onInterrupt);
    for (const l of previous) target.on('SIGINT', l);
  };
  function onInterrupt(): void {
    if (!controller.signal.aborted) {
      controller.abort(new Error('interrupted by Ctrl-C (SIGINT)'));
      return;
    }
    restore();
    if (previous.length) for (const l of previous) l('SIGINT');
    else target.kill(target.pid, 'SIGINT'); // nobody else listens: Node's default, terminate
  }
  for (const l of previous) target.removeListener('SIGINT', l);
  target.on('SIGINT', onInterrupt);
  try {
    return await fn(controller.signal);
  } finally {
    restore();
  }
}
