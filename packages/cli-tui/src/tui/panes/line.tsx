// Building blocks of every pane: a one-row line that never wraps (panes have fixed sizes, so a
// long text is cut instead of pushing the layout), and a pane title with a dim key hint.
/* @jsxRuntime automatic */ // for tsx runs from source: the root tsconfig has no "jsx" setting

import type { ReactNode } from 'react';
import { Box, Text } from 'ink';

export function Line({ width, children }: { readonly width: number; readonly children?: ReactNode }) {
  return (
    <Box height={1} width={width} overflow="hidden">
      <Text wrap="truncate-end">{children ?? ' '}</Text>
    </Box>
  );
}

export function Title({ width, title, info, hint }: { readonly width: number; readonly title: string; readonly info?: ReactNode; readonly hint?: string }) {
  return (
    <Line width={width}>
      <Text bold color="yellow">{title}</Text>
      {info !== undefined ? <Text> {info}</Text> : null}
      {hint ? <Text dimColor>  {hint}</Text> : null}
    </Line>
  );
}

/** Blue for positive effects, red for negative (the circuit plots' convention). */
export function effectColor(v: number | null | undefined): 'blueBright' | 'redBright' | undefined {
  if (v === null || v === undefined || v === 0) return undefined;
  return v > 0 ? 'blueBright' : 'redBright';
}
