// End to end on the embedded agreement model, through public APIs only, the way `sfc discover`
// then `sfc steer` use them: discover a circuit on training prompts, write and read it back as
// an `sfc.circuit/v1` file, select its top features, and steer held-out test prompts.
//
// Acceptance (issue 7): steering the number-carrying features of a discovered circuit flips the
// predicted verb on ≥ 90% of test prompts, while the same op on as many random features does not.
// The embedded model has no SAEs yet, so the circuit here is over neurons (identity
// dictionaries) and the op is `patch` (each feature takes its value on the other-number prompt);
// negating a neuron is not a number flip the way negating a non-negative SAE feature is. With
// the embedded SAEs, the steering outcome (issue 15) is checked: on-target rate and KL, not only
// the flip of the answer pair.

import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  batchExamples, buildCircuit, discover, loadExamples, Model, serializeCircuit,
  type Backend, type Dictionary, type PromptBatch,
} from '@sfc/core';
import { tfjsBackend } from '@sfc/backend-tfjs';
import { loadDictionarySet } from '@sfc/dictionaries';
import {
  calibrate, caseAnswerPool, formatQuickListUrls, generateSideBySide, interventionsFor, parsePositions, parseQuickListUrl, patch, readCircuitFile, scale,
  score, seededRandom, selectCircuitFeatures, Steering, steerReport, sweep, sweepPlotSvg, targetsByCase, withTargets, type FeatureRef, type SelectedFeature,
} from '@sfc/steering';
import { REPO_ROOT } from './paths.js';

const EMBEDDED = join(REPO_ROOT, 'embedded', 'agreement');
/** Where the embedded model's SAEs are expected (issue 6); the scale test waits for them. */
const EMBEDDED_SAES = join(EMBEDDED, 'saes');
const TOP_K = 20;
const PROMPT_PAIR = ['The artists near the baker', 'The artist near the baker'] as const;

let backend: Backend;
let model: Model;
let neurons: Map<string, Dictionary>;
let train: PromptBatch[];
let test: PromptBatch[];

beforeAll(async () => {
  backend = await tfjsBackend({ flavor: 'wasm' });
  model = await Model.load(join(EMBEDDED, 'model'), backend);
  neurons = await loadDictionarySet('', model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel, loader: 'identity' });
  const load = async (file: string, n: number) =>
    batchExamples((await loadExamples(join(EMBEDDED, 'data', file), model.tokenizer, { numExamples: n })).examples, 128);
  train = await load('simple_train.jsonl', 32);
  test = await load('simple_test.jsonl', 80);
});

afterAll(async () => {
  for (const d of neurons?.values() ?? []) d.dispose();
  model?.dispose();
  await backend?.dispose();
});

/** `n` features drawn without replacement from the submodules' features outside `exclude`. */
function randomFeatures(n: number, width: (sub: string) => number, subs: readonly string[], exclude: readonly FeatureRef[], seed: number): FeatureRef[] {
  const taken = new Set(exclude.map((f) => `${f.submodule}/${f.kind === 'feature' ? f.index : 'err'}`));
  const pool = subs.flatMap((s) => Array.from({ length: width(s) }, (_, i): FeatureRef => ({ kind: 'feature', submodule: s, index: i, pos: null })))
    .filter((f) => !taken.has(`${f.submodule}/${(f as { index: number }).index}`));
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => pool.splice(Math.floor(rand() * pool.length), 1)[0]!);
}

async function circuitFile(dictionaries: Map<string, Dictionary>): Promise<string> {
  const result = await discover(model, dictionaries, train, { nodesOnly: true });
  const path = join(mkdtempSync(join(tmpdir(), 'sfc-steer-e2e-')), 'circuit.json');
  writeFileSync(path, serializeCircuit(buildCircuit(result, { nodeThreshold: 0.05 })));
  return path;
}

