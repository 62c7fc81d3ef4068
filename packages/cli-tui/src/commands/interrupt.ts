// Ctrl-C during a long computation (discover, attribute, evaluate). The first SIGINT aborts the
// run's AbortSignal: core stops at its next unit of work, disposes its tensors and throws
// CancelledError, which the CLI prints as one line and exits with (130). Nothing is written: the
// output is only written after the computation, atomically. A second SIGINT, for a unit that takes
// too long, goes to whatever the process did on SIGINT before (main.ts: remove pending temp files
// and exit 130 at once; without a handler, Node's default exit). A SIGINT within REPEAT_MS of the
// first is the same press delivered twice (bin/sfc.js passes on the terminal's SIGINT to the CLI
// process, which also gets it directly), not a second one.

const REPEAT_MS = 250;

type SignalTarget = Pick<NodeJS.Process, 'listeners' | 'on' | 'removeListener' | 'kill' | 'pid'>;

/** Runs `fn` with a signal that the first Ctrl-C aborts; the process's own SIGINT handling is back afterwards. */
export async function withInterrupt<T>(fn: (signal: AbortSignal) => Promise<T>, target: SignalTarget = process,
  now: () => number = Date.now): Promise<T> {
  const controller = new AbortController();
  const previous = target.listeners('SIGINT') as ((signal: NodeJS.Signals) => void)[];
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    target.removeListener('SIGINT', onInterrupt);
    for (const l of previous) target.on('SIGINT', l);
  };
  let firstAt = 0;
  function onInterrupt(): void {
    if (!controller.signal.aborted) {
      firstAt = now();
      controller.abort(new Error('interrupted by Ctrl-C (SIGINT)'));
      return;
    }
    if (now() - firstAt < REPEAT_MS) return;
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
