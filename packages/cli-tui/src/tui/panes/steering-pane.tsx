// The steering panel: the op and strength the keys set, whether live reruns are on, the picked
// nodes, and one status line (what to do next, running, or why steering cannot run).
/* @jsxRuntime automatic */ // for tsx runs from source: the root tsconfig has no "jsx" setting

import { Box, Text } from 'ink';
import { describeSettings, type SteerSettings } from '../steer-settings.js';
import { Line, Title } from './line.js';

export type SteerStatus =
  | { readonly kind: 'hint'; readonly text: string }
  | { readonly kind: 'running'; readonly text: string }
  | { readonly kind: 'ok'; readonly text: string }
  | { readonly kind: 'error'; readonly text: string };

export interface SteeringPaneProps {
  readonly width: number;
  readonly height: number;
  readonly settings: SteerSettings;
  readonly live: boolean;
  readonly picks: readonly string[];
  readonly status: SteerStatus;
}

const STATUS_COLOR = { hint: undefined, running: 'yellow', ok: 'green', error: 'redBright' } as const;

export function SteeringPane(p: SteeringPaneProps) {
  const { width, height } = p;
  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      <Title width={width} title="Steering" info={<Text><Text bold color="magenta">{describeSettings(p.settings)}</Text><Text dimColor>{p.live ? ' · live' : ' · live off'}</Text></Text>}
        hint="o op · +/- strength · C calibrate" />
      <Line width={width}>
        <Text dimColor>{`picks (${p.picks.length}) `}</Text>
        <Text>{p.picks.length ? p.picks.join(' ') : '—'}</Text>
      </Line>
      <Line width={width}>
        <Text color={STATUS_COLOR[p.status.kind]} dimColor={p.status.kind === 'hint'}>{p.status.text}</Text>
      </Line>
    </Box>
  );
}
