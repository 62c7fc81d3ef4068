// The `?` overlay: every key binding from the keymap, in one or two columns depending on the width.
/* @jsxRuntime automatic */ // for tsx runs from source: the root tsconfig has no "jsx" setting

import { Box, Text } from 'ink';
import { KEYMAP } from '../keymap.js';
import { cell } from '../format.js';
import { Line, Title } from './line.js';

export function HelpOverlay({ width, height }: { readonly width: number; readonly height: number }) {
  const lines: { key: string; text: string; group?: boolean }[] = [];
  for (const g of KEYMAP) {
    lines.push({ key: `g-${g.title}`, text: g.title, group: true });
    for (const k of g.keys) lines.push({ key: `${g.title}-${k.keys}`, text: `  ${cell(k.keys, 10)} ${k.what}` });
  }
  const body = Math.max(1, height - 1);
  const columns = lines.length > body && width >= 100 ? 2 : 1;
  const colWidth = Math.floor(width / columns);
  const perColumn = Math.ceil(lines.length / columns);
  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      <Title width={width} title="Keys" hint="any key closes" />
      <Box flexDirection="row" width={width} height={body} overflow="hidden">
        {Array.from({ length: columns }, (_, c) => (
          <Box key={c} flexDirection="column" width={colWidth} overflow="hidden">
            {lines.slice(c * perColumn, (c + 1) * perColumn).map((l) => (
              <Line key={l.key} width={colWidth}>{l.group ? <Text bold color="yellow">{l.text}</Text> : <Text>{l.text}</Text>}</Line>
            ))}
          </Box>
        ))}
      </Box>
    </Box>
  );
}
