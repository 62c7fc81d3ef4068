// Option definitions shared by every command: one table, so `--steps` means the same thing,
// with the same help and the same config key, wherever it appears. Options backed by a config
// key carry no yargs default — an absent flag must fall through to the config file.

import type { Argv, Options } from 'yargs';
import { fieldAt } from './config/schema.js';
import type { FlagValue } from './config/config.js';

export interface OptionDef {
  readonly flag: string;
  readonly yargs: Options;
  /** The sfc.config.json key this flag overrides. */
  readonly configKey?: string;
}

const def = (flag: string, yargs: Options, configKey?: string): OptionDef => ({ flag, yargs, configKey });

export const OPTIONS = {
  backend: def('backend', { type: 'string', requiresArg: true, describe: 'Backend: tfjs, tfjs-cpu, tfjs-wasm, tfjs-tensorflow, onnx or a package name (comma-separated: tried in order)' }, 'backend'),
  model: def('model', { type: 'string', requiresArg: true, normalize: false, describe: 'Hugging Face model folder (config.json, model.safetensors, tokenizer.json)' }, 'model'),
  dictionaries: def('dictionaries', { type: 'string', requiresArg: true, describe: 'Folder of SAEs, one sub-folder per submodule' }, 'dictionaries.folder'),
  submodules: def('submodules', { type: 'string', requiresArg: true, describe: 'Load SAEs only for these submodules, comma-separated: sfc names, TransformerLens hooks or patterns (e.g. resid_* or resid_0,blocks.1.hook_resid_post)' }, 'dictionaries.only'),
  dictRun: def('dict-run', { type: 'string', requiresArg: true, describe: 'Run-id sub-folder where a submodule folder holds several dictionaries (e.g. 10_32768)' }, 'dictionaries.runId'),
  data: def('data', { type: 'string', requiresArg: true, describe: 'Prompt pairs, JSON lines {clean_prefix, patch_prefix, clean_answer, patch_answer}; or single prompts: JSON lines {clean_prefix, clean_answer}, or a cluster JSON {"<id>": {"context": [...], "answer": " x"}}' }, 'data'),
  method: def('method', { type: 'string', requiresArg: true, choices: ['attrib', 'ig', 'exact'], describe: 'Node-effect method' }, 'circuit.method'),
  steps: def('steps', { requiresArg: true, describe: 'Integrated-gradient steps (integer ≥ 1)' }, 'circuit.steps'),
  aggregation: def('aggregation', { type: 'string', requiresArg: true, choices: ['sum', 'none'], describe: 'Sum effects over positions, or keep one per position' }, 'circuit.aggregation'),
  nodeThreshold: def('node-threshold', { requiresArg: true, describe: 'Keep nodes with |effect| above this (number ≥ 0)' }, 'circuit.nodeThreshold'),
  edgeThreshold: def('edge-threshold', { requiresArg: true, describe: 'Keep edges with |weight| above this (number ≥ 0; 0 keeps all nonzero)' }, 'circuit.edgeThreshold'),
  batchSize: def('batch-size', { requiresArg: true, describe: 'Examples per batch (integer ≥ 1)' }, 'circuit.batchSize'),
  numExamples: def('num-examples', { requiresArg: true, describe: 'Use at most this many usable examples (integer ≥ 1)' }, 'circuit.numExamples'),
  seed: def('seed', { requiresArg: true, describe: 'Shuffle seed for the data file (integer ≥ 0)' }, 'circuit.seed'),
  minLengthOnly: def('min-length-only', { type: 'boolean', describe: 'Pairs: keep only the shortest token-length class (--no-min-length-only keeps every length, in right-padded batches); single prompts keep every length' }, 'circuit.minLengthOnly'),
  ablation: def('ablation', { type: 'string', requiresArg: true, choices: ['mean', 'zero', 'resample'], describe: 'Values for ablated nodes' }, 'evaluate.ablation'),
  handleErrors: def('handle-errors', { type: 'string', requiresArg: true, choices: ['default', 'keep', 'remove'], describe: 'How SAE error nodes are ablated' }, 'evaluate.handleErrors'),
  thresholds: def('thresholds', { type: 'string', requiresArg: true, describe: 'Node thresholds to evaluate, comma-separated (e.g. 0.01,0.1,1)' }, 'evaluate.thresholds'),
  evalNumExamples: def('num-examples', { requiresArg: true, describe: 'Examples used for evaluation (integer ≥ 1)' }, 'evaluate.numExamples'),
  evalBatchSize: def('batch-size', { requiresArg: true, describe: 'Examples per batch (integer ≥ 1)' }, 'evaluate.batchSize'),
  startLayer: def('start-layer', { requiresArg: true, describe: 'Ablate only from this layer on (integer ≥ -1; -1 = every layer)' }, 'evaluate.startLayer'),
  includeEmbed: def('include-embed', { type: 'boolean', describe: 'Ablate embed too (feature-circuits never does)' }, 'evaluate.includeEmbed'),
  annotations: def('annotations', { type: 'string', requiresArg: true, describe: 'Feature labels: feature-circuits JSON lines {"Name": "resid_5/3036", "Annotation": "..."} or a Neuronpedia explanation export' }, 'annotations'),
  topContexts: def('top-contexts', { type: 'string', requiresArg: true, describe: 'Folder of top-activating contexts (written by `sfc dict top`, one file per SAE)' }, 'topContexts'),
  out: def('out', { type: 'string', requiresArg: true, describe: 'Output file (written atomically)' }),
  json: def('json', { type: 'boolean', describe: 'Print machine-readable JSON on stdout' }),
  text: def('text', { type: 'string', requiresArg: true, describe: 'Prompt text' }),
} as const satisfies Record<string, OptionDef>;

export type OptionId = keyof typeof OPTIONS;

/** Global options, on every command. */
export const GLOBAL_OPTIONS: Record<string, Options> = {
  config: { type: 'string', requiresArg: true, global: true, describe: 'Config file (default: sfc.config.json here or in a parent folder)' },
  verbose: { type: 'boolean', global: true, describe: 'Print stack traces and details of failures' },
  quiet: { type: 'boolean', global: true, describe: 'No progress and no warnings on stderr' },
  'allow-unknown': { type: 'boolean', global: true, describe: 'Run unknown words as the tokenizer\'s unknown token (warns; default: refuse)' },
};

/** Adds options to a command builder; config-backed options show their key and default in help. */
export function withOptions<T>(y: Argv<T>, ids: readonly OptionId[], required: readonly OptionId[] = []): Argv<T> {
  for (const id of ids) {
    const o: OptionDef = OPTIONS[id];
    const field = o.configKey ? fieldAt(o.configKey) : undefined;
    const extra: Options = {};
    if (field) {
      extra.describe = `${o.yargs.describe} [config: ${field.path}]`;
      if (field.default !== undefined) extra.defaultDescription = JSON.stringify(field.default).replace(/^"|"$/g, '');
    }
    if (required.includes(id) && !o.configKey) extra.demandOption = true;
    y = y.option(o.flag, { ...o.yargs, ...extra });
  }
  return y;
}

/** The config-backed flags present in parsed argv, ready for resolveConfig. */
export function flagValues(argv: Record<string, unknown>, ids: readonly OptionId[]): FlagValue[] {
  const out: FlagValue[] = [];
  for (const id of ids) {
    const o: OptionDef = OPTIONS[id];
    if (!o.configKey) continue;
    const raw = argv[o.flag];
    if (raw !== undefined) out.push({ key: o.configKey, flag: `--${o.flag}`, raw });
  }
  return out;
}
