// The TUI's synchronous state and its reducer (pure): input mode, the node under the cursor, the
// filter, the steering picks and settings, and the prompt with its editing draft. Async work
// (steering runs, discovery jobs) lives in the App; this holds only what keys change directly.

import { EMPTY_PROMPT, type PromptInput } from './session.js';
import { bumpStrength, DEFAULT_SETTINGS, nextOp, type SteerSettings, type StrengthOp, type TuiOp } from './steer-settings.js';

export type Mode = 'normal' | 'filter' | 'prompt' | 'help';

export const PROMPT_FIELDS = ['text', 'answer', 'patchAnswer'] as const;
export type PromptField = typeof PROMPT_FIELDS[number];

export interface UiState {
  readonly mode: Mode;
  /** Node id under the cursor; kept across filter changes while it stays visible. */
  readonly selected: string | undefined;
  readonly filter: string;
  /** Node ids picked for steering, in pick order. */
  readonly picks: readonly string[];
  readonly settings: SteerSettings;
  /** Rerun steering after every change. */
  readonly live: boolean;
  readonly prompt: PromptInput;
  /** The prompt being edited (mode 'prompt'). */
  readonly draft: PromptInput;
  readonly field: PromptField;
}

export const INITIAL_STATE: UiState = {
  mode: 'normal', selected: undefined, filter: '', picks: [], settings: DEFAULT_SETTINGS, live: true,
  prompt: EMPTY_PROMPT, draft: EMPTY_PROMPT, field: 'text',
};

export type Action =
  /** Moves the cursor by `delta` over the visible node ids (clamped). */
  | { readonly type: 'move'; readonly ids: readonly string[]; readonly delta: number }
  | { readonly type: 'moveTo'; readonly ids: readonly string[]; readonly where: 'first' | 'last' }
  /** Keeps the cursor on a visible node after the list changed. */
  | { readonly type: 'sync'; readonly ids: readonly string[] }
  | { readonly type: 'filterStart' }
  | { readonly type: 'filterType'; readonly text: string }
  | { readonly type: 'filterBackspace' }
  | { readonly type: 'filterKeep' }
  | { readonly type: 'filterClear' }
  | { readonly type: 'togglePick'; readonly id: string }
  | { readonly type: 'clearPicks' }
  /** Drops picks that are no longer nodes of the circuit (after a new circuit loads). */
  | { readonly type: 'keepPicks'; readonly ids: ReadonlySet<string> }
  | { readonly type: 'setOp'; readonly op: TuiOp }
  | { readonly type: 'nextOp' }
  | { readonly type: 'bump'; readonly steps: number }
  /** Calibration's result: the op's strength set to a measured value. */
  | { readonly type: 'setStrength'; readonly op: StrengthOp; readonly value: number }
  | { readonly type: 'toggleLive' }
  | { readonly type: 'setPrompt'; readonly prompt: PromptInput }
  | { readonly type: 'promptEdit' }
  | { readonly type: 'promptType'; readonly text: string }
  | { readonly type: 'promptBackspace' }
  | { readonly type: 'promptClearField' }
  | { readonly type: 'promptNextField' }
  | { readonly type: 'promptDone' }
  | { readonly type: 'promptCancel' }
  | { readonly type: 'help'; readonly open: boolean };

function moved(ids: readonly string[], selected: string | undefined, delta: number): string | undefined {
  if (ids.length === 0) return undefined;
  const at = selected === undefined ? -1 : ids.indexOf(selected);
  const from = at < 0 ? (delta > 0 ? -1 : 0) : at;
  return ids[Math.min(ids.length - 1, Math.max(0, from + delta))];
}

export function reduce(s: UiState, a: Action): UiState {
  switch (a.type) {
    case 'move': return { ...s, selected: moved(a.ids, s.selected, a.delta) };
    case 'moveTo': return { ...s, selected: a.where === 'first' ? a.ids[0] : a.ids[a.ids.length - 1] };
    case 'sync':
      return s.selected !== undefined && a.ids.includes(s.selected) ? s : { ...s, selected: a.ids[0] };
    case 'filterStart': return { ...s, mode: 'filter' };
    case 'filterType': return { ...s, filter: s.filter + a.text };
    case 'filterBackspace': return { ...s, filter: [...s.filter].slice(0, -1).join('') };
    case 'filterKeep': return { ...s, mode: 'normal' };
    case 'filterClear': return { ...s, mode: 'normal', filter: '' };
    case 'togglePick':
      return { ...s, picks: s.picks.includes(a.id) ? s.picks.filter((p) => p !== a.id) : [...s.picks, a.id] };
    case 'clearPicks': return s.picks.length ? { ...s, picks: [] } : s;
    case 'keepPicks': {
      const picks = s.picks.filter((p) => a.ids.has(p));
      return picks.length === s.picks.length ? s : { ...s, picks };
    }
    case 'setOp': return { ...s, settings: { ...s.settings, op: a.op } };
    case 'nextOp': return { ...s, settings: { ...s.settings, op: nextOp(s.settings.op) } };
    case 'bump': return { ...s, settings: bumpStrength(s.settings, a.steps) };
    case 'setStrength': return { ...s, settings: { ...s.settings, op: a.op, strength: { ...s.settings.strength, [a.op]: a.value } } };
    case 'toggleLive': return { ...s, live: !s.live };
    case 'setPrompt': return { ...s, prompt: a.prompt };
    case 'promptEdit': return { ...s, mode: 'prompt', draft: s.prompt, field: 'text' };
    case 'promptType': return { ...s, draft: { ...s.draft, [s.field]: s.draft[s.field] + a.text } };
    case 'promptBackspace': return { ...s, draft: { ...s.draft, [s.field]: [...s.draft[s.field]].slice(0, -1).join('') } };
    case 'promptClearField': return { ...s, draft: { ...s.draft, [s.field]: '' } };
    case 'promptNextField':
      return { ...s, field: PROMPT_FIELDS[(PROMPT_FIELDS.indexOf(s.field) + 1) % PROMPT_FIELDS.length]! };
    case 'promptDone': return { ...s, mode: 'normal', prompt: s.draft };
    case 'promptCancel': return { ...s, mode: 'normal', draft: s.prompt };
    case 'help': return { ...s, mode: a.open ? 'help' : 'normal' };
  }
}
