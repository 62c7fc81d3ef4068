// The calibration key (C): searches the strength of the current op on the prompt — the smallest
// KL(before ‖ after) whose steered top-1 is the prompt's contrasting answer (docs/concepts.md,
// steering outcome) — and sets it, or says that no strength tried gets there and leaves the
// strength alone. A hook so the App only binds the key.

import { useCallback, useEffect, useRef } from 'react';
import { describeError } from './format.js';
import { CancelledError, type TuiSession } from './session.js';
import { toSteerOp } from './steer-settings.js';
import type { Action, UiState } from './ui-state.js';

export interface CalibrationDeps {
  readonly session: TuiSession;
  readonly state: () => UiState;
  readonly send: (action: Action) => void;
  /** Why steering cannot run now (then calibration cannot either). */
  readonly blocked: () => string | undefined;
  readonly say: (text: string, kind: 'info' | 'error') => void;
  readonly status: (text: string) => void;
  readonly topK: number;
}

export function useCalibration(deps: CalibrationDeps): () => void {
  const run = useRef<AbortController | undefined>(undefined);
  const d = useRef(deps);
  d.current = deps;
  useEffect(() => () => run.current?.abort(), []);
  return useCallback(() => {
    const { session, state, send, blocked, say, status, topK } = d.current;
    const s = state();
    const why = blocked();
    if (why) { say(why, 'info'); return; }
    const op = s.settings.op;
    if (op === 'ablate') { say('ablate has no strength to calibrate: choose scale, clamp or add (s, c, a)', 'info'); return; }
    if (!s.prompt.patchAnswer) { say('calibration needs a target: p, then Tab to the contrasting answer', 'info'); return; }
    run.current?.abort();
    const controller = new AbortController();
    run.current = controller;
    say(`calibrating ${op} on the prompt…`, 'info');
    session.calibrate({ prompt: s.prompt, nodes: s.picks, op: toSteerOp(s.settings), topK, generate: 0 }, { signal: controller.signal, onStatus: status }).then(
      (c) => {
        if (run.current !== controller) return;
        run.current = undefined;
        const target = JSON.stringify(s.prompt.patchAnswer);
        if (c.reached) {
          send({ type: 'setStrength', op, value: c.strength });
          say(`calibrated: ${op} ${c.strength} is the smallest KL (${c.kl.toFixed(2)} nats) that puts ${target} on top (${c.tried} strengths tried)`, 'info');
        } else {
          say(`no ${op} strength tried (${c.tried}) puts ${target} on top; strength unchanged`, 'error');
        }
      },
      (e: unknown) => {
        if (run.current !== controller) return;
        run.current = undefined;
        if (!(e instanceof CancelledError)) say(describeError(e), 'error');
      },
    );
  }, []);
}
