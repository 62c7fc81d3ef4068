// Driving a rendered Ink app in tests (ink-testing-library instances, typed structurally so this
// module needs no test dependency): key sequences, the screen without colours, waiting for text,
// and resizing the fake terminal.

import type { EventEmitter } from 'node:events';

export interface RenderedApp {
  readonly stdin: { write(data: string): void };
  readonly stdout: EventEmitter;
  lastFrame(): string | undefined;
}

/** Bytes a terminal sends for special keys. */
export const KEY = {
  up: '\u001B[A',
  down: '\u001B[B',
  pageUp: '\u001B[5~',
  pageDown: '\u001B[6~',
  home: '\u001B[H',
  end: '\u001B[F',
  enter: '\r',
  escape: '\u001B',
  tab: '\t',
  backspace: '\u007F',
  space: ' ',
  ctrlU: '\u0015',
} as const;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// Ink handles one chunk per read; a short pause lets React commit before the next key.
const KEY_GAP_MS = 25;

/** Sends each key (or each character of a plain string) with a pause after it. */
export async function press(app: RenderedApp, ...keys: string[]): Promise<void> {
  for (const k of keys) {
    const chunks = (Object.values(KEY) as string[]).includes(k) ? [k] : [...k];
    for (const c of chunks) {
      app.stdin.write(c);
      await sleep(KEY_GAP_MS);
    }
  }
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001B\[[0-9;?]*[ -/]*[@-~]|\u001B\][^\u0007]*\u0007/g;

/** The last frame without colour codes. */
export function screen(app: RenderedApp): string {
  return (app.lastFrame() ?? '').replace(ANSI, '');
}

/** Waits until `test` holds for the screen (text: the screen contains it); throws with the screen otherwise. */
export async function waitFor(app: RenderedApp, test: string | RegExp | ((s: string) => boolean), timeoutMs = 3000): Promise<string> {
  const ok = (s: string) => (typeof test === 'string' ? s.includes(test) : test instanceof RegExp ? test.test(s) : test(s));
  const start = Date.now();
  for (;;) {
    const s = screen(app);
    if (ok(s)) return s;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${String(test)}; the screen is:\n${s}`);
    await sleep(10);
  }
}

/** Gives the fake terminal a size and tells Ink (and the app) it changed. */
export async function resize(app: RenderedApp, columns: number, rows: number): Promise<void> {
  Object.defineProperty(app.stdout, 'columns', { value: columns, configurable: true });
  Object.defineProperty(app.stdout, 'rows', { value: rows, configurable: true });
  app.stdout.emit('resize');
  await sleep(KEY_GAP_MS);
}
