// `sfc steer` end to end, as a subprocess: feature specs parsed without a model (a Neuronpedia
// quick list of a model that is not on disk), validated against fixtures/small-a when a model is
// given, and steering a circuit's top features with the fixture's SAELens SAEs — the unsteered
// numbers against the PyTorch reference, the steered ones against each other (ops that must
// agree, an identity op, a sweep row against a single run), generation, and input errors.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '@sfc/core';
import { sfc, STACK_LINE } from './cli-run.js';
import { REPO_ROOT, SMALL_A } from './paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'sfc-cli-steer-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const MODEL = ['--model', SMALL_A, '--dictionaries', join(SMALL_A, 'saelens')];
const DATA = join(SMALL_A, 'data.jsonl');
/** feature-circuits' save of the fixture's reference circuit (aggregation sum). */
const FC_SUM = join(REPO_ROOT, 'packages', 'dictionaries', 'test-data', 'formats', 'circuits', 'small-a_agreement_n40_aggsum_node0.1.pt');
/** The reference circuit's features: node threshold 0.1 as the file name says. */
const CIRCUIT = ['--circuit', FC_SUM, '--threshold', '0.1'];

const quickList = (features: { modelId: string; layer: string; index: number | string }[]) =>
  `https://www.neuronpedia.org/quick-list?name=agreement&features=${encodeURIComponent(JSON.stringify(features))}`;
const PYTHIA_LIST = quickList([
  { modelId: 'pythia-70m-deduped', layer: '3-res-sm', index: '1234' },
  { modelId: 'pythia-70m-deduped', layer: 'e-res-sm', index: 17 },
  { modelId: 'pythia-70m-deduped', layer: '5-att-sm', index: '9' },
]);

interface View { metric?: number; logitDiff?: number; cleanLogit?: number; patchLogit?: number; top: { id: number; token: string; logprob: number }[] }
interface Report {
  schema: string; dryRun: boolean;
  features: { id: string; submodule: string; index: number | null; pos: number | null }[];
  interventions: { id: string; opText: string; positions: string }[];
  prompts?: { index: number; example?: number; prompt?: string; before: View; after: View; kl: number; flipped?: boolean; top1Changed: boolean }[];
  summary?: { prompts: number; metricName?: string; metricBefore?: number; metricAfter?: number; logitDiffBefore?: number; logitDiffAfter?: number; klMean: number; flipRate?: number; top1ChangeRate: number };
  sweep?: { strength: number; metricAfter?: number; flipRate?: number; klMean: number; logitDiffAfter?: number }[];
  generations?: { prompt: string; before: { ids: number[]; text: string }; after: { ids: number[]; text: string } }[];
  [k: string]: unknown;
}

async function steerJson(args: string[]): Promise<Report> {
  const r = await sfc(['steer', ...args, '--json'], { cwd: TMP });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Report;
}

describe('sfc steer --dry-run', () => {
  it('parses a quick list of a model that is not on disk (no model given)', async () => {
    const rep = await steerJson(['--features', PYTHIA_LIST, '--dry-run', '--op', 'clamp', '--value', '0']);
    expect(rep).toMatchObject({ schema: 'sfc.steer/v1', dryRun: true, source: { quickList: { name: 'agreement', modelId: 'pythia-70m-deduped', saeSet: 'sm' } } });
    expect(rep.features).toEqual([
      { id: 'resid_3/1234', submodule: 'resid_3', index: 1234, pos: null },
      { id: 'embed/17', submodule: 'embed', index: 17, pos: null },
      { id: 'attn_5/9', submodule: 'attn_5', index: 9, pos: null },
    ]);
    expect(rep.interventions.map((i) => `${i.id} ${i.opText} ${i.positions}`)).toEqual(['resid_3/1234 clamp(0) all', 'embed/17 clamp(0) all', 'attn_5/9 clamp(0) all']);
    const text = await sfc(['steer', '--features', PYTHIA_LIST, '--dry-run'], { cwd: TMP });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^3 features, op scale \(no --value\)/);
    expect(text.stdout).toMatch(/parsed only/);
  });

  it('with a model, the same list fails naming the layers the model has', async () => {
    const r = await sfc(['steer', '--features', PYTHIA_LIST, '--dry-run', ...MODEL], { cwd: TMP });
    expect(r.code).toBe(EXIT_CODES.INPUT);
    expect(r.stderr).toMatch(/^error: the quick list names layers 3-res-sm, 5-att-sm, which the model does not have/m);
    expect(r.stderr).toMatch(/^hint: expected one of e-res-sm, 0-att-sm, 0-mlp-sm, 0-res-sm, 1-att-sm, 1-mlp-sm, 1-res-sm/m);
  });

  it('with a model, checks the features; a feature-circuits .pt circuit is read through the converter', async () => {
    const list = await steerJson(['--features', 'resid_1/8, resid_1/err,embed/3@2,resid_1/8', '--dry-run', ...MODEL]);
    expect(list.features).toEqual([
      { id: 'resid_1/8', submodule: 'resid_1', index: 8, pos: null },
      { id: 'resid_1/err', submodule: 'resid_1', index: null, pos: null },
      { id: 'embed/3@2', submodule: 'embed', index: 3, pos: 2 },
    ]);
    const fc = await steerJson([...CIRCUIT, '--top-k', '3', '--dry-run', ...MODEL]);
    // The reference circuit's three largest |effect| features (errors excluded by default).
    expect(fc.features.map((f) => f.id)).toEqual(['embed/105', 'embed/54', 'embed/104']);
    expect(fc).toMatchObject({ dryRun: true, source: { circuit: FC_SUM, selection: { topK: 3, threshold: 0.1 } }, model: { path: SMALL_A } });
  });
});

