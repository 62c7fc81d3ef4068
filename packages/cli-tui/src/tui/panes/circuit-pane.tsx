// The circuit pane: nodes grouped by submodule and sorted by |effect|, with the cursor (›), the
// steering picks (●), a bar per effect and the annotation; the filter line while typing `/`.
// The window scrolls to keep the cursor in view.
/* @jsxRuntime automatic */ // for tsx runs from source: the root tsconfig has no "jsx" setting

import { Box, Text } from 'ink';
import { METRIC_NODE, type Circuit } from '@sfc/core';
import { isErrorNode, type NodeRow, type Row } from '../circuit-view.js';
import { bar, cell, signed } from '../format.js';
import { effectColor, Line, Title } from './line.js';

export interface CircuitPaneProps {
  readonly width: number;
  readonly height: number;
  /** Undefined while loading or when no circuit is open. */
  readonly circuit: Circuit | undefined;
  /** Shown instead of the list when there is no circuit (loading, error, how to get one). */
  readonly empty: string;
  readonly rows: readonly Row[];
  readonly selected: string | undefined;
  readonly picks: ReadonlySet<string>;
  readonly filter: string;
  readonly filtering: boolean;
}

/** First visible row: the cursor row as close to the middle as the list allows. */
export function scrollOffset(rowCount: number, cursorRow: number, visible: number): number {
  if (rowCount <= visible || cursorRow < 0) return 0;
  return Math.min(rowCount - visible, Math.max(0, cursorRow - Math.floor(visible / 2)));
}

export function CircuitPane(p: CircuitPaneProps) {
  const { width, height, circuit, rows } = p;
  // Like `sfc discover`, counts features and error nodes, not the metric node y.
  const nodeCount = circuit ? circuit.nodes.filter((n) => n.submodule !== METRIC_NODE).length : 0;
  const filterInfo = p.filtering ? `/${p.filter}▏` : p.filter ? `/${p.filter}` : '';
  const title = (
    <Title width={width} title="Circuit" info={circuit ? `${nodeCount} nodes${filterInfo ? ` ${filterInfo}` : ''}` : filterInfo} hint={p.filtering ? 'Enter keep · Esc clear' : '/ filter'} />
  );
  const listRows = Math.max(0, height - 1);
  if (!circuit) {
    return (
      <Box flexDirection="column" width={width} height={height} overflow="hidden">
        {title}
        <Box width={width} height={listRows} overflow="hidden"><Text wrap="wrap" dimColor>{p.empty}</Text></Box>
      </Box>
    );
  }
  if (rows.length === 0) {
    return (
      <Box flexDirection="column" width={width} height={height} overflow="hidden">
        {title}
        <Line width={width}><Text dimColor>{p.filter ? `no node matches "${p.filter}"` : 'the circuit has no nodes'}</Text></Line>
      </Box>
    );
  }
  // Bars compare nodes; y's "effect" is the total effect of the run, so it gets no bar and no say in the scale.
  const isNode = (r: Row): r is NodeRow => r.kind === 'node' && r.node.submodule !== METRIC_NODE;
  const maxAbs = Math.max(1e-12, ...rows.filter(isNode).map((r) => Math.abs(r.node.effect ?? 0)));
  const idWidth = Math.min(16, Math.max(6, ...rows.map((r) => (r.kind === 'node' ? r.node.id.length : 0))));
  const barWidth = width >= 44 ? 8 : 5;
  const cursorRow = rows.findIndex((r) => r.kind === 'node' && r.node.id === p.selected);
  const offset = scrollOffset(rows.length, cursorRow, listRows);
  const visible = rows.slice(offset, offset + listRows);
  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      {title}
      {visible.map((r, i) => {
        if (r.kind === 'group') {
          const label = r.submodule === METRIC_NODE ? 'y (metric)' : r.submodule;
          return <Line key={`g-${r.submodule}`} width={width}><Text bold dimColor>{label}</Text><Text dimColor>{` ${r.shown}${r.shown !== r.total ? `/${r.total}` : ''}`}</Text></Line>;
        }
        const n = r.node;
        const here = n.id === p.selected;
        const picked = p.picks.has(n.id);
        const effect = n.effect ?? 0;
        return (
          <Line key={`n-${n.id}-${offset + i}`} width={width}>
            <Text inverse={here}>{here ? '›' : ' '}{picked ? '●' : ' '}{cell(n.id, idWidth)}</Text>
            <Text color={effectColor(n.effect)}>{` ${n.effect === null ? '    n/a' : signed(effect)} `}</Text>
            <Text color={effectColor(n.effect)}>{cell(isNode(r) ? bar(effect, maxAbs, barWidth) : '', barWidth)}</Text>
            <Text dimColor>{r.annotation ? ` ${r.annotation}` : isErrorNode(circuit, n) ? ' SAE error' : ''}</Text>
          </Line>
        );
      })}
    </Box>
  );
}
