// `sfc tui`'s entry: checks for a terminal, opens the real session from the config and flags,
// reads the annotations, and runs the Ink app on the terminal's alternate screen (the shell's
// scrollback is left as it was) until the user quits.
/* @jsxRuntime automatic */ // for tsx runs from source: the root tsconfig has no "jsx" setting

import { resolve } from 'node:path';
import { render } from 'ink';
import { InputError } from '@sfc/core';
import { DEFAULT_SAE_SET } from '@sfc/steering';
import type { GlobalArgs } from '../commands/command.js';
import type { CliIO } from '../io.js';
import { readAnnotations } from '../annotations.js';
import { App } from './app.js';
import { SfcTuiSession } from './sfc-session.js';

const ALT_SCREEN_ON = '\u001B[?1049h\u001B[H';
const ALT_SCREEN_OFF = '\u001B[?1049l';

function optionalString(argv: GlobalArgs, key: string): string | undefined {
  const v = argv[key];
  return typeof v === 'string' ? v : undefined;
}

export async function runTui(argv: GlobalArgs, io: CliIO): Promise<void> {
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    throw new InputError('sfc tui needs an interactive terminal (stdin and stdout are not both a TTY)',
      'run it in a terminal; for scripts use `sfc discover`, `sfc plot` or `sfc steer`');
  }
  const generate = argv.generate as number;
  if (!Number.isInteger(generate) || generate < 0) throw new InputError(`--generate must be an integer ≥ 0, got ${String(argv.generate)}`);
  const prompt = optionalString(argv, 'prompt');
  const answer = optionalString(argv, 'answer');
  const patchAnswer = optionalString(argv, 'patch-answer');
  const out = optionalString(argv, 'out');
  const session = await SfcTuiSession.open(io, argv, {
    ...(prompt !== undefined ? { prompt } : {}), ...(answer !== undefined ? { answer } : {}),
    ...(patchAnswer !== undefined ? { patchAnswer } : {}), ...(out !== undefined ? { out } : {}),
  });
  const annotationsPath = session.setting<string>('annotations'); // --annotations or the config key, made absolute
  const annotations = annotationsPath !== undefined ? await readAnnotations(annotationsPath) : undefined;
  const circuitPath = optionalString(argv, 'circuit');
  const modelId = optionalString(argv, 'model-id');
  process.stdout.write(ALT_SCREEN_ON);
  try {
    const app = render(
      <App session={session} {...(circuitPath !== undefined ? { circuitPath: resolve(io.cwd, circuitPath) } : {})}
        {...(annotations ? { annotations } : {})}
        neuronpedia={{ ...(modelId ? { modelId } : {}), saeSet: optionalString(argv, 'sae-set') ?? DEFAULT_SAE_SET }}
        generate={generate} />,
      { exitOnCtrlC: true, patchConsole: true },
    );
    await app.waitUntilExit();
  } finally {
    process.stdout.write(ALT_SCREEN_OFF);
    await session.close();
  }
}
