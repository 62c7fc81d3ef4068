// `sfc demo`: the whole pipeline on the embedded default (the agreement model, its SAEs and
// datasets shipped in embedded/agreement/), offline, in about a minute: discover the circuit of
// subject–verb agreement across a relative clause (`rc` train split; IG node effects + edges),
// write it as sfc.circuit/v1 and an SVG plot, evaluate faithfulness and completeness on the test
// split, then steer the circuit's top features toward the other number: the strength is
// calibrated on the training prompts (on-target rate ≥ the target at the smallest KL) and the
// outcome — flip rate, on-target rate, KL — measured on the held-out test prompts. Every step is a public API of core, @sfc/dictionaries, @sfc/steering and the plot
// module; this file only wires them together and prints the summary.

import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  batchExamples, buildCircuit, checkOutputFolder, circuitNodeEffects, discover, evaluate, InputError, Model, NotFoundError, recordInputs, selectExamples,
  serializeCircuit, type Circuit, type Dictionary, type PromptBatch,
} from '@sfc/core';
import { loadDictionarySet } from '@sfc/dictionaries';
import {
  ALL_POSITIONS, calibrate, caseAnswerPool, DEFAULT_TARGET_RATE, formatOp, interventionsFor, parseOp, score, selectCircuitFeatures, Steering, targetsByCase, withStrength, withTargets,
  type Calibration, type OpKind, type ScoreSummary,
} from '@sfc/steering';
import { UsageError } from '../error-format.js';
import { circuitToDot } from '../plot/dot.js';
import { renderSvg } from '../plot/render.js';
import type { ProgressReporter } from '../progress.js';
import { Session } from '../session.js';
import { writeFileAtomic } from '../write-atomic.js';
import type { GlobalArgs, SfcCommand } from './command.js';
import { fixed } from '../number-format.js';

export const DEMO_SCHEMA = 'sfc.demo/v1';

/** embedded/agreement at the repo root (same depth from src/commands and dist/commands). */
export const EMBEDDED_AGREEMENT_DIR = fileURLToPath(new URL('../../../../embedded/agreement/', import.meta.url));

export interface DemoSettings {
  /** Discovery examples from rc_train. */
  readonly numExamples: number;
  /** Evaluation and steering examples from rc_test. */
  readonly evalExamples: number;
  readonly batchSize: number;
  readonly steps: number;
  readonly nodeThreshold: number;
  readonly edgeThreshold: number;
  /** Features steered: the circuit's largest-|effect| features of this submodule (default: the last residual stream). */
  readonly steerAt: string | undefined;
  /** How many (error nodes excluded). */
  readonly topK: number;
  /** The op applied to them at every position (its strength is calibrated unless `strength` is set). */
  readonly op: Exclude<OpKind, 'ablate'>;
  /** A fixed strength instead of calibration. */
  readonly strength: number | undefined;
  /** On-target rate the calibration aims for. */
  readonly targetRate: number;
}

export const DEMO_DEFAULTS: DemoSettings = {
  numExamples: 128, evalExamples: 256, batchSize: 32, steps: 10, nodeThreshold: 0.3, edgeThreshold: 0.1, steerAt: undefined, topK: 10,
  op: 'patch', strength: undefined, targetRate: DEFAULT_TARGET_RATE,
};
const DEMO_OPS = ['patch', 'scale', 'clamp', 'add'] as const;

export interface DemoSummary {
  readonly schema: typeof DEMO_SCHEMA;
  readonly faithfulness: number | null;
  readonly completeness: number | null;
  readonly circuitNodes: number;
  readonly circuitEdges: number;
  /** Measured on the test prompts at steerStrength. */
  readonly flipRate: number;
  readonly onTargetRate: number;
  readonly klMean: number;
  readonly steerStrength: number;
  readonly seconds: number;
}

