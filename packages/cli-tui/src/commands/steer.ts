// `sfc steer`: scale, clamp, add, ablate or patch the features of a circuit (or of a feature
// list / Neuronpedia quick list) and show what changes — the metric, the top next tokens, KL,
// generated text side by side, or a strength sweep as a table and an SVG curve. All steering
// math is @sfc/steering's; this module turns flags into its calls and its results into text
// and `sfc.steer/v1` JSON.

import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { InputError, isSfcError, parseSubmoduleName, selectSubmodules, type Circuit, type Dictionary, type Model } from '@sfc/core';
import {
  calibrate, caseAnswerPool, checkCircuitDictionaries, chooseStrength, cleanTokens, DEFAULT_CALIBRATION_STRENGTHS, DEFAULT_TARGET_RATE, featureId, generationFluency, meanFluency, targetsByCase, withTargets, formatOp, formatPositions, generateSideBySideBatch, interventionsFor, OP_KINDS,
  parseFeatureSpec, parseOp, parsePositions, parseStrengthRange, readCircuitFile, resolveFeatures, score, selectCircuitFeatures,
  Steering, steerReport, sweep, sweepPlotSvg,
  type FeatureRef, type NextTokenView, type PromptScore, type Sampling, type ScoreBatch, type ScoreOptions, type ScoreSummary,
  type Calibration, type Fluency, type OpKind, type SideBySide, type SteerOp, type SweepRow, type TokenBatch,
} from '@sfc/steering';
import { annotationOf, readAnnotations, type Annotations } from '../annotations.js';
import { loadModelDictionaries, selectedSubmodules, selectionSource } from '../dictionaries.js';
import { UsageError } from '../error-format.js';
import type { OptionId } from '../options.js';
import type { ProgressReporter } from '../progress.js';
import { loadDataBatches } from '../run-inputs.js';
import { Session } from '../session.js';
import { checkOutputPath, writeFileAtomic } from '../write-atomic.js';
import type { GlobalArgs, SfcCommand } from './command.js';
import { fcCircuitReader } from './convert.js';
import { fixed } from '../number-format.js';

const OPTIONS: OptionId[] = ['model', 'dictionaries', 'dictRun', 'submodules', 'data', 'annotations', 'numExamples', 'batchSize', 'minLengthOnly', 'backend'];
const DATA_KEYS = { numExamplesKey: 'circuit.numExamples', batchSizeKey: 'circuit.batchSize' } as const;
const SPEC_HINT = 'SPEC is a Neuronpedia quick-list URL (https://www.neuronpedia.org/quick-list?name=…&features=[…]) '
  + 'or a list of ids: resid_3/1234,attn_0/17 (features), resid_3/err (an SAE error node), resid_3/1234@5 (one position)';
/** Per-prompt lines are printed up to this many prompts (all of them go to --json / --out). */
const MAX_PROMPT_LINES = 20;
const MAX_FEATURE_LINES = 30;

type Feature = FeatureRef & { readonly effect?: number };

/** Where the features came from, as recorded in the report. */
interface Selected {
  readonly features: readonly Feature[];
  readonly circuit?: Circuit;
  readonly source: Record<string, unknown>;
}

/** Everything the flags say, checked before the model loads. */
interface Plan {
  /** Absent only for --dry-run without a --value the op needs (the features are still resolved). */
  readonly op?: SteerOp;
  readonly opText: string;
  readonly positionsText: string;
  readonly positions: ReturnType<typeof parsePositions>;
  readonly strengths?: readonly number[];
  /** --calibrate: the on-target rate to reach (the grid: --sweep, else the op's default). */
  readonly calibrate?: number;
  readonly plot?: string;
  readonly out?: string;
  readonly generate?: number;
  readonly sampling: Sampling;
  readonly topTokens: number;
}

const numberFlag = (v: unknown, flag: string, check: (n: number) => boolean, what: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`${flag} must be ${what}, got ${String(v)}`, `run \`sfc steer --help\` for usage`);
  return n;
};
const positiveInt = (v: unknown, flag: string) => numberFlag(v, flag, (n) => Number.isInteger(n) && n >= 1, 'an integer ≥ 1');

