// Several keys that reach the app as one input (a fast typist, a paste, tmux send-keys): Ink
// parses only single keys, so a chunk like Tab then Ctrl+U ("\t\x15") arrives as one unknown
// sequence. Splitting it into keys here keeps every key, control keys included.

import type { Key } from 'ink';

const PLAIN: Key = {
  upArrow: false, downArrow: false, leftArrow: false, rightArrow: false, pageDown: false, pageUp: false,
  home: false, end: false, return: false, escape: false, ctrl: false, shift: false, tab: false,
  backspace: false, delete: false, meta: false,
} as Key;

/** The keys of a multi-character input, as Ink would report each one typed alone. */
export function splitKeys(input: string): [string, Key][] {
  return [...input].map((ch): [string, Key] => {
    const code = ch.codePointAt(0)!;
    if (ch === '\r' || ch === '\n') return ['\r', { ...PLAIN, return: true }];
    if (ch === '\t') return ['\t', { ...PLAIN, tab: true }];
    if (ch === '\u007f' || ch === '\b') return ['', { ...PLAIN, backspace: true }];
    // Ctrl+A … Ctrl+Z are 0x01 … 0x1a; Ink reports them as the letter with ctrl set.
    if (code >= 1 && code <= 26) return [String.fromCharCode(code + 96), { ...PLAIN, ctrl: true }];
    return [ch, { ...PLAIN }];
  });
}