function numberFlag(argv: GlobalArgs, flag: string, check: (n: number) => boolean, what: string): number | undefined {
  const v = argv[flag];
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`--${flag} must be ${what}, got ${String(v)}`, 'run `sfc demo --help` for usage');
  return n;
}
const posInt = (n: number) => Number.isSafeInteger(n) && n >= 1;

function settings(argv: GlobalArgs): DemoSettings {
  const d = DEMO_DEFAULTS;
  if ((argv['steer-op'] === 'clamp' || argv['steer-op'] === 'add') && argv.strength === undefined) {
    throw new UsageError(`--steer-op ${String(argv['steer-op'])} needs --strength: its values depend on the features' activations, so there is no default grid to calibrate over`,
      'give --strength V, or calibrate over a grid with `sfc steer --calibrate --sweep …`');
  }
  return {
    numExamples: numberFlag(argv, 'num-examples', posInt, 'an integer ≥ 1') ?? d.numExamples,
    evalExamples: numberFlag(argv, 'eval-examples', posInt, 'an integer ≥ 1') ?? d.evalExamples,
    batchSize: numberFlag(argv, 'batch-size', posInt, 'an integer ≥ 1') ?? d.batchSize,
    steps: numberFlag(argv, 'steps', posInt, 'an integer ≥ 1') ?? d.steps,
    nodeThreshold: numberFlag(argv, 'node-threshold', (n) => n >= 0, 'a number ≥ 0') ?? d.nodeThreshold,
    edgeThreshold: numberFlag(argv, 'edge-threshold', (n) => n >= 0, 'a number ≥ 0') ?? d.edgeThreshold,
    steerAt: typeof argv['steer-at'] === 'string' ? argv['steer-at'] : d.steerAt,
    topK: numberFlag(argv, 'top-k', posInt, 'an integer ≥ 1') ?? d.topK,
    op: (argv['steer-op'] as DemoSettings['op'] | undefined) ?? d.op,
    strength: numberFlag(argv, 'strength', () => true, 'a number'),
    targetRate: numberFlag(argv, 'target-rate', (n) => n > 0 && n <= 1, 'a number in (0, 1]') ?? d.targetRate,
  };
}

/**
 * The split's batches; each prompt's steering targets are the patch answers of its case in the
 * whole split file (a singular-subject prompt is on target when the steered top-1 is any plural
 * verb form the split uses: the model spreads its mass over four auxiliaries, so the answer alone is top-1 on only
 * about a quarter of the prompts even before steering — docs/concepts.md, steering outcome).
 */
async function examples(model: Model, path: string, n: number, batchSize: number, warn: (m: string) => void): Promise<PromptBatch[]> {
  if (!existsSync(path)) throw new NotFoundError(`${path} does not exist`, 'the embedded default is part of the sfc repository (embedded/agreement); restore it with git or regenerate it (docs/embedded.md)');
  const text = await readFile(path, 'utf8');
  const sel = selectExamples(text, model.tokenizer, { numExamples: n, seed: 12, source: path, onWarning: warn, maxLength: model.spec.dims.maxPositions });
  return withTargets(batchExamples(sel.examples, batchSize), targetsByCase(sel.examples, caseAnswerPool(text, model.tokenizer, path)));
}

const fmt = (v: number | null, digits = 2) => (v === null ? 'undefined' : fixed(v, digits));

