// Quoting of strings that come from files (tensor names, pickle globals, hook names, tokens) before
// they go into a message: control characters are escaped, so a crafted name cannot send terminal
// escape sequences (ESC/OSC) to the user's terminal, and long names are cut, so a 20 MB name makes
// a one-line error rather than a 20 MB one (docs/formats.md, Safety guarantees).

/** Longest quoted string kept whole; longer ones keep their start and end around an ellipsis. */
export const MAX_QUOTED_CHARS = 120;

/**
 * `s` between single quotes, with C0/C1 control characters, DEL, line/paragraph separators and
 * bidirectional overrides escaped (`\n`, `\x1b`, `\u202e`), a quote or backslash escaped, and at
 * most `max` characters kept (the start and the end, `…` between; the total length is given).
 * Values that are not strings are shown by type.
 */
export function quoteName(s: unknown, max = MAX_QUOTED_CHARS): string {
  if (typeof s !== 'string') return s === undefined ? 'nothing' : s === null ? 'null' : `a ${typeof s}`;
  let body: string;
  if (s.length > max) {
    const head = Math.ceil((max - 1) * 2 / 3), tail = max - 1 - head;
    body = `${escapeControls(s.slice(0, head))}…${tail > 0 ? escapeControls(s.slice(s.length - tail)) : ''} (${s.length} characters)`;
  } else {
    body = escapeControls(s);
  }
  return `'${body}'`;
}

const CONTROLS = '\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069';
const UNSAFE = new RegExp(`[${CONTROLS}\\n\\t'\\\\]`, 'g');
const UNSAFE_IN_MESSAGE = new RegExp(`[${CONTROLS}\\t]`, 'g');

function hexEscape(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Escapes control and bidi characters in `s` (and quotes, backslashes); printable text is unchanged. */
export function escapeControls(s: string): string {
  return s.replace(UNSAFE, (c) => {
    switch (c) {
      case '\n': return '\\n';
      case '\r': return '\\r';
      case '\t': return '\\t';
      case "'": return "\\'";
      case '\\': return '\\\\';
    }
    return hexEscape(c);
  });
}

/**
 * A whole message made safe for a terminal: control characters other than newline escaped, and
 * at most `maxChars` kept. The CLI applies it to every error it prints, a last line of defence
 * behind quoteName.
 */
export function sanitizeMessage(message: string, maxChars = 4000): string {
  const cut = message.length > maxChars ? `${message.slice(0, maxChars)}… (${message.length} characters)` : message;
  return cut.replace(UNSAFE_IN_MESSAGE, hexEscape);
}

/**
 * Any value from a file, for a message: strings quoted (quoteName), numbers as numbers (a JSON
 * `1e999` shows as Infinity, not null), anything else as capped JSON with controls escaped.
 */
export function showValue(v: unknown, max = MAX_QUOTED_CHARS): string {
  if (typeof v === 'string') return quoteName(v, max);
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (v === undefined) return 'nothing';
  return sanitizeMessage(JSON.stringify(v) ?? String(v), max);
}