describe('sfc steer on fixtures/small-a', () => {
  const ref = JSON.parse(readFileSync(join(SMALL_A, 'ref', 'ig_sum.json'), 'utf8'));
  const lines = readFileSync(DATA, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).clean_prefix as string);
  const run = (op: string[], extra: string[] = []) => steerJson([...CIRCUIT, '--top-k', '8', ...op, ...MODEL, '--data', DATA, '--num-examples', '12', ...extra]);
  let zero: Report;

  it('scaling the top features by 0: unsteered metric = the PyTorch reference, steered = ablate = clamp 0', async () => {
    zero = await run(['--op', 'scale', '--value', '0'], ['--out', join(TMP, 'steer.json')]);
    expect(JSON.parse(readFileSync(join(TMP, 'steer.json'), 'utf8'))).toEqual(zero);
    expect(zero.dryRun).toBe(false);
    expect(zero.features).toHaveLength(8);
    expect(zero.prompts).toHaveLength(12);
    expect(zero.summary).toMatchObject({ prompts: 12, metricName: 'logit-diff' });
    for (const p of zero.prompts!) {
      // Before steering: logit[patch] − logit[clean], as the reference computed it for that example.
      const b = lines.indexOf(p.prompt!);
      expect(b, p.prompt).toBeGreaterThanOrEqual(0);
      expect(Math.abs(p.before.metric! - ref.metric.clean[b]), p.prompt).toBeLessThan(1e-3);
      expect(p.before.logitDiff).toBeCloseTo(-p.before.metric!, 4);
      expect(p.after.logitDiff).toBeCloseTo(-p.after.metric!, 4);
      expect(p.flipped).toBe((p.before.logitDiff! > 0) !== (p.after.logitDiff! > 0));
      expect(p.kl).toBeGreaterThanOrEqual(-1e-6);
      expect(p.before.top).toHaveLength(5);
    }
    const mean = (f: (p: NonNullable<Report['prompts']>[number]) => number) => zero.prompts!.reduce((a, p) => a + f(p), 0) / 12;
    expect(zero.summary!.metricAfter).toBeCloseTo(mean((p) => p.after.metric!), 5);
    // Removing the circuit's strongest features moves the metric.
    expect(Math.abs(zero.summary!.metricAfter! - zero.summary!.metricBefore!)).toBeGreaterThan(0.05);
    const [ablated, clamped] = await Promise.all([run(['--op', 'ablate']), run(['--op', 'clamp', '--value', '0'])]);
    for (const other of [ablated, clamped]) {
      other.prompts!.forEach((p, i) => expect(p.after.metric).toBeCloseTo(zero.prompts![i]!.after.metric!, 4));
    }
  });

  it('scale 1 is the identity', async () => {
    const id = await run(['--op', 'scale', '--value', '1', '--positions', 'prompt']);
    for (const p of id.prompts!) {
      expect(p.after.metric).toBeCloseTo(p.before.metric!, 4);
      expect(p.kl).toBeLessThan(1e-5);
      expect(p.top1Changed).toBe(false);
    }
  });

  it('a sweep prints a table, draws the curve and agrees with single runs', async () => {
    const svg = join(TMP, 'sweep.svg');
    const args = ['steer', ...CIRCUIT, '--top-k', '8', '--op', 'scale', '--sweep', '-1:1:3', ...MODEL, '--data', DATA, '--num-examples', '12', '--plot', svg];
    const r = await sfc(args, { cwd: TMP });
    expect(r.code, r.stderr).toBe(0);
    const table = r.stdout.split('\n');
    // One sign convention: the logit diff only (core's logit-diff metric is its negative).
    const head = table.findIndex((l) => /^strength +logit diff +flipped +on target +top-1 changed +KL \(nats\)$/.test(l));
    expect(head, r.stdout).toBeGreaterThan(0);
    expect(table.slice(head + 1, head + 4).map((l) => l.trim().split(/\s+/)[0])).toEqual(['-1', '0', '1']);
    expect(table[head + 3]).toMatch(/ 0\.0% +\d+\.\d% +0\.0% +0\.0000$/); // strength 1 = no change
    expect(r.stdout).toMatch(/^(best swept strength -?[\d.]+: the smallest KL with on target ≥ 90\.0%|no strength swept reaches on target 90\.0%)/m);
    expect(r.stderr).toMatch(/^score: /m); // progress
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg[^>]*>/);
    expect(readFileSync(svg, 'utf8')).toContain('logit[answer] − logit[patch answer]'); // the table's quantity, same sign
    const rep = await steerJson(args.slice(1, -2));
    expect(rep.sweep!.map((x) => x.strength)).toEqual([-1, 0, 1]);
    expect(rep.sweep![1]!.metricAfter).toBeCloseTo(zero.summary!.metricAfter!, 4);
    expect(rep.sweep![1]!.flipRate).toBeCloseTo(zero.summary!.flipRate!, 6);
  });

  it('--calibrate: the strength of smallest KL reaching the on-target rate, then the steer at it; --target and --targets-by-case', async () => {
    const svg = join(TMP, 'calibrate.svg');
    const base = ['--features', 'resid_1/8,resid_1/5,resid_0/21', '--op', 'patch', ...MODEL, '--data', DATA, '--num-examples', '12'];
    const r = await sfc(['steer', ...base, '--calibrate', '0.5', '--targets-by-case', '--plot', svg], { cwd: TMP });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^calibration of the patch strength over 12 prompts$/m);
    expect(readFileSync(svg, 'utf8')).toMatch(/on-target rate/);
    const rep = await steerJson([...base, '--calibrate', '0.5', '--targets-by-case']);
    const cal = rep.calibration as { targetRate: number; reached: boolean; best: { strength: number; onTargetRate: number; klMean: number }; tried: { strength: number; onTargetRate: number; klMean: number }[] };
    expect(cal.targetRate).toBe(0.5);
    // The reported steer is the one at the chosen strength, and the summary is its measurement.
    expect(rep.interventions[0]!.opText).toBe(`patch(${cal.best.strength})`);
    expect(rep.summary!.klMean).toBeCloseTo(cal.best.klMean, 6);
    const passing = cal.tried.filter((t) => t.onTargetRate >= 0.5);
    expect(cal.reached).toBe(passing.length > 0);
    if (cal.reached) expect(cal.best.klMean).toBe(Math.min(...passing.map((t) => t.klMean)));
    expect(r.stdout).toMatch(cal.reached ? /^calibrated strength [\d.]+: the smallest KL with on target ≥ 50\.0%/m : /^no strength tried reaches on target 50\.0%/m);

    // --target: the named token is every prompt's target; the steered top-1 decides on-target.
    const named = await steerJson(['--features', 'resid_1/8', '--op', 'scale', '--value', '-4', ...MODEL, '--data', DATA, '--num-examples', '12', '--target', ' is', '--target', ' was']);
    const ids = new Set(named.prompts!.map((p) => p.after.top[0]!).filter((t) => t.token === ' is' || t.token === ' was').map((t) => t.id));
    for (const p of named.prompts!) expect((p as { onTarget?: boolean }).onTarget).toBe(ids.has(p.after.top[0]!.id));
    const bad = await sfc(['steer', '--features', 'resid_1/8', '--op', 'scale', '--value', '2', ...MODEL, '--prompt', 'The parents', '--target', ' are', '--targets-by-case'], { cwd: TMP });
    expect(bad.code).toBe(2); // usage
    const noTarget = await sfc(['steer', '--features', 'resid_1/8', '--op', 'scale', '--calibrate', ...MODEL, '--prompt', 'The parents'], { cwd: TMP });
    expect(noTarget.code).toBe(EXIT_CODES.INPUT);
    expect(noTarget.stderr).toMatch(/calibration needs a target per prompt/);
    const ablate = await sfc(['steer', '--features', 'resid_1/8', '--op', 'ablate', '--calibrate', ...MODEL, '--data', DATA], { cwd: TMP });
    expect(ablate.code).toBe(2);
  });

  it('generates text side by side; sampling with a seed is reproducible', async () => {
    const prompt = ['--prompt', lines[0]!, '--answer', ' is', '--patch-answer', ' are'];
    const greedy = await steerJson(['--features', 'resid_1/8,embed/105', '--op', 'scale', '--value', '1', ...MODEL, ...prompt, '--generate', '4']);
    const g = greedy.generations![0]!;
    expect(g.prompt).toBe(lines[0]);
    expect(g.before.ids).toHaveLength(4);
    expect(g.after.ids).toEqual(g.before.ids); // scale 1 changes nothing
    // Fluency: mean log-prob of each side's text under the unsteered model (equal texts, equal values).
    const fl = greedy.fluency as { before: number; after: number }[];
    expect(fl[0]!.before).toBeLessThan(0);
    expect(fl[0]!.after).toBe(fl[0]!.before);
    const sampled = () => steerJson(['--features', 'resid_1/8,embed/105', '--op', 'scale', '--value', '-4', ...MODEL, ...prompt, '--generate', '6', '--temperature', '1.5', '--seed', '7']);
    const [a, b] = await Promise.all([sampled(), sampled()]);
    expect(a.generations).toEqual(b.generations);
    expect(a.generations![0]!.after.ids).toHaveLength(6);
    expect(a).toMatchObject({ sampling: { kind: 'sample', temperature: 1.5, seed: 7 }, prompt: lines[0] });
    expect(a.prompts![0]!.before.cleanLogit).toBeDefined();
  });
});