function plan(argv: GlobalArgs, cwd: string): Plan {
  const kind = String(argv.op);
  const strengths = argv.sweep !== undefined ? parseStrengthRange(String(argv.sweep)) : undefined;
  const calibrateRate = argv.calibrate === undefined || argv.calibrate === false ? undefined
    : argv.calibrate === true || argv.calibrate === '' ? DEFAULT_TARGET_RATE
    : numberFlag(argv.calibrate, '--calibrate', (n) => n > 0 && n <= 1, 'an on-target rate in (0, 1]');
  if ((strengths || calibrateRate !== undefined) && !['scale', 'clamp', 'add', 'patch'].includes(kind)) {
    throw new UsageError(`--sweep and --calibrate vary the strength of scale, clamp, add or patch, not ${kind}`, 'use --op scale (or clamp, add, patch)');
  }
  if (calibrateRate !== undefined && argv['dry-run'] === true) throw new UsageError('--calibrate runs the model: drop --dry-run');
  if (calibrateRate !== undefined && !strengths && DEFAULT_CALIBRATION_STRENGTHS[kind as OpKind] === undefined) {
    throw new UsageError(`--calibrate with --op ${kind} needs --sweep: ${kind} values depend on the features' activations, so there is no default grid`, 'e.g. --sweep -50:50:11');
  }
  // A sweep replaces the value; without --value the steering is built at the first strength.
  const value = argv.value !== undefined ? String(argv.value) : strengths ? strengths[0] : calibrateRate !== undefined ? 1 : undefined;
  const needsValue = ['scale', 'clamp', 'add'].includes(kind) && value === undefined;
  const op = needsValue && argv['dry-run'] === true ? undefined : parseOp(kind, value);
  const positionsText = String(argv.positions ?? 'all');
  const positions = parsePositions(positionsText);
  if (argv.plot !== undefined && !strengths && calibrateRate === undefined) throw new UsageError('--plot draws a sweep: add --sweep START:STOP:COUNT (or --calibrate)');
  const plot = argv.plot !== undefined ? resolve(cwd, String(argv.plot)) : undefined;
  if (plot && extname(plot).toLowerCase() !== '.svg') throw new UsageError(`--plot writes SVG: give a .svg file, got ${String(argv.plot)}`);
  const out = argv.out !== undefined ? resolve(cwd, String(argv.out)) : undefined;
  for (const p of [plot, out]) if (p) checkOutputPath(p);
  const generate = positiveInt(argv.generate, '--generate');
  const temperature = numberFlag(argv.temperature, '--temperature', (n) => n > 0, 'a number > 0');
  const topP = numberFlag(argv['top-p'], '--top-p', (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  const seed = numberFlag(argv.seed, '--seed', (n) => Number.isSafeInteger(n) && n >= 0, 'an integer ≥ 0');
  const samplingFlags = temperature !== undefined || topP !== undefined || seed !== undefined;
  if (samplingFlags && generate === undefined) throw new UsageError('--temperature, --top-p and --seed apply to generated text: add --generate N');
  if (seed !== undefined && temperature === undefined && topP === undefined) {
    throw new UsageError('--seed applies to sampling: add --temperature T (and/or --top-p P); without them decoding is greedy');
  }
  const sampling: Sampling = temperature !== undefined || topP !== undefined
    ? { kind: 'sample', temperature: temperature ?? 1, ...(topP !== undefined ? { topP } : {}), seed: seed ?? 0 }
    : { kind: 'greedy' };
  return {
    ...(op ? { op } : {}), positionsText,
    opText: calibrateRate !== undefined ? `${kind} (strength calibrated)` : strengths ? `${kind} (swept ${strengths[0]}…${strengths[strengths.length - 1]})` : op ? formatOp(op) : `${kind} (no --value)`,
    positions, ...(strengths ? { strengths } : {}), ...(calibrateRate !== undefined ? { calibrate: calibrateRate } : {}), ...(plot ? { plot } : {}), ...(out ? { out } : {}),
    ...(generate !== undefined ? { generate } : {}), sampling, topTokens: positiveInt(argv['top-tokens'], '--top-tokens') ?? 5,
  };
}

/**
 * The circuit's submodules that --submodules / dictionaries.only select (names, hooks with a model,
 * `*` patterns), or undefined when nothing is selected: only their SAEs are loaded.
 */
function circuitSelection(s: Session, circuit: Circuit, model: Model | undefined): string[] | undefined {
  if (model) return selectedSubmodules(s, model)?.filter((n) => circuit.submodules.includes(n));
  const list = s.config.get<string[]>('dictionaries.only');
  if (list === undefined) return undefined;
  // Without a model (--dry-run): the circuit's own submodule names stand in for the model's.
  const own = circuit.submodules.flatMap((name, order) => {
    const p = parseSubmoduleName(name);
    return p ? [{ name, ...p, hook: name, order, aliases: [] }] : [];
  });
  return selectSubmodules(list, own, selectionSource(s)).map((x) => x.name);
}

/** --circuit FILE (selected by top-k, threshold, --submodules, sign) or --features SPEC. */
async function selectFeatures(argv: GlobalArgs, s: Session, expected: { submodules?: readonly string[]; model?: Model }): Promise<Selected> {
  const selection = {
    ...(argv['top-k'] !== undefined ? { topK: positiveInt(argv['top-k'], '--top-k')! } : {}),
    ...(argv.threshold !== undefined ? { threshold: numberFlag(argv.threshold, '--threshold', (n) => n >= 0, 'a number ≥ 0')! } : {}),
    ...(argv.sign !== undefined ? { sign: argv.sign as 'positive' | 'negative' | 'any' } : {}),
    ...(argv['include-errors'] === true ? { includeErrors: true } : {}),
  };
  if (argv.circuit !== undefined) {
    const path = resolve(s.io.cwd, String(argv.circuit));
    const circuit = await readCircuitFile(path, [fcCircuitReader({}, (c) => c.warnings.forEach(s.warn))]);
    const submodules = circuitSelection(s, circuit, expected.model);
    const features = selectCircuitFeatures(circuit, { ...selection, ...(submodules ? { submodules } : {}) });
    if (features.length === 0) throw new InputError(`no features of ${String(argv.circuit)} pass the selection`, 'loosen --threshold, --submodules or --sign (error nodes need --include-errors)');
    const of = circuit.nodes.filter((n) => n.index !== null).length;
    if (selection.topK === undefined && selection.threshold === undefined && features.length > 100) {
      s.warn(`steering all ${features.length} features of the circuit; --top-k K or --threshold T selects fewer`);
    }
    return { features, circuit, source: { circuit: path, nodes: of, selection } };
  }
  if (argv.features === undefined) throw new UsageError('give --circuit FILE or --features SPEC', SPEC_HINT);
  if (Object.keys(selection).length) throw new UsageError('--top-k, --threshold, --sign and --include-errors select from a --circuit', 'with --features, list exactly the features to steer');
  const text = String(argv.features);
  const isUrl = /^https?:\/\//i.test(text.trim()) || /neuronpedia\.org/i.test(text);
  try {
    const spec = parseFeatureSpec(text, {
      ...(argv['model-id'] !== undefined ? { modelId: String(argv['model-id']) } : {}),
      ...(argv['sae-set'] !== undefined ? { saeSet: String(argv['sae-set']) } : {}),
      ...(expected.submodules ? { submodules: expected.submodules } : {}),
    });
    const source = spec.kind === 'quick-list'
      ? { quickList: { name: spec.quickList.name, modelId: spec.quickList.modelId, saeSet: spec.quickList.saeSet } }
      : { features: text };
    return { features: spec.features, source };
  } catch (e) {
    // Plain lists: say what a SPEC can be (the quick-list parser's own hints are specific already).
    if (!isUrl && isSfcError(e) && e.code === 'INPUT') throw new InputError(`--features: ${e.message}`, SPEC_HINT, { cause: e });
    throw e;
  }
}

/** One answer token, or a typed error. */
function oneToken(model: Model, text: string, flag: string): Int32Array {
  const ids = model.tokenizer.encode(text);
  if (ids.length !== 1) throw new InputError(`${flag} ${JSON.stringify(text)} is ${ids.length} tokens, not one`, 'answers are single tokens, usually with their leading space (e.g. " are")');
  return Int32Array.of(ids[0]!);
}

interface Prompts {
  readonly batches: ScoreBatch[];
  /** Prompt text by PromptScore.example (data) or index (--prompt). */
  readonly texts: readonly string[];
  /** Patch prompt of each text, for patch ops during generation. */
  readonly patchTokens: readonly (TokenBatch | undefined)[];
  readonly patchPrompt?: TokenBatch;
  readonly meta: Record<string, unknown>;
}

const tokenBatch = (ids: readonly number[]): TokenBatch => ({ ids: Int32Array.from(ids), batch: 1, seq: ids.length });

/** --target TOKEN (repeatable): the steer's intended next tokens, for every prompt. */
function targetIds(argv: GlobalArgs, model: Model): number[] | undefined {
  if (argv.target === undefined) return undefined;
  if (argv['targets-by-case'] === true) throw new UsageError('--target and --targets-by-case both name the targets', 'give one of them');
  const list = (Array.isArray(argv.target) ? argv.target : [argv.target]).map(String);
  return [...new Set(list.map((t) => oneToken(model, t, '--target')[0]!))];
}

async function loadPrompts(argv: GlobalArgs, s: Session, model: Model): Promise<Prompts | undefined> {
  const targets = targetIds(argv, model);
  const patchPrompt = argv['patch-prompt'] !== undefined ? tokenBatch(model.encode(String(argv['patch-prompt']))) : undefined;
  if (argv.prompt !== undefined) {
    const text = String(argv.prompt);
    const ids = model.encode(text);
    if (argv['patch-answer'] !== undefined && argv.answer === undefined) throw new UsageError('--patch-answer needs --answer', 'with both, sfc steer reports the logit diff logit[answer] − logit[patch answer]');
    if (argv['targets-by-case'] === true) throw new UsageError('--targets-by-case reads the case field of --data', 'with --prompt name the targets: --target TOKEN');
    const batch: ScoreBatch = {
      size: 1, seq: ids.length, clean: Int32Array.from(ids),
      ...(argv.answer !== undefined ? { cleanAnswer: oneToken(model, String(argv.answer), '--answer') } : {}),
      ...(argv['patch-answer'] !== undefined ? { patchAnswer: oneToken(model, String(argv['patch-answer']), '--patch-answer') } : {}),
      ...(targets ? { targets: [targets] } : {}),
    };
    return { batches: [batch], texts: [text], patchTokens: [patchPrompt], ...(patchPrompt ? { patchPrompt } : {}), meta: { prompt: text } };
  }
  if (s.config.get('data') === undefined) return undefined;
  if (argv.answer !== undefined || argv['patch-answer'] !== undefined) throw new UsageError('--answer and --patch-answer go with --prompt', 'with --data the answers come from the file');
  const data = await loadDataBatches(s, model, DATA_KEYS);
  // A case's answers are read from the whole file, not only the selected prompts (docs/concepts.md).
  const byCase = argv['targets-by-case'] === true
    ? targetsByCase(data.examples, caseAnswerPool(await readFile(String(data.meta.path), 'utf8'), model.tokenizer, String(data.meta.path))) : undefined;
  const batches = targets ? withTargets(data.batches, () => targets) : byCase ? withTargets(data.batches, byCase) : data.batches;
  return {
    batches, texts: data.examples.map((e) => e.cleanPrefix),
    patchTokens: data.examples.map((e) => patchPrompt ?? (e.patchIds ? tokenBatch(e.patchIds) : undefined)),
    ...(patchPrompt ? { patchPrompt } : {}), meta: { data: data.meta },
  };
}

// ---------------------------------------------------------------- text output

const fmt = (x: number | undefined, digits = 4): string => (x === undefined || !Number.isFinite(x) ? 'n/a' : fixed(x, digits));
const pct = (x: number | undefined): string => (x === undefined ? 'n/a' : `${(x * 100).toFixed(1)}%`);
const tokenText = (t: string): string => JSON.stringify(t);

export function formatFeatures(features: readonly Feature[], plan: Pick<Plan, 'opText' | 'positionsText'>, annotations?: Annotations): string {
  const lines = [`${features.length} feature${features.length === 1 ? '' : 's'}, op ${plan.opText} at positions ${plan.positionsText}:`];
  const width = Math.max(...features.slice(0, MAX_FEATURE_LINES).map((f) => featureId(f).length));
  for (const f of features.slice(0, MAX_FEATURE_LINES)) {
    const ann = annotationOf(annotations, featureId(f));
    const line = f.effect === undefined ? `  ${featureId(f)}` : `  ${featureId(f).padEnd(width)}  effect ${f.effect >= 0 ? ' ' : ''}${f.effect.toPrecision(4)}`;
    lines.push(ann === undefined ? line : `${line}  “${ann}”`);
  }
  if (features.length > MAX_FEATURE_LINES) lines.push(`  … and ${features.length - MAX_FEATURE_LINES} more`);
  return `${lines.join('\n')}\n`;
}

function topLines(before: NextTokenView, after: NextTokenView): string[] {
  const cell = (v: NextTokenView, i: number) => (v.top[i] ? `${tokenText(v.top[i]!.token)} ${v.top[i]!.logprob.toFixed(3)}` : '');
  const w = Math.max(6, ...before.top.map((_, i) => cell(before, i).length));
  const lines = [`  next tokens (log-prob)  ${'before'.padEnd(w)}   after`];
  for (let i = 0; i < Math.max(before.top.length, after.top.length); i++) lines.push(`  ${String(i + 1).padStart(21)}  ${cell(before, i).padEnd(w)}   ${cell(after, i)}`);
  return lines;
}

// One sign convention everywhere sfc steer prints or plots: logit diff = logit[answer] −
// logit[patch answer] (positive: the model prefers the answer; "flipped": the sign changed). The
// default metrics are its mirror images (core's logit-diff is logit[patch answer] − logit[answer],
// neg-answer-logit is −logit[answer]), so they are not printed beside it; --json and --out keep
// every field under its own name.
const LOGIT_DIFF = 'logit diff = logit[answer] − logit[patch answer]';

/** The metric is the negative of a number already shown (the logit diff, or logit[answer]). */
function mirrored(metricName: string | undefined, has: { logitDiff: boolean; cleanLogit: boolean }): boolean {
  return (metricName === 'logit-diff' && has.logitDiff) || (metricName === 'neg-answer-logit' && has.cleanLogit);
}

export function formatPromptScore(p: PromptScore, text: string | undefined, metricName: string | undefined): string {
  const lines = [`prompt ${text !== undefined ? tokenText(text) : `#${p.index}`}`];
  const shown = { logitDiff: p.before.logitDiff !== undefined, cleanLogit: p.before.cleanLogit !== undefined };
  if (p.before.metric !== undefined && !mirrored(metricName, shown)) lines.push(`  metric (${metricName ?? 'metric'})  ${fmt(p.before.metric)} → ${fmt(p.after.metric)}`);
  if (shown.logitDiff) lines.push(`  logit[answer] − logit[patch answer]  ${fmt(p.before.logitDiff)} → ${fmt(p.after.logitDiff)}${p.flipped ? '  (flipped)' : ''}`);
  else if (shown.cleanLogit) lines.push(`  logit[answer]  ${fmt(p.before.cleanLogit)} → ${fmt(p.after.cleanLogit)}`);
  if (p.onTarget !== undefined) lines.push(`  on target  ${p.onTarget ? 'yes' : 'no'} (steered top-1 ${tokenText(p.after.top[0]!.token)})`);
  lines.push(`  KL(before ‖ after)  ${fmt(p.kl)} nats`, ...topLines(p.before, p.after));
  return `${lines.join('\n')}\n`;
}

export function formatSummary(summary: ScoreSummary, prompts: readonly PromptScore[], texts: readonly string[]): string {
  const lines = [`${summary.prompts} prompts`];
  const hasDiff = summary.logitDiffBefore !== undefined;
  if (summary.metricBefore !== undefined && !mirrored(summary.metricName, { logitDiff: hasDiff, cleanLogit: false })) {
    lines.push(`  metric (${summary.metricName ?? 'metric'})  ${fmt(summary.metricBefore)} → ${fmt(summary.metricAfter)}`);
  }
  if (hasDiff) lines.push(`  logit[answer] − logit[patch answer]  ${fmt(summary.logitDiffBefore)} → ${fmt(summary.logitDiffAfter)}`);
  if (summary.flipRate !== undefined) lines.push(`  flipped  ${pct(summary.flipRate)}`);
  if (summary.onTargetRate !== undefined) {
    lines.push(`  on target (steered top-1 is a target)  ${pct(summary.onTargetRate)}`
      + (summary.answerTop1RateBefore !== undefined ? `   [unsteered: the answer itself is top-1 on ${pct(summary.answerTop1RateBefore)}]` : ''));
  }
  lines.push(`  top-1 token changed  ${pct(summary.top1ChangeRate)}`, `  mean KL(before ‖ after)  ${fmt(summary.klMean)} nats`);
  if (prompts.length <= MAX_PROMPT_LINES) {
    // Per prompt: the logit diff when there is one, else the metric.
    const useDiff = prompts[0]?.before.logitDiff !== undefined;
    const head = useDiff ? 'logit diff' : prompts[0]?.before.metric !== undefined ? 'metric' : '';
    lines.push(`    #  ${head.padEnd(17)}  ${'top token'.padEnd(24)}                    prompt`);
    for (const p of prompts) {
      const text = texts[p.example ?? p.index];
      const [b, a] = useDiff ? [p.before.logitDiff, p.after.logitDiff] : [p.before.metric, p.after.metric];
      const m = b !== undefined ? `${fmt(b, 3)} → ${fmt(a, 3)}` : '';
      const top1 = `${tokenText(p.before.top[0]!.token)} → ${tokenText(p.after.top[0]!.token)}`;
      const marks = `${p.flipped ? 'flipped' : '       '} ${p.onTarget ? 'on-target' : '         '}`;
      lines.push(`  ${String(p.index).padStart(3)}  ${m.padEnd(17)}  ${top1.padEnd(24)} ${marks}  ${text !== undefined ? tokenText(text) : ''}`);
    }
    if (useDiff) lines.push(`  ${LOGIT_DIFF}`);
  } else {
    lines.push(`  (per-prompt results: --json or --out FILE)`);
  }
  return `${lines.join('\n')}\n`;
}

/** The sweep (or calibration) table; `chosen` marks a row (the calibrated strength). */
export function formatSweepTable(rows: readonly SweepRow[], chosen?: { readonly strength: number; readonly mark: string }): string {
  const r0 = rows[0];
  const hasDiff = r0?.logitDiffAfter !== undefined;
  const cols: [string, (r: SweepRow) => string][] = [['strength', (r) => String(r.strength)]];
  const showMetric = r0?.metricAfter !== undefined && !mirrored(r0.metricName, { logitDiff: hasDiff, cleanLogit: false });
  if (showMetric) cols.push([`metric (${r0!.metricName ?? 'metric'})`, (r) => fmt(r.metricAfter)]);
  if (hasDiff) cols.push(['logit diff', (r) => fmt(r.logitDiffAfter)]);
  if (r0?.flipRate !== undefined) cols.push(['flipped', (r) => pct(r.flipRate)]);
  if (r0?.onTargetRate !== undefined) cols.push(['on target', (r) => pct(r.onTargetRate)]);
  cols.push(['top-1 changed', (r) => pct(r.top1ChangeRate)], ['KL (nats)', (r) => fmt(r.klMean)]);
  const cells = rows.map((r) => cols.map(([, f]) => f(r)));
  const widths = cols.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) => c.map((x, i) => x.padStart(widths[i]!)).join('  ');
  const out = [line(cols.map(([h]) => h)), ...cells.map((c, i) => line(c) + (rows[i]!.strength === chosen?.strength ? `  ← ${chosen.mark}` : ''))];
  const unsteered = [showMetric ? `metric ${fmt(r0!.metricBefore)}` : '', hasDiff ? `logit diff ${fmt(r0!.logitDiffBefore)}` : ''].filter(Boolean);
  if (unsteered.length) out.push(`unsteered: ${unsteered.join(', ')}`);
  if (hasDiff) out.push(`${LOGIT_DIFF}; flipped = the preferred answer changed`);
  if (r0?.onTargetRate !== undefined) {
    out.push(`on target = the steered top-1 is a target (default: the patch answer)${r0.answerTop1RateBefore !== undefined ? `; unsteered, the answer itself is top-1 on ${pct(r0.answerTop1RateBefore)}` : ''}`);
  }
  return `${out.join('\n')}\n`;
}

/** The strength a sweep or calibration picked, or why none reached the target. */
export function formatCalibration(c: Pick<Calibration, 'targetRate' | 'reached' | 'best'>, searched: boolean): string {
  const b = c.best;
  const figures = `on target ${pct(b.onTargetRate)}, flipped ${pct(b.flipRate)}, mean KL ${fmt(b.klMean)} nats`;
  return c.reached
    ? `${searched ? 'calibrated' : 'best swept'} strength ${b.strength}: the smallest KL with on target ≥ ${pct(c.targetRate)} (${figures})\n`
    : `no strength ${searched ? 'tried' : 'swept'} reaches on target ${pct(c.targetRate)}; the best measured is strength ${b.strength} (${figures})\n`;
}

export function formatFluency(f: readonly Fluency[]): string {
  const before = meanFluency(f.map((x) => x.before)), after = meanFluency(f.map((x) => x.after));
  return `fluency (mean log-prob per generated token under the unsteered model): before ${fmt(before ?? undefined, 3)}, after ${fmt(after ?? undefined, 3)} nats\n`;
}

export function formatGeneration(g: SideBySide, sampling: Sampling): string {
  const how = sampling.kind === 'greedy' ? 'greedy' : `sampled, temperature ${sampling.temperature}${sampling.topP !== undefined ? `, top-p ${sampling.topP}` : ''}, seed ${sampling.seed}`;
  return `continuation of ${tokenText(g.prompt)} (${g.before.ids.length} tokens, ${how})\n  before: ${tokenText(g.before.text)}\n  after:  ${tokenText(g.after.text)}\n`;
}

// ---------------------------------------------------------------- the command

async function run(argv: GlobalArgs, s: Session): Promise<void> {
  const io = s.io;
  const p = plan(argv, io.cwd);
  const annotationsPath = s.config.get<string>('annotations');
  const annotations = annotationsPath !== undefined ? await readAnnotations(annotationsPath) : undefined;
  const hasModel = s.config.get('model') !== undefined;
  if (argv['dry-run'] !== true && !hasModel) s.config.require('model', '--model');
  // Without a model the features are parsed only (a quick list of a model not on disk still parses).
  // A circuit is read once, after the model loads (--submodules may name hooks); a feature list is parsed now (errors before loading).
  const early = hasModel && argv.circuit !== undefined ? undefined : await selectFeatures(argv, s, {});
  const emit = async (report: ReturnType<typeof steerReport>, text: string) => {
    const json = `${JSON.stringify(report, null, 2)}\n`;
    if (p.out) await writeFileAtomic(p.out, json);
    io.stdout.write(argv.json ? json : text);
    if (p.out) s.status(`wrote ${String(argv.out)}`);
  };
  const plannedInterventions = (features: readonly FeatureRef[]) => (p.op ? interventionsFor(features, p.op, p.positions) : []);
  if (argv['dry-run'] === true && !hasModel && early) {
    await emit(steerReport({ features: early.features, interventions: plannedInterventions(early.features), meta: { source: early.source } }),
      formatFeatures(early.features, p, annotations) + '(dry run: parsed only; give --model and --dictionaries to check the features against them)\n');
    return;
  }

  const model = await s.model();
  // With the model: feature ids checked against it, --submodules resolved (hooks, patterns).
  const selected = early && argv.features === undefined ? early : await selectFeatures(argv, s, { submodules: model.submodules.map((x) => x.name), model });
  const subs = [...new Set(selected.features.map((f) => model.submodule(f.submodule).name))];
  const dictionaries: Map<string, Dictionary> = await loadModelDictionaries(s, model, { only: subs });
  const progress: ProgressReporter = s.progress();
  try {
    if (selected.circuit) checkCircuitDictionaries(selected.circuit, model, dictionaries);
    const features: Feature[] = resolveFeatures(model, dictionaries, selected.features)
      .map((f, i) => (selected.features[i]!.effect !== undefined ? { ...f, effect: selected.features[i]!.effect } : f));
    const meta = {
      source: selected.source,
      model: { path: model.dir, architecture: model.spec.architecture, backend: model.backend.name },
      dictionaries: {
        folder: s.config.get<string>('dictionaries.folder') ?? null,
        formats: Object.fromEntries([...dictionaries].map(([k, d]) => [k, `${d.format ?? 'unknown'}/${d.architecture}`])),
      },
    };
    if (argv['dry-run'] === true) {
      await emit(steerReport({ features, interventions: plannedInterventions(features), meta }),
        `${formatFeatures(features, p, annotations)}(dry run: every feature exists in ${model.dir} and its dictionaries; nothing was run)\n`);
      return;
    }

    const op = p.op!; // parsed: only --dry-run may go without it
    const prompts = await loadPrompts(argv, s, model);
    if (!prompts) throw new UsageError('give --prompt TEXT or --data FILE', 'the prompts to steer (or --dry-run to only check the features)');
    const onPhase = (e: { phase: string; done: number; total: number }) => progress.onProgress({ stage: e.phase, done: e.done, total: e.total });
    const isMean = op.kind === 'ablate' && op.mode === 'mean';
    // ablate mean averages over the data file's prompts (also when steering a --prompt).
    const reference = !isMean ? [] : argv.prompt === undefined ? prompts.batches
      : s.config.get('data') !== undefined ? (await loadDataBatches(s, model, DATA_KEYS)).batches : [];
    const steering = await Steering.create(model, dictionaries, interventionsFor(features, op, p.positions), {
      reference: reference.flatMap(cleanTokens), onProgress: onPhase,
    });
    if (p.generate !== undefined) {
      // Fail before any work when generated positions cannot be steered (e.g. patch past the patch prompt).
      for (const [i, t] of prompts.texts.entries()) {
        const n = model.encode(t).length;
        steering.validate(n, n + p.generate - 1, steering.needsPatch ? prompts.patchTokens[i] : undefined, 1);
      }
    }
    s.status(`steering ${features.length} feature${features.length === 1 ? '' : 's'} (${p.opText} at ${p.positionsText}) on ${prompts.texts.length} prompt${prompts.texts.length === 1 ? '' : 's'}`);
    const scoreOptions: ScoreOptions = { topK: p.topTokens, onProgress: onPhase, ...(prompts.patchPrompt ? { patchPrompt: prompts.patchPrompt } : {}) };
    let text = formatFeatures(features, p, annotations);
    const n = `${prompts.texts.length} prompt${prompts.texts.length === 1 ? '' : 's'}`;
    let rows: readonly SweepRow[] | undefined;
    let result: Awaited<ReturnType<typeof score>> | undefined;
    let calibration: Calibration | undefined;
    /** The row a sweep or calibration marks (docs/concepts.md: smallest KL reaching the on-target rate). */
    let pick: { reached: boolean; best: SweepRow } | undefined;
    let chosen = steering;
    const scoreText = (r: NonNullable<typeof result>) => (argv.prompt !== undefined
      ? formatPromptScore(r.prompts[0]!, prompts.texts[0], r.summary.metricName)
      : formatSummary(r.summary, r.prompts, prompts.texts));
    if (p.calibrate !== undefined) {
      calibration = await calibrate(model, steering, prompts.batches, { ...scoreOptions, targetRate: p.calibrate, ...(p.strengths ? { strengths: p.strengths } : {}) });
      rows = calibration.tried;
      pick = calibration;
      chosen = steering.withStrength(calibration.best.strength);
      result = await score(model, chosen, prompts.batches, scoreOptions);
      progress.finish();
      text += `\ncalibration of the ${op.kind} strength over ${n}\n${formatSweepTable(rows, { strength: calibration.best.strength, mark: calibration.reached ? 'calibrated' : 'best measured' })}`
        + formatCalibration(calibration, true) + `\nat strength ${calibration.best.strength}: ` + scoreText(result);
    } else if (p.strengths) {
      rows = (await sweep(model, steering, p.strengths, prompts.batches, scoreOptions)).rows;
      progress.finish();
      if (rows[0]!.onTargetRate !== undefined) pick = chooseStrength(rows, DEFAULT_TARGET_RATE);
      const mark = pick?.reached ? { strength: pick.best.strength, mark: `smallest KL with on target ≥ ${pct(DEFAULT_TARGET_RATE)}` } : undefined;
      text += `\nsweep of ${op.kind} strength over ${n}\n${formatSweepTable(rows, mark)}`
        + (pick ? formatCalibration({ ...pick, targetRate: DEFAULT_TARGET_RATE }, false) : '');
    } else {
      result = await score(model, steering, prompts.batches, scoreOptions);
      progress.finish();
      text += '\n' + scoreText(result);
    }
    if (p.plot && rows) {
      await writeFileAtomic(p.plot, sweepPlotSvg(rows, {
        title: `${op.kind} of ${features.length} feature${features.length === 1 ? '' : 's'}`,
        ...(pick?.reached ? { chosen: { strength: pick.best.strength, targetRate: calibration?.targetRate ?? DEFAULT_TARGET_RATE } } : {}),
      }));
      s.status(`wrote ${String(argv.plot)}`);
    }
    let generations: SideBySide[] | undefined;
    let fluency: Fluency[] | undefined;
    if (p.generate !== undefined) {
      // Batched: the prompts of one length share every forward (at most --batch-size rows); progress per step.
      const own = prompts.patchTokens;
      const patchPrompts = prompts.patchPrompt ? [prompts.patchPrompt] : own.every((t): t is TokenBatch => t !== undefined) ? own : [];
      const batchSize = s.config.get<number>(DATA_KEYS.batchSizeKey);
      generations = await generateSideBySideBatch(model, prompts.texts, chosen, {
        maxNewTokens: p.generate, sampling: p.sampling, onProgress: onPhase,
        ...(steering.needsPatch ? { patchPrompts } : {}), ...(batchSize !== undefined ? { batchSize } : {}),
      });
      fluency = await generationFluency(model, generations, batchSize);
      progress.finish();
      text += '\n' + generations.map((g) => formatGeneration(g, p.sampling)).join('') + formatFluency(fluency);
    }
    await emit(steerReport({
      features, interventions: chosen.interventions, promptTexts: prompts.texts,
      ...(result ? { prompts: result.prompts, summary: result.summary } : {}),
      ...(generations ? { generations } : {}), ...(fluency ? { fluency } : {}), ...(rows ? { sweep: rows } : {}), ...(calibration ? { calibration } : {}),
      meta: { ...meta, ...prompts.meta, ...(p.generate !== undefined ? { sampling: p.sampling } : {}) },
    }), text);
  } finally {
    progress.finish();
    for (const d of dictionaries.values()) d.dispose();
  }
}

export const steerCommand: SfcCommand = {
  command: 'steer',
  describe: 'Steer the features of a circuit, a feature list or a Neuronpedia quick list (scale, clamp, add, ablate, patch) and show the metric, next tokens, KL and generated text before and after',
  options: [...OPTIONS, 'out', 'json'],
  builder: (y) => y
    .option('circuit', { type: 'string', requiresArg: true, describe: 'Circuit whose features to steer: sfc.circuit/v1 JSON, or a feature-circuits .pt (read as `sfc convert` does)' })
    .option('features', { type: 'string', requiresArg: true, describe: 'Features to steer: a Neuronpedia quick-list URL, or ids like resid_3/1234,attn_0/17,resid_3/err (@POS: one position)' })
    .option('top-k', { requiresArg: true, describe: 'Circuit: only the k features of largest |effect|' })
    .option('threshold', { requiresArg: true, describe: 'Circuit: only features with |effect| above this' })
    .option('sign', { type: 'string', requiresArg: true, choices: ['positive', 'negative', 'any'], describe: 'Circuit: only features whose effect has this sign' })
    .option('include-errors', { type: 'boolean', describe: 'Circuit: also steer SAE error nodes (scale, ablate and patch apply to them)' })
    .option('model-id', { type: 'string', requiresArg: true, describe: 'Quick list: the Neuronpedia model id it must be for (e.g. pythia-70m-deduped)' })
    .option('sae-set', { type: 'string', requiresArg: true, describe: 'Quick list: the Neuronpedia SAE set its layers must use (e.g. sm in 3-res-sm)' })
    .option('op', { type: 'string', requiresArg: true, choices: OP_KINDS, default: 'scale', describe: 'What to do to each feature: scale (×value), clamp (=value), add (value × decoder row), ablate (to zero or mean), patch (value on --patch-prompt / the data\'s patch prompts; --value s: s of the way there)' })
    .option('value', { type: 'string', requiresArg: true, describe: 'The op\'s value: the factor, clamp value or α; for ablate zero (default) or mean; for patch the fraction (default 1)' })
    .option('positions', { type: 'string', requiresArg: true, default: 'all', describe: 'Token positions: all, prompt, last, a list like 3,5,-1 (negative: from the prompt\'s end), or K: (K and every later one, generated tokens too)' })
    .option('prompt', { type: 'string', requiresArg: true, describe: 'Prompt to steer (instead of --data)' })
    .option('answer', { type: 'string', requiresArg: true, describe: 'Expected next token of --prompt (one token, e.g. " are"): reports logit[answer]' })
    .option('patch-answer', { type: 'string', requiresArg: true, describe: 'Contrasting token (e.g. " is"): reports the logit diff logit[answer] − logit[patch answer]' })
    .option('patch-prompt', { type: 'string', requiresArg: true, describe: 'Prompt whose feature values --op patch copies (default with --data: each example\'s patch prefix)' })
    .option('top-tokens', { requiresArg: true, describe: 'Next tokens listed before and after (default 5)' })
    .option('generate', { requiresArg: true, describe: 'Also generate N tokens from each prompt, unsteered and steered' })
    .option('temperature', { requiresArg: true, describe: 'Sample generated tokens at this temperature (default: greedy)' })
    .option('top-p', { requiresArg: true, describe: 'Nucleus sampling: keep the most likely tokens up to this probability mass' })
    .option('seed', { requiresArg: true, describe: 'Sampling seed (the same for the unsteered and steered text; default 0)' })
    .option('target', { type: 'string', array: true, requiresArg: true, describe: 'Intended next token(s) of the steer, for every prompt (repeatable, e.g. --target " were"): on target = the steered top-1 is one of them (default: each prompt\'s patch answer)' })
    .option('targets-by-case', { type: 'boolean', describe: 'With --data: a prompt\'s targets are all patch answers of its case in the file (e.g. every plural verb form for a singular_plural prompt)' })
    .option('sweep', { type: 'string', requiresArg: true, describe: 'Strengths to sweep: START:STOP:COUNT (e.g. -4:4:9) or a list 0,1,2 — replaces --value; marks the smallest KL with on target ≥ 90%' })
    .option('calibrate', { type: 'string', describe: 'Search the strength that reaches this on-target rate (default 0.9) with the smallest mean KL, then steer at it (grid: --sweep, else scale -8…8 / patch 0.25…1.5, refined by bisection)' })
    .option('plot', { type: 'string', requiresArg: true, describe: 'With --sweep or --calibrate: also draw metric, flip and on-target rates and KL against strength as SVG to this file' })
    .option('dry-run', { type: 'boolean', describe: 'Resolve and print the features, run nothing (checked against the model and dictionaries when a model is given)' })
    .conflicts('circuit', 'features')
    .conflicts('prompt', 'data'),
  examples: [
    ['$0 steer --circuit circuit.json --top-k 10 --op scale --value -2 --prompt "The parents that the guards know" --answer " are" --patch-answer " is"', 'Negate the 10 strongest features of a circuit on one prompt'],
    ['$0 steer --circuit circuit.json --top-k 10 --op scale --sweep -4:4:9 --data pairs.jsonl --plot sweep.svg', 'Sweep the strength over a dataset: table, flip and on-target rates, KL, and SVG curves'],
    ['$0 steer --circuit circuit.json --submodules resid_2 --top-k 3 --op patch --calibrate --data pairs.jsonl --targets-by-case', 'Find the patch strength that puts ≥ 90% of prompts on target at the smallest KL'],
    ['$0 steer --features resid_1/8,attn_0/24 --op clamp --value 0 --prompt "The author" --generate 10', 'Clamp two features and compare the generated text'],
    ['$0 steer --features "https://www.neuronpedia.org/quick-list?name=x&features=…" --dry-run', 'Parse a quick list without loading anything'],
    ['$0 steer --circuit fc_circuit.pt --top-k 20 --op ablate --data pairs.jsonl --json', 'Ablate the top features of a feature-circuits circuit; sfc.steer/v1 on stdout'],
  ],
  run: (argv, io) => Session.with(io, argv, OPTIONS, (s) => run(argv, s)),
};
