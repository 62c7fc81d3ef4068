// Which token positions of the current sequence an intervention touches. The sequence may be
// longer than the prompt (generation re-runs prompt + generated tokens), so `prompt` and the
// negative offsets are anchored to the prompt length, never to the current length.

import { InputError } from '@sfc/core';
import { formatPositions, type Positions } from './intervention.js';

function absolute(pos: number, promptLength: number): number {
  return pos < 0 ? promptLength + pos : pos;
}

/** 1 at every selected position of a sequence of `seq` tokens whose first `promptLength` are the prompt. */
export function positionMask(p: Positions, seq: number, promptLength: number): Uint8Array {
  const mask = new Uint8Array(seq);
  switch (p.kind) {
    case 'all':
      mask.fill(1);
      break;
    case 'prompt':
      mask.fill(1, 0, Math.min(seq, promptLength));
      break;
    case 'from': {
      const start = absolute(p.start, promptLength);
      if (start < seq) mask.fill(1, Math.max(start, 0));
      break;
    }
    case 'list':
      for (const q of p.positions) {
        const a = absolute(q, promptLength);
        if (a >= 0 && a < seq) mask[a] = 1;
      }
      break;
  }
  return mask;
}

/**
 * Throws when a position can never be reached: before the start of the prompt, or at or past
 * `finalLength` (the longest sequence the model will see: the prompt for scoring, prompt +
 * generated − 1 for generation). Requested positions that never happen fail loudly.
 */
export function checkPositions(p: Positions, promptLength: number, finalLength: number, what: string): void {
  const bad = (q: number) => {
    const a = absolute(q, promptLength);
    return a < 0 || a >= finalLength;
  };
  const hint = `the prompt has ${promptLength} tokens and the longest sequence run is ${finalLength}: positions 0..${finalLength - 1}, or -1..-${promptLength} from the prompt's end`;
  if (p.kind === 'list') {
    const out = p.positions.filter(bad);
    if (out.length) throw new InputError(`${what}: position${out.length > 1 ? 's' : ''} ${out.join(', ')} out of range`, hint);
  } else if (p.kind === 'from' && bad(p.start)) {
    throw new InputError(`${what}: positions ${formatPositions(p)} select nothing`, hint);
  }
}