describe.concurrent('sfc steer on bad input', () => {
  const cases: { name: string; args: string[]; code: number; message: RegExp; hint?: RegExp }[] = [
    { name: 'a SPEC that is neither a quick list nor ids', args: ['--features', 'resid_3/12,layer3:feature12', '--dry-run'], code: EXIT_CODES.INPUT,
      message: /--features: 'layer3:feature12' is not a node id/, hint: /quick-list URL .* or a list of ids: resid_3\/1234,attn_0\/17/ },
    { name: 'a cut-off quick-list URL', args: ['--features', PYTHIA_LIST.slice(0, -20), '--dry-run'], code: EXIT_CODES.INPUT, message: /not valid JSON/, hint: /cut off/ },
    { name: 'neither --circuit nor --features', args: ['--dry-run'], code: 2, message: /give --circuit FILE or --features SPEC/, hint: /quick-list URL/ },
    { name: 'both --circuit and --features', args: ['--circuit', FC_SUM, '--features', 'resid_1/8', '--dry-run'], code: 2, message: /mutually exclusive/ },
    { name: 'a feature index outside the dictionary', args: ['--features', 'attn_0/500', '--op', 'ablate', ...MODEL, '--prompt', 'The author'], code: EXIT_CODES.INPUT,
      message: /attn_0\/500: feature index 500 is out of range/, hint: /indices 0\.\.127/ },
    { name: 'no prompts', args: ['--features', 'resid_1/8', '--op', 'ablate', ...MODEL], code: 2, message: /give --prompt TEXT or --data FILE/ },
    { name: 'sweeping an op without a strength', args: ['--features', 'resid_1/8', '--op', 'ablate', '--sweep', '0:1:3'], code: 2, message: /--sweep and --calibrate vary the strength of scale, clamp, add or patch/ },
    { name: 'calibrating clamp without a grid', args: ['--features', 'resid_1/8', '--op', 'clamp', '--calibrate'], code: 2, message: /--calibrate with --op clamp needs --sweep/ },
    { name: '--plot without --sweep', args: ['--features', 'resid_1/8', '--op', 'ablate', '--plot', join(TMP, 'x.svg')], code: 2, message: /--plot draws a sweep/ },
    { name: 'scale without a value', args: ['--features', 'resid_1/8', ...MODEL, '--prompt', 'The author'], code: EXIT_CODES.INPUT, message: /scale needs a value/ },
    { name: 'clamp on an error node', args: ['--features', 'resid_1/err', '--op', 'clamp', '--value', '1', ...MODEL, '--prompt', 'The author'], code: EXIT_CODES.INPUT,
      message: /the error node has no decoder row/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = await sfc(['steer', ...c.args, '--out', join(TMP, 'x.json')], { cwd: TMP });
      expect(r.code, r.stderr).toBe(c.code);
      expect(r.stderr).toMatch(/^error: /m);
      expect(r.stderr).toMatch(c.message);
      if (c.hint) expect(r.stderr).toMatch(c.hint);
      expect(r.stderr).not.toMatch(STACK_LINE);
      expect(existsSync(join(TMP, 'x.json')) || existsSync(join(TMP, 'x.svg'))).toBe(false);
      expect(readdirSync(TMP).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    });
  }
});
