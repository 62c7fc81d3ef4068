// The live result of steering: the metric before → after, the top next tokens on both sides
// (tokens that changed rank are highlighted), and the greedy continuations. The last result stays
// on screen (dimmed) while a newer run is computing; a failed run shows its whole error instead.
/* @jsxRuntime automatic */ // for tsx runs from source: the root tsconfig has no "jsx" setting

import { Box, Text } from 'ink';
import type { TopToken } from '@sfc/steering';
import { cell, percent, showToken, signed } from '../format.js';
import type { SteerResult } from '../session.js';
import { Line, Title } from './line.js';

export interface ResultPaneProps {
  readonly width: number;
  readonly height: number;
  readonly result: SteerResult | undefined;
  /** A run is computing (the shown result is from the previous one). */
  readonly running: boolean;
  /** What the result pane says when there is no result yet. */
  readonly empty: string;
  /** The last run failed: shown in full instead of the result (the status line has room for less). */
  readonly error?: string;
}

function TokenCell({ width, rank, token, other }: { readonly width: number; readonly rank: number; readonly token: TopToken | undefined; readonly other: readonly TopToken[] }) {
  if (!token) return <Text>{cell('', width)}</Text>;
  const pct = percent(token.logprob);
  const moved = other[rank]?.id !== token.id;
  return (
    <Text>
      <Text dimColor>{`${rank + 1} `}</Text>
      <Text bold={moved}>{cell(showToken(token.token), Math.max(1, width - 3 - pct.length))}</Text>
      <Text>{` ${pct}`}</Text>
    </Text>
  );
}

export function ResultPane(p: ResultPaneProps) {
  const { width, height, result } = p;
  const body = Math.max(0, height - 1);
  if (p.error !== undefined && !p.running) {
    return (
      <Box flexDirection="column" width={width} height={height} overflow="hidden">
        <Title width={width} title="Result" info={<Text color="redBright">steering failed</Text>} />
        <Box width={width} height={body} overflow="hidden"><Text wrap="wrap" color="redBright">{p.error}</Text></Box>
      </Box>
    );
  }
  if (!result) {
    return (
      <Box flexDirection="column" width={width} height={height} overflow="hidden">
        <Title width={width} title="Result" info={p.running ? <Text color="yellow">running…</Text> : undefined} />
        <Box width={width} height={body} overflow="hidden"><Text wrap="wrap" dimColor>{p.empty}</Text></Box>
      </Box>
    );
  }
  const { before, after } = result;
  const hasCont = before.continuation !== undefined || after.continuation !== undefined;
  const contRows = hasCont && body >= 5 ? 2 : 0;
  const topRows = Math.max(0, Math.min(Math.max(before.top.length, after.top.length), body - 1 - contRows));
  const klRow = body - 1 - contRows - topRows >= 1 && result.kl !== undefined;
  const col = Math.floor((width - 3) / 2);
  const metric = before.metric !== undefined && after.metric !== undefined
    ? <Text>
        <Text dimColor>{`${result.metricName ?? 'metric'} `}</Text>
        <Text>{signed(before.metric)}</Text>
        <Text> → </Text>
        <Text bold>{signed(after.metric)}</Text>
        <Text dimColor>{`  Δ${signed(after.metric - before.metric)}`}</Text>
      </Text>
    : <Text dimColor>no metric (give an answer)</Text>;
  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      <Line width={width}>
        <Text bold color="yellow">Result </Text>
        {metric}
        {p.running ? <Text color="yellow"> …</Text> : null}
      </Line>
      <Line width={width}><Text dimColor>{`${cell('  before', col)} │ ${cell('  after', col)}`}</Text></Line>
      {Array.from({ length: topRows }, (_, r) => (
        <Line key={`t${r}`} width={width}>
          <Text dimColor={p.running}>
            <TokenCell width={col} rank={r} token={before.top[r]} other={after.top} />
            <Text dimColor> │ </Text>
            <TokenCell width={col} rank={r} token={after.top[r]} other={before.top} />
          </Text>
        </Line>
      ))}
      {contRows ? (
        <>
          <Line width={width}><Text dimColor>before </Text><Text dimColor={p.running}>{showContinuation(before.continuation)}</Text></Line>
          <Line width={width}><Text dimColor>after  </Text><Text bold dimColor={p.running}>{showContinuation(after.continuation)}</Text></Line>
        </>
      ) : null}
      {klRow ? <Line width={width}><Text dimColor>{result.kl! < 1e-9
        // Scaling or ablating a feature that is 0 on this prompt changes nothing: say so.
        ? 'no change: inactive here? try clamp or add'
        : outcomeText(result)}</Text></Line> : null}
    </Box>
  );
}

/** KL, whether the steered top-1 is the contrasting answer, and the continuations' fluency (docs/concepts.md). */
export function outcomeText(r: SteerResult): string {
  const parts = [`KL(before‖after) ${r.kl!.toFixed(4)} nats`];
  if (r.onTarget !== undefined) parts.push(r.onTarget ? 'on target' : 'off target');
  const f = r.fluency;
  if (f && f.before !== null && f.after !== null) parts.push(`fluency ${f.before.toFixed(2)} → ${f.after.toFixed(2)} nats/token`);
  return parts.join(' · ');
}

function showContinuation(text: string | undefined): string {
  return text === undefined ? '—' : `…${text.replace(/\n/g, '⏎')}`;
}
