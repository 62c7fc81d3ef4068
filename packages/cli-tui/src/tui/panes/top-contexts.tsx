// Top-activating contexts of the selected feature, one per row: the activation, then the
// context around the activating token (shown inverse), cut on the left so that token stays
// visible however narrow the pane.
/* @jsxRuntime automatic */ // for tsx runs from source: the root tsconfig has no "jsx" setting

import { Text } from 'ink';
import { sanitizeMessage, type TopContext } from '@sfc/core';
import type { TopContextsView } from '../session.js';
import { Line } from './line.js';

/**
 * A token as one line of plain text: newlines as ⏎, other white space as a space, and control and
 * bidi characters (from a contexts file, so untrusted: an ESC would drive the terminal) escaped.
 */
const visible = (t: string): string => sanitizeMessage(t.replace(/\n/g, '⏎').replace(/\s/g, ' '), Infinity);

/** The context as [left, token, right], the left side cut to leave room for the token and a little right context. */
export function contextParts(c: TopContext, width: number): [string, string, string] {
  const token = visible(c.tokens[c.at] ?? '');
  let left = visible(c.tokens.slice(0, c.at).join(''));
  const right = visible(c.tokens.slice(c.at + 1).join(''));
  const room = Math.max(0, width - token.length - Math.min(right.length, 8));
  if (left.length > room) left = `…${left.slice(left.length - room + 1)}`;
  return [left, token, right];
}

export function TopContextLines({ width, rows, view }: { readonly width: number; readonly rows: number; readonly view: TopContextsView | undefined }) {
  if (rows <= 0) return null;
  if (!view) return <Line width={width}><Text dimColor>top contexts…</Text></Line>;
  if ('none' in view) return <Line width={width}><Text dimColor>{view.none}</Text></Line>;
  if (!view.contexts.length) return <Line width={width}><Text dimColor>never active on the corpus</Text></Line>;
  return (
    <>
      {view.contexts.slice(0, rows).map((c, i) => {
        const value = c.value.toPrecision(3).padStart(6);
        const [left, token, right] = contextParts(c, width - value.length - 1);
        return (
          <Line key={i} width={width}>
            <Text color="green">{value} </Text>
            <Text dimColor>{left}</Text>
            <Text inverse bold>{token}</Text>
            <Text dimColor>{right}</Text>
          </Line>
        );
      })}
    </>
  );
}
