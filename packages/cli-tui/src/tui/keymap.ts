// Every key of the TUI, in one table: the `?` help overlay renders it and docs/tui.md lists it
// (a test checks that the docs name every key), so a binding is described in exactly one place.

export interface KeyHelp {
  readonly keys: string;
  readonly what: string;
}

export interface KeyGroup {
  readonly title: string;
  readonly keys: readonly KeyHelp[];
}

export const KEYMAP: readonly KeyGroup[] = [
  {
    title: 'Circuit',
    keys: [
      { keys: 'j k ↓ ↑', what: 'next / previous node' },
      { keys: 'PgDn PgUp', what: 'a page down / up' },
      { keys: 'g G', what: 'first / last node (also Home, End)' },
      { keys: '/', what: 'filter by id or annotation (Enter keeps, Esc clears)' },
    ],
  },
  {
    title: 'Steering',
    keys: [
      { keys: 'space', what: 'pick / unpick the node' },
      { keys: 'u', what: 'clear the picks' },
      { keys: 'o', what: 'next op: scale, clamp, ablate, add' },
      { keys: 's c x a', what: 'op scale / clamp / ablate / add' },
      { keys: '+ -', what: 'strength up / down by 0.5 (also = and _)' },
      { keys: 'C', what: 'calibrate: smallest-KL strength that puts the contrast on top' },
      { keys: 'r Enter', what: 'run steering now' },
      { keys: 'l', what: 'live: rerun on every change (on/off)' },
    ],
  },
  {
    title: 'Prompt',
    keys: [
      { keys: 'p', what: 'edit prompt and answers (Tab, Ctrl+U, Enter, Esc)' },
    ],
  },
  {
    title: 'Jobs',
    keys: [
      { keys: 'D', what: 'discover a circuit (progress in the job view)' },
      { keys: 'Esc', what: 'cancel the running job / close its view' },
    ],
  },
  {
    title: 'General',
    keys: [
      { keys: '?', what: 'this help (any key closes it)' },
      { keys: 'q Ctrl+C', what: 'quit' },
    ],
  },
];
