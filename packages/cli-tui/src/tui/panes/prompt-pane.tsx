// The prompt steering runs on, with its answer and contrasting answer (they give the logit diff). In
// edit mode (`p`) it shows all three fields with a cursor on the one being typed.
/* @jsxRuntime automatic */ // for tsx runs from source: the root tsconfig has no "jsx" setting

import { Box, Text } from 'ink';
import { showToken } from '../format.js';
import type { PromptInput } from '../session.js';
import type { PromptField } from '../ui-state.js';
import { Line, Title } from './line.js';

export interface PromptPaneProps {
  readonly width: number;
  readonly height: number;
  readonly prompt: PromptInput;
  readonly editing: boolean;
  readonly draft: PromptInput;
  readonly field: PromptField;
}

const LABELS: Record<PromptField, string> = { text: 'prompt ', answer: 'answer ', patchAnswer: 'vs     ' };

function answers(p: PromptInput): string {
  if (!p.answer) return 'no answer: no logit diff';
  return p.patchAnswer ? `"${showToken(p.answer)}" vs "${showToken(p.patchAnswer)}"` : `"${showToken(p.answer)}"`;
}

export function PromptPane(p: PromptPaneProps) {
  const { width, height } = p;
  if (p.editing) {
    return (
      <Box flexDirection="column" width={width} height={height} overflow="hidden">
        <Title width={width} title="Prompt" info="editing" hint="Tab next · Enter done · Esc cancel" />
        {(['text', 'answer', 'patchAnswer'] as const).map((f) => (
          <Line key={f} width={width}>
            <Text dimColor>{LABELS[f]}</Text>
            <Text bold={f === p.field}>{p.draft[f]}</Text>
            {f === p.field ? <Text inverse> </Text> : null}
          </Line>
        ))}
      </Box>
    );
  }
  return (
    <Box flexDirection="column" width={width} height={height} overflow="hidden">
      <Title width={width} title="Prompt" info={<Text dimColor>{answers(p.prompt)}</Text>} hint="p edit" />
      <Line width={width}>{p.prompt.text ? <Text>{p.prompt.text}</Text> : <Text dimColor>(empty: press p to type one)</Text>}</Line>
    </Box>
  );
}