export const demoCommand: SfcCommand = {
  command: 'demo',
  describe: 'Run the whole pipeline on the embedded agreement model: discover the rc circuit, plot it, evaluate it, steer it',
  options: ['backend', 'json'],
  builder: (y) => y
    .option('out', { type: 'string', requiresArg: true, default: 'sfc-demo', describe: 'Folder for circuit.json, circuit.svg and demo.json (created)' })
    .option('num-examples', { requiresArg: true, describe: 'Discovery examples from rc_train', defaultDescription: String(DEMO_DEFAULTS.numExamples) })
    .option('eval-examples', { requiresArg: true, describe: 'Evaluation and steering examples from rc_test', defaultDescription: String(DEMO_DEFAULTS.evalExamples) })
    .option('batch-size', { requiresArg: true, describe: 'Examples per batch', defaultDescription: String(DEMO_DEFAULTS.batchSize) })
    .option('steps', { requiresArg: true, describe: 'Integrated-gradient steps', defaultDescription: String(DEMO_DEFAULTS.steps) })
    .option('node-threshold', { requiresArg: true, describe: 'Circuit nodes: |effect| above this', defaultDescription: String(DEMO_DEFAULTS.nodeThreshold) })
    .option('edge-threshold', { requiresArg: true, describe: 'Circuit edges: |weight| above this', defaultDescription: String(DEMO_DEFAULTS.edgeThreshold) })
    .option('steer-at', { type: 'string', requiresArg: true, describe: 'Submodule whose circuit features are steered', defaultDescription: 'the last resid_L' })
    .option('top-k', { requiresArg: true, describe: 'Circuit features steered (largest |effect| at --steer-at)', defaultDescription: String(DEMO_DEFAULTS.topK) })
    .option('steer-op', { type: 'string', requiresArg: true, choices: DEMO_OPS, describe: 'Op applied to the steered features (patch: toward their values on the other-number prompt)', defaultDescription: DEMO_DEFAULTS.op })
    .option('strength', { requiresArg: true, describe: 'Fixed op strength (patch fraction, scale factor, clamp value or α) instead of calibrating it on rc_train' })
    .option('target-rate', { requiresArg: true, describe: 'On-target rate the calibration aims for (smallest KL that reaches it)', defaultDescription: String(DEMO_DEFAULTS.targetRate) }),
  examples: [
    ['$0 demo', 'Discover, plot, evaluate and steer the embedded agreement circuit (files in ./sfc-demo)'],
    ['$0 demo --json --out /tmp/demo', 'Machine-readable summary (sfc.demo/v1) on stdout'],
  ],
  run: async (argv, io) => {
    const st = settings(argv);
    const outDir = resolve(io.cwd, String(argv.out ?? 'sfc-demo'));
    if (existsSync(outDir) && !statSync(outDir).isDirectory()) throw new InputError(`--out ${String(argv.out)} is a file`, 'give a folder (created if missing)');
    checkOutputFolder(outDir); // a folder that cannot be written fails now, not after the run
    await Session.with(io, argv, ['backend'], async (s) => {
      const t0 = performance.now();
      const emb = EMBEDDED_AGREEMENT_DIR;
      const model = await Model.load(join(emb, 'model'), await s.backend(), { warn: s.warn });
      let dicts: Map<string, Dictionary> | undefined;
      const progress = s.progress();
      try {
        dicts = await loadDictionarySet(join(emb, 'saes'), model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel, warn: s.warn });
        const train = await examples(model, join(emb, 'data', 'rc_train.jsonl'), st.numExamples, st.batchSize, s.warn);
        const test = await examples(model, join(emb, 'data', 'rc_test.jsonl'), st.evalExamples, st.batchSize, s.warn);
        const summary = await runDemo(s, model, dicts, train, test, st, outDir, progress, t0);
        progress.finish();
        if (argv.json) io.stdout.write(`${JSON.stringify(summary.json)}\n`);
        else io.stdout.write(summary.text);
      } finally {
        progress.finish();
        for (const d of dicts?.values() ?? []) d.dispose();
        model.dispose();
      }
    });
  },
};

