// The selected node: its effect, annotation, strongest incoming and outgoing edges (as many as
// the pane has rows for), its top-activating contexts when `sfc dict top` computed them, and its Neuronpedia page (wrapped over two rows when it is wider than
// the pane, so the link is never cut).
/* @jsxRuntime automatic */ // for tsx runs from source: the root tsconfig has no "jsx" setting

import { Box, Text } from 'ink';
import { METRIC_NODE, type Circuit, type CircuitEdge, type CircuitNode } from '@sfc/core';
import { isErrorNode, neuronpediaLink, nodeEdges, type NeuronpediaOptions } from '../circuit-view.js';
import { cell, signed } from '../format.js';
import type { TopContextsView } from '../session.js';
import { effectColor, Line, Title } from './line.js';
import { TopContextLines } from './top-contexts.js';

export interface NodePaneProps {
  readonly width: number;
  readonly height: number;
  readonly circuit: Circuit | undefined;
  readonly node: CircuitNode | undefined;
  readonly annotation: string | undefined;
  readonly picked: boolean;
  readonly neuronpedia: NeuronpediaOptions;
  /** The feature's top contexts (`sfc dict top`); undefined when the session has none to offer. */
  readonly contexts?: TopContextsView | undefined;
  /** Whether to give rows to top contexts (features of a session that can look them up). */
  readonly showContexts?: boolean;
}

function EdgeLine({ width, label, edge, other }: { readonly width: number; readonly label: string; readonly edge: CircuitEdge | undefined; readonly other: 'source' | 'target' }) {
  if (!edge) return <Line width={width}>{label.trim() ? <Text dimColor>{label}(none)</Text> : null}</Line>;
  return (
    <Line width={width}>
      <Text dimColor>{label}</Text>
      <Text>{cell(edge[other], Math.max(8, width - label.length - 9))}</Text>
      <Text color={effectColor(edge.weight)}>{` ${signed(edge.weight)}`}</Text>
    </Line>
  );
}

export function NodePane(p: NodePaneProps) {
  const { width, height, circuit, node } = p;
  if (!circuit || !node) {
    return (
      <Box flexDirection="column" width={width} height={height} overflow="hidden">
        <Title width={width} title="Node" />
        <Line width={width}><Text dimColor>{circuit ? 'no node selected' : 'no circuit'}</Text></Line>
      </Box>
    );
  }
  const link = neuronpediaLink(circuit, node, p.neuronpedia);
  const linkText = 'url' in link ? link.url : link.none;
  const linkRows = 'url' in link && linkText.length > width ? 2 : 1;
  const free = Math.max(2, height - 2 - linkRows);
  // Top contexts take up to half the free rows (at least one for the reason there are none).
  const contextRows = p.showContexts ? Math.max(1, Math.min(p.contexts && 'contexts' in p.contexts ? p.contexts.contexts.length : 1, Math.floor(free / 2))) : 0;
  const edgeRows = Math.max(2, free - contextRows);
  const inRows = Math.ceil(edgeRows / 2);
  const outRows = edgeRows - inRows;
  const { incoming, outgoing } = nodeEdges(circuit, node.id, Math.max(inRows, outRows));
  const kind = node.submodule === METRIC_NODE ? 'metric' : isErrorNode(circuit, node) ? 'SAE error' : `feature ${node.index}`;
  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      <Line width={width}>
        <Text bold color="yellow">Node </Text>
        <Text bold>{node.id}</Text>
        <Text color={effectColor(node.effect)}>{`  ${node.effect === null ? 'effect n/a' : signed(node.effect, 4)}`}</Text>
        <Text dimColor>{`  ${kind}${node.pos !== null ? ` @${node.pos}` : ''}`}</Text>
        {p.picked ? <Text color="green">  ● picked</Text> : null}
      </Line>
      <Line width={width}>{p.annotation ? <Text italic>“{p.annotation}”</Text> : <Text dimColor>no annotation</Text>}</Line>
      {Array.from({ length: inRows }, (_, i) => <EdgeLine key={`in${i}`} width={width} label={i === 0 ? 'in  ← ' : '      '} edge={incoming[i]} other="source" />)}
      {Array.from({ length: outRows }, (_, i) => <EdgeLine key={`out${i}`} width={width} label={i === 0 ? 'out → ' : '      '} edge={outgoing[i]} other="target" />)}
      <TopContextLines width={width} rows={contextRows} view={p.contexts} />
      <Box width={width} height={linkRows} overflow="hidden">
        {'url' in link ? <Text wrap="wrap" color="cyan">{linkText}</Text> : <Text dimColor wrap="truncate-end">{linkText}</Text>}
      </Box>
    </Box>
  );
}
