// The mini bar chart: per submodule (forward order) the summed effect of its circuit nodes, a
// bar of the |effect| sum coloured by the sign of the sum. With more submodules than rows it
// shows the strongest ones, still in forward order.
/* @jsxRuntime automatic */ // for tsx runs from source: the root tsconfig has no "jsx" setting

import { Box, Text } from 'ink';
import type { Circuit } from '@sfc/core';
import { submoduleTotals } from '../circuit-view.js';
import { bar, cell, signed } from '../format.js';
import { effectColor, Line, Title } from './line.js';

export interface EffectsChartProps {
  readonly width: number;
  readonly height: number;
  readonly circuit: Circuit | undefined;
  /** The selected node's submodule is highlighted. */
  readonly selectedSubmodule: string | undefined;
}

export function EffectsChart({ width, height, circuit, selectedSubmodule }: EffectsChartProps) {
  const bars = Math.max(0, height - 1);
  const totals = circuit ? submoduleTotals(circuit, bars) : [];
  const shown = circuit ? `${totals.length}${totals.length < circuit.submodules.length ? `/${circuit.submodules.length}` : ''}` : '';
  const max = Math.max(1e-12, ...totals.map((t) => t.abs));
  const nameWidth = Math.min(9, Math.max(5, ...totals.map((t) => t.submodule.length)));
  const barWidth = Math.max(1, width - nameWidth - 10);
  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      <Title width={width} title="Effects" info={circuit ? <Text dimColor>{`by submodule (${shown})`}</Text> : undefined} />
      {totals.map((t) => (
        <Line key={t.submodule} width={width}>
          <Text bold={t.submodule === selectedSubmodule} inverse={t.submodule === selectedSubmodule}>{cell(t.submodule, nameWidth)}</Text>
          <Text> </Text>
          <Text color={effectColor(t.sum)}>{cell(bar(t.abs, max, barWidth), barWidth)}</Text>
          <Text color={effectColor(t.sum)}>{` ${t.nodes ? signed(t.sum) : '      ·'}`}</Text>
        </Line>
      ))}
    </Box>
  );
}