async function runDemo(s: Session, model: Model, dicts: Map<string, Dictionary>, train: PromptBatch[], test: PromptBatch[], st: DemoSettings,
  outDir: string, progress: ProgressReporter, t0: number): Promise<{ json: DemoSummary; text: string }> {
  const onProgress = progress.onProgress;
  const count = (b: PromptBatch[]) => b.reduce((n, x) => n + x.size, 0);

  const discovery = await discover(model, dicts, train, { nodeThreshold: st.nodeThreshold, steps: st.steps, aggregation: 'sum', onProgress });
  const circuit: Circuit = buildCircuit(discovery, {
    edgeThreshold: st.edgeThreshold,
    meta: {
      ...await recordInputs(model, dicts, join(EMBEDDED_AGREEMENT_DIR, 'saes')), // the circuit knows its model and SAEs
      data: { path: join(EMBEDDED_AGREEMENT_DIR, 'data', 'rc_train.jsonl'), seed: 12, minLengthOnly: true, requested: st.numExamples, used: count(train), skipped: {} },
    },
  });
  const features = circuit.nodes.filter((n) => n.index !== null);
  const errorNodes = features.filter((n) => n.id.endsWith('/err')).length;

  await mkdir(outDir, { recursive: true });
  const circuitPath = join(outDir, 'circuit.json'), svgPath = join(outDir, 'circuit.svg');
  await writeFileAtomic(circuitPath, serializeCircuit(circuit));
  const { dot } = circuitToDot(circuit, { penWidth: 4 });
  await writeFileAtomic(svgPath, await renderSvg(dot));

  const ev = await evaluate(model, dicts, test, {
    effects: circuitNodeEffects(circuit), thresholds: [circuit.nodeThreshold], ablation: { kind: 'mean' }, handleErrors: 'default', onProgress,
  });
  const row = ev.rows[0]!;

  const { top, steerAt, strength, steered, calibration, scored } = await demoSteer(model, dicts, circuit, train, test, st, onProgress);
  const outcome = scored.summary;
  const flipped = scored.prompts.filter((p) => p.flipped).length;
  const seconds = (performance.now() - t0) / 1000;

  const json: DemoSummary = {
    schema: DEMO_SCHEMA, faithfulness: row.faithfulness, completeness: row.completeness,
    circuitNodes: features.length, circuitEdges: circuit.edges.length,
    flipRate: outcome.flipRate ?? 0, onTargetRate: outcome.onTargetRate ?? 0, klMean: outcome.klMean, steerStrength: strength, seconds,
  };
  const details = {
    ...json,
    files: { circuit: circuitPath, plot: svgPath },
    settings: { ...st, steerAt },
    discovery: { examples: count(train), errorNodes, metricClean: circuit.metricClean, metricPatch: circuit.metricPatch },
    evaluation: { examples: ev.numExamples, ...row },
    steering: {
      op: formatOp(steered.interventions[0]!.op), examples: scored.prompts.length, flipped, ...outcome,
      target: 'the patch answers of the prompt\'s case', metric: 'logit[answer] − logit[patch answer]',
      features: top.map((f) => ({ id: f.submodule + '/' + String(f.kind === 'feature' ? f.index : 'err'), effect: f.effect })),
      calibration: calibration ? { examples: count(train), targetRate: calibration.targetRate, reached: calibration.reached, tried: calibration.tried } : null,
    },
  };
  await writeFileAtomic(join(outDir, 'demo.json'), `${JSON.stringify(details, null, 2)}\n`);

  const rel = (p: string) => relative(s.io.cwd, p) || p;
  const topList = top.slice(0, 5).map((f) => `${f.submodule}/${f.kind === 'feature' ? f.index : 'err'} (${f.effect >= 0 ? '+' : ''}${f.effect.toFixed(2)})`).join(', ');
  const text = [
    'sfc demo — subject–verb agreement across a relative clause ("The knight that the women help" → was / were)',
    `  model     embedded/agreement: GPT-NeoX, ${model.spec.dims.nLayers} layers, width ${model.spec.dims.dModel}; ${dicts.size} SAEs (${[...dicts.values()][0]?.dSae ?? '?'} features each) on ${model.backend.name}`,
    `  circuit   ${features.length} nodes (${features.length - errorNodes} features, ${errorNodes} SAE error nodes), ${circuit.edges.length} edges`
      + ` — IG (${st.steps} steps) on ${count(train)} rc_train examples, node threshold ${st.nodeThreshold}, edge threshold ${st.edgeThreshold}`,
    `  evaluate  faithfulness ${fmt(row.faithfulness)}, completeness ${fmt(row.completeness)} on ${ev.numExamples} rc_test examples (mean ablation)`,
    ...steerLines(st, top.length, steerAt, strength, calibration, outcome, count(train)),
    `  top       ${topList}`,
    `  files     ${rel(circuitPath)}, ${rel(svgPath)}, ${rel(join(outDir, 'demo.json'))}`,
    `  done in ${seconds.toFixed(1)} s`,
    '',
  ].join('\n');
  return { json, text };
}

