// `sfc forward`: token ids and logits at every position for one prompt, written as
// sfc.forward/v1 JSON — the file parity checks against PyTorch read.

import { resolve } from 'node:path';
import type { Model } from '@sfc/core';
import { float32Rows } from '../float-json.js';
import { Session } from '../session.js';
import { checkOutputPath, writeFileAtomic } from '../write-atomic.js';
import type { SfcCommand } from './command.js';

export interface ForwardOutput {
  readonly tokens: number[];
  /** Row-major [positions, vocab]. */
  readonly logits: Float32Array;
  readonly vocab: number;
}

export async function forwardText(model: Model, text: string): Promise<ForwardOutput> {
  const ids = model.encode(text);
  const ops = model.ops;
  const logits = await ops.scope(async () => {
    const { logits } = await model.forward(model.tokens(Int32Array.from(ids), 1, ids.length));
    return logits!;
  });
  try {
    const vocab = logits.shape[logits.shape.length - 1]!;
    const data = await logits.data();
    if (!(data instanceof Float32Array) || data.length !== ids.length * vocab) {
      throw new Error(`internal: logits of shape [${logits.shape.join(', ')}] for ${ids.length} tokens`);
    }
    return { tokens: ids, logits: data, vocab };
  } finally {
    logits.dispose();
  }
}

/** The sfc.forward/v1 document as chunks of JSON text. */
export function* forwardJson(out: ForwardOutput): Generator<string> {
  yield `{"schema":"sfc.forward/v1","tokens":${JSON.stringify(out.tokens)},"logits":`;
  yield* float32Rows(out.logits, out.tokens.length, out.vocab);
  yield '}\n';
}

export const forwardCommand: SfcCommand = {
  command: 'forward',
  describe: 'Run a model on one prompt and write token ids and logits at every position (sfc.forward/v1)',
  options: ['model', 'text', 'backend', 'out'],
  required: ['text', 'out'],
  examples: [
    ['$0 forward --model fixtures/small-a --text "The parents that the guards know" --out logits.json', 'Logits of the bundled test model'],
  ],
  run: (argv, io) => Session.with(io, argv, ['model', 'backend'], async (s) => {
    const outPath = resolve(io.cwd, argv.out as string);
    checkOutputPath(outPath);
    const model = await s.model();
    const out = await forwardText(model, argv.text as string);
    await writeFileAtomic(outPath, forwardJson(out));
    s.status(`wrote ${argv.out as string}: ${out.tokens.length} tokens × ${out.vocab} logits`);
  }),
};
