// Text helpers of the TUI: signed numbers, horizontal bars with eighth-block resolution, and
// fixed-width cells (panes have fixed widths; text that does not fit is cut with an ellipsis), and
// failures as one line.

import { isSfcError } from '@sfc/core';

/** `+0.258`, `-1.20`: a sign always, so columns of effects line up. */
export function signed(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return String(v);
  const s = Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(digits);
  return v >= 0 || Number(s) === 0 ? `+${s.replace(/^-/, '')}` : s;
}

const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A bar of |value| / max × width cells (eighth-block resolution), at least one sliver when nonzero. */
export function bar(value: number, max: number, width: number): string {
  if (!(max > 0) || width <= 0 || !Number.isFinite(value)) return '';
  const eighths = Math.round(Math.min(1, Math.abs(value) / max) * width * 8);
  const n = Math.max(value !== 0 ? 1 : 0, eighths);
  return '█'.repeat(Math.floor(n / 8)) + EIGHTHS[n % 8];
}

/** Cuts `text` to `width` columns (an ellipsis marks the cut). */
export function fit(text: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, Math.max(0, width - 1)).join('')}…`;
}

/** `text` cut or padded with spaces to exactly `width` columns. */
export function cell(text: string, width: number): string {
  const t = fit(text, width);
  return t + ' '.repeat(Math.max(0, width - [...t].length));
}

/** A token as shown in lists: visible leading/trailing spaces, control characters escaped. */
export function showToken(token: string): string {
  return token.replace(/ /g, '·').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}

/** Probability in percent from a log-probability. */
export function percent(logprob: number): string {
  const p = Math.exp(logprob) * 100;
  return p >= 99.95 ? '100%' : p >= 10 ? `${p.toFixed(1)}%` : `${p.toFixed(2)}%`;
}


/** A failure as one line: the message, then the hint of typed errors. */
export function describeError(e: unknown): string {
  if (isSfcError(e)) return e.hint ? `${e.message} — ${e.hint}` : e.message;
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n', 1)[0]!.trim() || 'unknown failure';
}
