// Which token positions of the current sequence an intervention touches. The sequence may be
// longer than the prompt (generation adds generated tokens), so `prompt` and the negative offsets
// are anchored to the prompt length, never to the current length. A forward may cover only a
// window of the sequence (a KV-cached step): masks are asked for absolute positions
// offset…offset+seq−1.

import { InputError } from '@sfc/core';
import { formatPositions, type Positions } from './intervention.js';

function absolute(pos: number, promptLength: number): number {
  return pos < 0 ? promptLength + pos : pos;
}

/**
 * 1 at every selected position among the `seq` positions offset…offset+seq−1 (entry i is
 * position offset + i) of a sequence whose first `promptLength` tokens are the prompt.
 */
export function positionMask(p: Positions, seq: number, promptLength: number, offset = 0): Uint8Array {
  const mask = new Uint8Array(seq);
  const end = offset + seq;
  /** Selects absolute positions [from, to) that fall inside the window. */
  const range = (from: number, to: number) => {
    const a = Math.max(from, offset), b = Math.min(to, end);
    if (a < b) mask.fill(1, a - offset, b - offset);
  };
  switch (p.kind) {
    case 'all':
      mask.fill(1);
      break;
    case 'prompt':
      range(0, promptLength);
      break;
    case 'from':
      range(Math.max(absolute(p.start, promptLength), 0), end);
      break;
    case 'list':
      for (const q of p.positions) {
        const a = absolute(q, promptLength);
        if (a >= offset && a < end) mask[a - offset] = 1;
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