describe('steering a discovered circuit on the embedded model', () => {
  let circuitPath: string;
  let features: SelectedFeature[];

  beforeAll(async () => {
    circuitPath = await circuitFile(neurons);
    features = selectCircuitFeatures(await readCircuitFile(circuitPath), { topK: TOP_K });
  });

  it(`patching the top ${TOP_K} circuit features flips the verb on ≥ 90% of test prompts; ${TOP_K} random features do not`, async () => {
    expect(features).toHaveLength(TOP_K);
    const steered = await score(model, await Steering.create(model, neurons, interventionsFor(features, patch())), test);
    const random = randomFeatures(features.length, () => model.spec.dims.dModel, model.submodules.map((s) => s.name), features, 7);
    const control = await score(model, await Steering.create(model, neurons, interventionsFor(random, patch())), test);
    expect(steered.summary.prompts).toBe(80);
    // The model gets agreement right before steering.
    expect(steered.prompts.filter((p) => p.before.logitDiff! > 0).length / 80).toBeGreaterThanOrEqual(0.95);
    expect(steered.summary.flipRate).toBeGreaterThanOrEqual(0.9);
    expect(control.summary.flipRate).toBeLessThanOrEqual(0.1);
    expect(steered.summary.logitDiffAfter!).toBeLessThan(0);
    expect(control.summary.logitDiffAfter!).toBeGreaterThan(0);
  });

  it('the same circuit drives generation, sweeps, reports and Neuronpedia export', async () => {
    // Generation: greedy continuation of a plural subject, before and after patching toward singular.
    const steering = await Steering.create(model, neurons, interventionsFor(features, patch(), parsePositions('prompt')));
    const [prompt, other] = PROMPT_PAIR;
    const patchIds = model.encode(other);
    const sbs = await generateSideBySide(model, prompt, steering, { maxNewTokens: 3, patchPrompt: { ids: Int32Array.from(patchIds), batch: 1, seq: patchIds.length } });
    // The plural subject's verb becomes its singular form.
    const firstWord = (t: string) => t.trim().split(/\s+/)[0]!;
    const singular: Record<string, string> = { are: 'is', were: 'was', have: 'has', do: 'does' };
    expect(Object.keys(singular)).toContain(firstWord(sbs.before.text));
    expect(firstWord(sbs.after.text)).toBe(singular[firstWord(sbs.before.text)]);

    // Sweep of a scale factor on the same features; strength 1 is the unsteered model.
    const scaled = await Steering.create(model, neurons, interventionsFor(features, scale(0)));
    const { rows } = await sweep(model, scaled, [-2, 0, 1, 2], test);
    expect(rows.find((r) => r.strength === 1)!.flipRate).toBe(0);
    expect(rows.find((r) => r.strength === 1)!.klMean).toBeLessThan(1e-6);
    expect(sweepPlotSvg(rows, { title: 'top features' })).toContain('<svg');

    // sfc.steer/v1 and a quick-list round trip of the circuit's features.
    const report = steerReport({ features, interventions: steering.interventions, summary: rows[0] });
    expect(JSON.parse(JSON.stringify(report))).toMatchObject({ schema: 'sfc.steer/v1', dryRun: true });
    const { urls } = formatQuickListUrls(features, { modelId: 'sfc-agreement', name: 'agreement circuit' });
    expect(parseQuickListUrl(urls[0]!, { modelId: 'sfc-agreement', saeSet: 'sm' }).features).toEqual(features.map(({ effect: _e, ...f }) => f));
    expect(readFileSync(circuitPath, 'utf8')).toContain('"schema":"sfc.circuit/v1"');
  });
});

describe.skipIf(!existsSync(EMBEDDED_SAES))('with the embedded SAEs: the steering outcome (issue 15; skipped when embedded/agreement/saes is missing)', () => {
  // As `sfc demo` steers: the circuit's top features of the last residual stream (where the
  // subject's number reaches the verb), strength calibrated on rc_train, outcome on rc_test. A
  // prompt is on target when the steered top-1 is a verb form of the other number (the patch
  // answers of its case): the model spreads its mass over four auxiliaries, so the patch answer
  // alone is top-1 on about a quarter of the prompts even after a full patch (docs/concepts.md).
  let saes: Map<string, Dictionary>;
  let rcTrain: PromptBatch[];
  let rcTest: PromptBatch[];
  let top: SelectedFeature[];

  beforeAll(async () => {
    saes = await loadDictionarySet(EMBEDDED_SAES, model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel });
    const load = async (file: string, n: number) => {
      const path = join(EMBEDDED, 'data', file);
      const { examples } = await loadExamples(path, model.tokenizer, { numExamples: n });
      return withTargets(batchExamples(examples, 64), targetsByCase(examples, caseAnswerPool(readFileSync(path, 'utf8'), model.tokenizer)));
    };
    rcTrain = await load('rc_train.jsonl', 128);
    rcTest = await load('rc_test.jsonl', 256);
    const result = await discover(model, saes, rcTrain, { nodesOnly: true, steps: 10 });
    const last = `resid_${model.spec.dims.nLayers - 1}`;
    top = selectCircuitFeatures(buildCircuit(result, { nodeThreshold: 0.3 }), { topK: 3, submodules: [last] });
  });
  afterAll(() => { for (const d of saes?.values() ?? []) d.dispose(); });

  it('patch calibrated on rc_train: on target ≥ 80% of rc_test prompts at mean KL ≤ 3 nats; random features are not', async () => {
    expect(top.length).toBeGreaterThan(0);
    const steering = await Steering.create(model, saes, interventionsFor(top, patch()));
    const c = await calibrate(model, steering, rcTrain, { targetRate: 0.9 });
    expect(c.reached).toBe(true);
    const { summary } = await score(model, steering.withStrength(c.best.strength), rcTest);
    expect(summary.prompts).toBe(256);
    expect(summary.onTargetRate).toBeGreaterThanOrEqual(0.8);
    expect(summary.klMean).toBeLessThanOrEqual(3);
    expect(summary.flipRate).toBeGreaterThanOrEqual(0.7);
    const random = randomFeatures(top.length, (s) => saes.get(s)!.dSae, [top[0]!.submodule], top, 7);
    const control = await score(model, await Steering.create(model, saes, interventionsFor(random, patch(c.best.strength))), rcTest);
    expect(control.summary.onTargetRate).toBeLessThanOrEqual(0.1);
  });

  it('scaling the same features by −1 flips the answer pair but is off target: the model breaks (issue 15)', async () => {
    const { summary } = await score(model, await Steering.create(model, saes, interventionsFor(top, scale(-1))), rcTest);
    expect(summary.flipRate).toBeGreaterThanOrEqual(0.9);
    expect(summary.onTargetRate).toBeLessThanOrEqual(0.05);
    expect(summary.klMean).toBeGreaterThan(8);
    // No scale factor puts the verb's number on target: calibration says so instead of claiming it.
    const c = await calibrate(model, await Steering.create(model, saes, interventionsFor(top, scale(1))), rcTrain, { targetRate: 0.8, refine: 0 });
    expect(c.reached).toBe(false);
    expect(c.best.onTargetRate).toBeLessThan(0.8);
  });
});
