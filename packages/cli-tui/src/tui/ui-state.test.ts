import { describe, expect, it } from 'vitest';
import { INITIAL_STATE, reduce, type Action, type UiState } from './ui-state.js';

const run = (actions: Action[], from: UiState = INITIAL_STATE) => actions.reduce(reduce, from);
const ids = ['a', 'b', 'c', 'd'];

describe('ui reducer', () => {
  it('moves the cursor over the visible ids, clamped at both ends', () => {
    expect(run([{ type: 'move', ids, delta: 1 }]).selected).toBe('a'); // nothing selected: first
    expect(run([{ type: 'sync', ids }, { type: 'move', ids, delta: 2 }]).selected).toBe('c');
    expect(run([{ type: 'sync', ids }, { type: 'move', ids, delta: 10 }]).selected).toBe('d');
    expect(run([{ type: 'sync', ids }, { type: 'move', ids, delta: -3 }]).selected).toBe('a');
    expect(run([{ type: 'moveTo', ids, where: 'last' }]).selected).toBe('d');
    expect(run([{ type: 'move', ids: [], delta: 1 }]).selected).toBeUndefined();
  });

  it('keeps the selection across list changes while it stays visible', () => {
    const s = run([{ type: 'sync', ids }, { type: 'move', ids, delta: 2 }]);
    expect(reduce(s, { type: 'sync', ids: ['c', 'd'] }).selected).toBe('c');
    expect(reduce(s, { type: 'sync', ids: ['b', 'd'] }).selected).toBe('b');
    expect(reduce(s, { type: 'sync', ids: [] }).selected).toBeUndefined();
    expect(reduce(s, { type: 'sync', ids: ['c', 'd'] })).toBe(s); // unchanged state: no re-render
  });

  it('edits the filter and leaves filter mode with Enter (keep) or Esc (clear)', () => {
    let s = run([{ type: 'filterStart' }, { type: 'filterType', text: 'resé' }, { type: 'filterBackspace' }, { type: 'filterType', text: 'id' }]);
    expect(s).toMatchObject({ mode: 'filter', filter: 'resid' });
    expect(reduce(s, { type: 'filterKeep' })).toMatchObject({ mode: 'normal', filter: 'resid' });
    expect(reduce(s, { type: 'filterClear' })).toMatchObject({ mode: 'normal', filter: '' });
    s = run([{ type: 'filterStart' }, { type: 'filterBackspace' }]);
    expect(s.filter).toBe('');
  });

  it('toggles picks in pick order and drops picks that left the circuit', () => {
    const s = run([{ type: 'togglePick', id: 'b' }, { type: 'togglePick', id: 'a' }, { type: 'togglePick', id: 'c' }, { type: 'togglePick', id: 'a' }]);
    expect(s.picks).toEqual(['b', 'c']);
    expect(reduce(s, { type: 'keepPicks', ids: new Set(['c', 'x']) }).picks).toEqual(['c']);
    expect(reduce(s, { type: 'keepPicks', ids: new Set(['b', 'c']) })).toBe(s);
    expect(reduce(s, { type: 'clearPicks' }).picks).toEqual([]);
  });

  it('sets the op and strength', () => {
    const s = run([{ type: 'nextOp' }, { type: 'bump', steps: 2 }, { type: 'setOp', op: 'add' }, { type: 'bump', steps: -1 }]);
    expect(s.settings).toEqual({ op: 'add', strength: { scale: 2, clamp: 1, add: 1.5 } });
    expect(run([{ type: 'toggleLive' }]).live).toBe(false);
  });

  it('edits the prompt on a draft: Tab cycles the fields, Enter commits, Esc restores', () => {
    const start = reduce(INITIAL_STATE, { type: 'setPrompt', prompt: { text: 'The cat', answer: ' is', patchAnswer: '' } });
    let s = run([{ type: 'promptEdit' }, { type: 'promptType', text: 's' }, { type: 'promptNextField' }, { type: 'promptClearField' }, { type: 'promptType', text: ' are' },
      { type: 'promptNextField' }, { type: 'promptType', text: ' is' }, { type: 'promptNextField' }, { type: 'promptBackspace' }], start);
    expect(s).toMatchObject({ mode: 'prompt', field: 'text', draft: { text: 'The cat', answer: ' are', patchAnswer: ' is' } });
    expect(s.prompt).toEqual(start.prompt);
    expect(reduce(s, { type: 'promptDone' })).toMatchObject({ mode: 'normal', prompt: { text: 'The cat', answer: ' are', patchAnswer: ' is' } });
    s = reduce(s, { type: 'promptCancel' });
    expect(s).toMatchObject({ mode: 'normal', prompt: start.prompt, draft: start.prompt });
  });

  it('opens and closes the help', () => {
    expect(run([{ type: 'help', open: true }]).mode).toBe('help');
    expect(run([{ type: 'help', open: true }, { type: 'help', open: false }]).mode).toBe('normal');
  });
});
