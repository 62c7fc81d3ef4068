// `sfc demo`: the whole pipeline on the embedded default (the agreement model, its SAEs and
// datasets shipped in embedded/agreement/), offline, in about a minute: discover the circuit of
// subject–verb agreement across a relative clause (`rc` train split; IG node effects + edges),
// write it as sfc.circuit/v1 and an SVG plot, evaluate faithfulness and completeness on the test
// split, then scale the circuit's top features to flip the verb's number and report the flip
// rate. Every step is a public API of core, @sfc/dictionaries, @sfc/steering and the plot
// module; this file only wires them together and prints the summary.

import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  batchExamples, buildCircuit, checkOutputFolder, circuitNodeEffects, discover, evaluate, InputError, Model, NotFoundError, selectExamples,
  serializeCircuit, type Circuit, type Dictionary, type PromptBatch,
} from '@sfc/core';
import { loadDictionarySet } from '@sfc/dictionaries';
import { ALL_POSITIONS, interventionsFor, scale, score, selectCircuitFeatures, Steering } from '@sfc/steering';
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
  /** Scale factor applied to them at every position. */
  readonly factor: number;
}

export const DEMO_DEFAULTS: DemoSettings = {
  numExamples: 128, evalExamples: 256, batchSize: 32, steps: 10, nodeThreshold: 0.3, edgeThreshold: 0.1, steerAt: undefined, topK: 10, factor: -1,
};

export interface DemoSummary {
  readonly schema: typeof DEMO_SCHEMA;
  readonly faithfulness: number | null;
  readonly completeness: number | null;
  readonly circuitNodes: number;
  readonly circuitEdges: number;
  readonly flipRate: number;
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
  return {
    numExamples: numberFlag(argv, 'num-examples', posInt, 'an integer ≥ 1') ?? d.numExamples,
    evalExamples: numberFlag(argv, 'eval-examples', posInt, 'an integer ≥ 1') ?? d.evalExamples,
    batchSize: numberFlag(argv, 'batch-size', posInt, 'an integer ≥ 1') ?? d.batchSize,
    steps: numberFlag(argv, 'steps', posInt, 'an integer ≥ 1') ?? d.steps,
    nodeThreshold: numberFlag(argv, 'node-threshold', (n) => n >= 0, 'a number ≥ 0') ?? d.nodeThreshold,
    edgeThreshold: numberFlag(argv, 'edge-threshold', (n) => n >= 0, 'a number ≥ 0') ?? d.edgeThreshold,
    steerAt: typeof argv['steer-at'] === 'string' ? argv['steer-at'] : d.steerAt,
    topK: numberFlag(argv, 'top-k', posInt, 'an integer ≥ 1') ?? d.topK,
    factor: numberFlag(argv, 'factor', () => true, 'a number') ?? d.factor,
  };
}

async function examples(model: Model, path: string, n: number, batchSize: number, warn: (m: string) => void): Promise<PromptBatch[]> {
  if (!existsSync(path)) throw new NotFoundError(`${path} does not exist`, 'the embedded default is part of the sfc repository (embedded/agreement); restore it with git or regenerate it (docs/embedded.md)');
  const sel = selectExamples(await readFile(path, 'utf8'), model.tokenizer, { numExamples: n, seed: 12, source: path, onWarning: warn, maxLength: model.spec.dims.maxPositions });
  return batchExamples(sel.examples, batchSize);
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
    .option('factor', { requiresArg: true, describe: 'Scale factor applied to the steered features', defaultDescription: String(DEMO_DEFAULTS.factor) }),
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
      model: { path: model.dir, architecture: model.spec.architecture, backend: model.backend.name },
      dictionaries: { folder: join(EMBEDDED_AGREEMENT_DIR, 'saes'), formats: Object.fromEntries([...dicts].map(([k, d]) => [k, `${d.format ?? 'unknown'}/${d.architecture}`])) },
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

  // The last residual stream by default: there the subject's number has reached the verb
  // position, and negating its number features (f ↦ −f) points the stream at the other number.
  const steerAt = model.submodule(st.steerAt ?? `resid_${model.spec.dims.nLayers - 1}`).name;
  const top = selectCircuitFeatures(circuit, { topK: st.topK, submodules: [steerAt] });
  if (top.length === 0) throw new InputError(`the circuit has no SAE features at ${steerAt} to steer (node threshold ${st.nodeThreshold})`, 'lower --node-threshold or choose another --steer-at');
  const steering = await Steering.create(model, dicts, interventionsFor(top, scale(st.factor), ALL_POSITIONS));
  const scored = await score(model, steering, test, { topK: 1, onProgress: (p) => onProgress({ stage: 'steering', done: p.done, total: p.total }) });
  const flipRate = scored.summary.flipRate ?? 0;
  const flipped = scored.prompts.filter((p) => p.flipped).length;
  const seconds = (performance.now() - t0) / 1000;

  const json: DemoSummary = {
    schema: DEMO_SCHEMA, faithfulness: row.faithfulness, completeness: row.completeness,
    circuitNodes: features.length, circuitEdges: circuit.edges.length, flipRate, seconds,
  };
  const details = {
    ...json,
    files: { circuit: circuitPath, plot: svgPath },
    settings: { ...st, steerAt },
    discovery: { examples: count(train), errorNodes, metricClean: circuit.metricClean, metricPatch: circuit.metricPatch },
    evaluation: { examples: ev.numExamples, ...row },
    steering: {
      examples: scored.prompts.length, flipped, logitDiffBefore: scored.summary.logitDiffBefore ?? null, logitDiffAfter: scored.summary.logitDiffAfter ?? null,
      features: top.map((f) => ({ id: f.submodule + '/' + String(f.kind === 'feature' ? f.index : 'err'), effect: f.effect })),
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
    `  steer     scaling the circuit's top ${top.length} ${steerAt} features by ${st.factor} flips the verb's number on ${(100 * flipRate).toFixed(1)}% of ${scored.prompts.length} rc_test prompts`
      + ` (logit diff ${fmt(scored.summary.logitDiffBefore ?? null)} → ${fmt(scored.summary.logitDiffAfter ?? null)})`,
    `  top       ${topList}`,
    `  files     ${rel(circuitPath)}, ${rel(svgPath)}, ${rel(join(outDir, 'demo.json'))}`,
    `  done in ${seconds.toFixed(1)} s`,
    '',
  ].join('\n');
  return { json, text };
}