/**
 * The circuit's top features at --steer-at (default: the last residual stream, where the
 * subject's number has reached the verb position), the op's strength calibrated on the training
 * prompts (unless --strength), and the outcome measured on the held-out test prompts.
 */
async function demoSteer(model: Model, dicts: Map<string, Dictionary>, circuit: Circuit, train: PromptBatch[], test: PromptBatch[], st: DemoSettings,
  onProgress: ProgressReporter['onProgress']) {
  const steerAt = model.submodule(st.steerAt ?? `resid_${model.spec.dims.nLayers - 1}`).name;
  const top = selectCircuitFeatures(circuit, { topK: st.topK, submodules: [steerAt] });
  if (top.length === 0) throw new InputError(`the circuit has no SAE features at ${steerAt} to steer (node threshold ${st.nodeThreshold})`, 'lower --node-threshold or choose another --steer-at');
  const steering = await Steering.create(model, dicts, interventionsFor(top, parseOp(st.op, st.strength ?? (st.op === 'patch' ? 1 : 0)), ALL_POSITIONS));
  const progress = (stage: string) => (p: { done: number; total: number }) => onProgress({ stage, done: p.done, total: p.total });
  const calibration = st.strength === undefined
    ? await calibrate(model, steering, train, { topK: 1, targetRate: st.targetRate, onProgress: progress('calibration') })
    : undefined;
  const strength = calibration?.best.strength ?? st.strength!;
  const steered = steering.withStrength(strength);
  const scored = await score(model, steered, test, { topK: 1, onProgress: progress('steering') });
  return { top, steerAt, strength, steered, calibration, scored };
}

const pct = (x: number | undefined) => (x === undefined ? 'n/a' : `${(100 * x).toFixed(1)}%`);

/** What the steer did, in the words of docs/concepts.md (steering outcome): how it was chosen, then what was measured. */
function steerLines(st: DemoSettings, k: number, steerAt: string, strength: number, calibration: Calibration | undefined, o: ScoreSummary, trainCount: number): string[] {
  const what = st.op === 'patch'
    ? `moving the circuit's top ${k} ${steerAt} features ${fmt(strength, 3)} of the way to their values on the other-number prompt`
    : `${formatOp(withStrength(parseOp(st.op, 0), strength))} on the circuit's top ${k} ${steerAt} features`;
  const how = !calibration ? '(strength given)'
    : calibration.reached ? `(calibrated on ${trainCount} rc_train prompts: on-target ≥ ${pct(calibration.targetRate)} at the smallest KL)`
    : `(no strength reached on-target ${pct(calibration.targetRate)} on ${trainCount} rc_train prompts; best measured: on-target ${pct(calibration.best.onTargetRate)}, KL ${fmt(calibration.best.klMean)} nats)`;
  return [
    `  steer     ${what} ${how}`,
    `            on ${o.prompts} rc_test prompts: on-target ${pct(o.onTargetRate)} (top-1 is a verb form of the other number), flipped ${pct(o.flipRate)}`
      + ` (logit[answer] − logit[patch answer] ${fmt(o.logitDiffBefore ?? null)} → ${fmt(o.logitDiffAfter ?? null)}), mean KL(before ‖ after) ${fmt(o.klMean)} nats`,
  ];
}
