// `sfc tui`: the interactive terminal UI (src/tui/). Ink and React load only when this command
// runs, so the other commands start without them.

import { DEFAULT_SAE_SET } from '@sfc/steering';
import { TUI_OPTIONS, DEFAULT_DISCOVERY_OUT } from '../tui/sfc-session.js';
import type { SfcCommand } from './command.js';

export const tuiCommand: SfcCommand = {
  command: 'tui [circuit]',
  describe: 'Interactive terminal UI: browse a circuit, inspect nodes, steer features live (top next tokens and continuations before/after), run discovery with progress',
  options: [...TUI_OPTIONS, 'out'],
  builder: (y) => y
    .positional('circuit', { type: 'string', describe: 'Circuit file (sfc.circuit/v1) to open; without one, press D to discover' })
    .option('model-id', { type: 'string', requiresArg: true, describe: 'Neuronpedia model id for feature links, e.g. pythia-70m-deduped' })
    .option('sae-set', { type: 'string', requiresArg: true, default: DEFAULT_SAE_SET, describe: 'Neuronpedia SAE set of the layers (e-res-SET, 3-res-SET, …)' })
    .option('prompt', { type: 'string', requiresArg: true, describe: 'Prompt to steer on (default: the first example of --data)' })
    .option('answer', { type: 'string', requiresArg: true, describe: 'Expected next token of the prompt (one token, e.g. " are"): gives the metric' })
    .option('patch-answer', { type: 'string', requiresArg: true, describe: 'Contrasting token (e.g. " is"): the metric becomes logit[patch] − logit[answer]' })
    .option('generate', { type: 'number', requiresArg: true, default: 8, describe: 'Continuation tokens generated before and after steering (0: none)' }),
  examples: [
    ['$0 tui circuit.json', 'Browse a circuit (no model needed)'],
    ['$0 tui circuit.json --model fixtures/small-a --dictionaries fixtures/small-a/dictionaries --data fixtures/small-a/data.jsonl', 'Browse and steer live; D rediscovers'],
    ['$0 tui circuit.json --annotations ann.jsonl --model-id pythia-70m-deduped', 'With feature labels and Neuronpedia links'],
    [`$0 tui --model M --dictionaries D --data pairs.jsonl --out found.json`, `Start empty, press D to discover (default output ${DEFAULT_DISCOVERY_OUT})`],
  ],
  run: async (argv, io) => {
    const { runTui } = await import('../tui/run.js');
    await runTui(argv, io);
  },
};
