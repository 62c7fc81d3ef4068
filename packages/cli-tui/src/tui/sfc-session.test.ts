// The real TUI session on fixtures/small-a (tiny GPT-NeoX + SAEs, tfjs): what it says it can do,
// the default prompt, steering checked against the PyTorch reference logits and against the
// identity intervention, typed failures, and discovery with progress, output file and cancel.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCircuit, type ProgressEvent } from '@sfc/core';
import { ablate, clamp, scale } from '@sfc/steering';
import { memoryIO } from '../io.js';
import { CancelledError, type RunContext, type SteerRequest } from './session.js';
import { SfcTuiSession } from './sfc-session.js';
import { writeRecordedCircuit } from '../testing/recorded-circuit.js';

const SMALL_A = fileURLToPath(new URL('../../../../fixtures/small-a/', import.meta.url));
const CIRCUIT = fileURLToPath(new URL('./test-data/small-a-circuit.json', import.meta.url));
const REF = JSON.parse(readFileSync(join(SMALL_A, 'ref', 'model.json'), 'utf8')) as { clean_ids: number[][]; clean_logits: number[][][] };
const VOCAB = (JSON.parse(readFileSync(join(SMALL_A, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
const PROMPT = { text: 'The parents that the guards know', answer: ' have', patchAnswer: ' has' };

const context = (statuses: string[] = []): RunContext => ({ signal: new AbortController().signal, onStatus: (s) => statuses.push(s) });
const request = (over: Partial<SteerRequest> = {}): SteerRequest => ({ prompt: PROMPT, nodes: ['resid_1/8', 'resid_0/116'], op: scale(1), topK: 5, generate: 4, ...over });

let dir: string;
let session: SfcTuiSession;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sfc-tui-session-'));
  session = await SfcTuiSession.open(memoryIO({ cwd: dir }), {
    model: SMALL_A, dictionaries: join(SMALL_A, 'dictionaries'), data: join(SMALL_A, 'data.jsonl'), 'num-examples': 4, backend: 'tfjs',
  }, { out: 'found.json' });
  session.setCircuit(parseCircuit(readFileSync(CIRCUIT, 'utf8')));
});

afterAll(async () => {
  await session?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('what the session can do', () => {
  it('steers and discovers with a model, dictionaries and data', () => {
    expect(session.unavailable).toEqual({});
    expect(session.description).toBe('small-a · backend tfjs');
  });

  it('says what is missing otherwise', async () => {
    const io = memoryIO({ cwd: dir });
    const bare = await SfcTuiSession.open(io, {});
    expect(bare.unavailable.steer).toContain('--model');
    expect(bare.unavailable.discover).toContain('--model');
    expect(bare.description).toBe('no model (browsing only)');
    const noDicts = await SfcTuiSession.open(io, { model: SMALL_A });
    expect(noDicts.unavailable.steer).toContain('--dictionaries');
    const noData = await SfcTuiSession.open(io, { model: SMALL_A, dictionaries: join(SMALL_A, 'dictionaries') });
    expect(noData.unavailable.steer).toBeUndefined();
    expect(noData.unavailable.discover).toContain('--data');
    expect(await noData.defaultPrompt()).toEqual({ text: '', answer: '', patchAnswer: '' });
    const flagged = await SfcTuiSession.open(io, {}, { prompt: 'The cat', answer: ' is' });
    expect(await flagged.defaultPrompt()).toEqual({ text: 'The cat', answer: ' is', patchAnswer: '' });
    for (const s of [bare, noDicts, noData, flagged]) await s.close();
  });

  it('opens a circuit that records its model and steers that model with no flags', async () => {
    const path = join(dir, 'recorded.json');
    await writeRecordedCircuit(path);
    const own = await SfcTuiSession.open(memoryIO({ cwd: dir }), { circuit: path });
    try {
      expect(own.unavailable.steer).toBeUndefined();
      expect(own.description).toBe('small-a · backend tfjs');
      own.setCircuit(await own.loadCircuit(path, context()));
      const r = await own.steer(request({ generate: 0 }), context());
      const logits = REF.clean_logits[0]![5]!; // the reference model's logits of this prompt
      expect(r.before.logitDiff!).toBeCloseTo(logits[VOCAB.have!]! - logits[VOCAB.has!]!, 4);
    } finally {
      await own.close();
    }
  });

  it('refuses a config file naming another model than the circuit\'s', async () => {
    const path = join(dir, 'recorded.json');
    const proj = mkdtempSync(join(tmpdir(), 'sfc-tui-other-'));
    writeFileSync(join(proj, 'sfc.config.json'), JSON.stringify({ model: join(SMALL_A, '..', 'models', 'gpt2-a') }));
    await expect(SfcTuiSession.open(memoryIO({ cwd: proj }), { circuit: path })).rejects.toMatchObject({ code: 'CONFIG', message: expect.stringContaining('gpt2-a') });
    rmSync(proj, { recursive: true, force: true });
  });

  it('starts from the first example of the data file', async () => {
    expect(await session.defaultPrompt()).toEqual(PROMPT);
  });

  it('opens circuit files and reports missing ones', async () => {
    const c = await session.loadCircuit(CIRCUIT, context());
    expect(c.nodes).toHaveLength(18);
    await expect(session.loadCircuit(join(dir, 'nope.json'), context())).rejects.toThrow(/does not exist/);
  });
});

describe('steering', () => {
  it('shows the unsteered side as the reference model computes it', async () => {
    const statuses: string[] = [];
    const r = await session.steer(request(), context(statuses));
    expect(statuses.some((s) => s.startsWith('model loaded'))).toBe(true);
    // Reference logits of data line 0 (the same prompt) at its last position.
    expect(REF.clean_ids[0]).toEqual([3, 25, 5, 4, 9, 37]);
    const logits = REF.clean_logits[0]![5]!;
    // sfc steer's sign convention: logit[answer] − logit[patch answer] (" have" − " has"), and the answer's logit.
    expect(r.before.logitDiff!).toBeCloseTo(logits[VOCAB.have!]! - logits[VOCAB.has!]!, 4);
    expect(r.before.answerLogit!).toBeCloseTo(logits[VOCAB.have!]!, 4);
    const max = Math.max(...logits);
    const lse = max + Math.log(logits.reduce((s, v) => s + Math.exp(v - max), 0));
    const top = logits.map((v, id) => ({ id, lp: v - lse })).sort((a, b) => b.lp - a.lp).slice(0, 5);
    expect(r.before.top.map((t) => t.id)).toEqual(top.map((t) => t.id));
    r.before.top.forEach((t, i) => expect(t.logprob).toBeCloseTo(top[i]!.lp, 4));
    expect(r.before.top[0]!.token).toBe(Object.keys(VOCAB).find((w) => VOCAB[w] === top[0]!.id));
    expect(r.before.continuation).toBeDefined();
  });

  it('changes nothing with scale ×1 and changes the logit diff when the nodes are ablated', async () => {
    const same = await session.steer(request(), context());
    expect(same.after.logitDiff!).toBeCloseTo(same.before.logitDiff!, 5);
    expect(same.after.top.map((t) => t.id)).toEqual(same.before.top.map((t) => t.id));
    expect(same.after.continuation).toBe(same.before.continuation);
    expect(same.kl!).toBeLessThan(1e-6);
    // Outcome: unsteered, the contrasting answer is not on top; equal texts have equal fluency.
    expect(same.onTarget).toBe(false); // unsteered, the answer leads
    expect(same.fluency!.before).toBeLessThan(0);
    expect(same.fluency!.after).toBeCloseTo(same.fluency!.before!, 5);
    const ablated = await session.steer(request({ nodes: ['resid_1/err'], op: ablate('zero') }), context());
    expect(ablated.before.logitDiff!).toBeCloseTo(same.before.logitDiff!, 6);
    expect(Math.abs(ablated.after.logitDiff! - ablated.before.logitDiff!)).toBeGreaterThan(1e-3);
    expect(ablated.kl!).toBeGreaterThan(0);
  });

  it('has only logit[answer] with an answer only, nothing without one, and no continuation with generate 0', async () => {
    const single = await session.steer(request({ prompt: { ...PROMPT, patchAnswer: '' }, generate: 0 }), context());
    const logits = REF.clean_logits[0]![5]!;
    expect(single.before.answerLogit!).toBeCloseTo(logits[VOCAB.have!]!, 4);
    expect(single.before.logitDiff).toBeUndefined();
    const r = await session.steer(request({ prompt: { text: PROMPT.text, answer: '', patchAnswer: '' }, generate: 0 }), context());
    expect(r.before.logitDiff).toBeUndefined();
    expect(r.before.answerLogit).toBeUndefined();
    expect(r.before.continuation).toBeUndefined();
    expect(r.after.top).toHaveLength(5);
  });

  it('fails with typed errors the UI can show', async () => {
    const onError = session.steer(request({ nodes: ['resid_1/err'], op: clamp(0) }), context());
    await expect(onError).rejects.toMatchObject({ code: 'INPUT', message: expect.stringContaining('error node') });
    await expect(onError).rejects.toMatchObject({ hint: expect.stringContaining('scale (s) or ablate (x)') });
    await expect(onError).rejects.not.toMatchObject({ hint: expect.stringContaining('patch') }); // the TUI offers no patch op
    await expect(session.steer(request({ prompt: { ...PROMPT, answer: ' have have' } }), context())).rejects.toMatchObject({ code: 'INPUT', message: expect.stringContaining('2 tokens, not one') });
    await expect(session.steer(request({ nodes: ['resid_1/500'] }), context())).rejects.toMatchObject({ message: expect.stringContaining('out of range') });
    const controller = new AbortController();
    controller.abort();
    await expect(session.steer(request(), { signal: controller.signal, onStatus: () => undefined })).rejects.toBeInstanceOf(CancelledError);
  });
});

describe('calibration', () => {
  it('finds the strength of smallest KL that puts the contrasting answer on top, or says none does', async () => {
    const nodes = ['resid_1/8', 'resid_1/97'];
    const r = await session.calibrate(request({ nodes, op: clamp(0) }), context());
    expect(r.reached).toBe(true);
    expect(r.tried).toBeGreaterThan(15); // the grid, then bisection
    const at = await session.steer(request({ nodes, op: clamp(r.strength), generate: 0 }), context());
    expect(at.onTarget).toBe(true);
    expect(at.kl!).toBeCloseTo(r.kl, 4);
    // Scaling these features never gets there: said, not claimed.
    const none = await session.calibrate(request({ nodes, op: scale(1) }), context());
    expect(none.reached).toBe(false);
    await expect(session.calibrate(request({ prompt: { ...PROMPT, patchAnswer: '' } }), context())).rejects.toThrow(/needs a target/);
    await expect(session.calibrate(request({ op: ablate('zero') }), context())).rejects.toThrow(/no strength/);
  });
});

describe('discovery', () => {
  it('reports progress, writes the circuit atomically and returns it', async () => {
    const events: ProgressEvent[] = [];
    const notes: string[] = [];
    const out = await session.discover({ ...context(notes), onProgress: (e) => events.push(e) });
    expect(out.path).toBe(join(dir, 'found.json'));
    const written = parseCircuit(readFileSync(out.path!, 'utf8'));
    expect(written).toEqual(out.circuit);
    expect(written.numExamples).toBe(4);
    expect(written.nodes.length).toBeGreaterThan(1);
    expect(new Set(events.map((e) => e.stage)).size).toBeGreaterThan(1);
    expect(events.some((e) => e.done === e.total && e.total > 0)).toBe(true);
    expect(notes.some((n) => n.startsWith('data: 4 examples'))).toBe(true);
  });

  it('stops at core\'s next unit of work once cancelled, and writes nothing', async () => {
    rmSync(join(dir, 'found.json'), { force: true });
    const controller = new AbortController();
    let seen = 0;
    // The callback does not throw: the signal itself reaches core's discover.
    const run = session.discover({ signal: controller.signal, onStatus: () => undefined, onProgress: () => { seen++; controller.abort(); } });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    await expect(run).rejects.toMatchObject({ code: 'CANCELLED', operation: 'discover' });
    expect(seen).toBe(1);
    expect(existsSync(join(dir, 'found.json'))).toBe(false);
    // The session still works afterwards.
    const r = await session.steer(request({ generate: 0 }), context());
    expect(r.after.top).toHaveLength(5);
  });
});

describe('single-prompt data', () => {
  it('starts from the first cluster entry and discovers on prompts of different lengths', async () => {
    // The reference's cluster JSON (context pieces joined with ""), prompts of 4, 6 and 3 tokens.
    const clusters = {
      a: { context: ['The', ' parents', ' that', ' know'], answer: ' have' },
      b: { context: ['The parent that the guards know'], answer: ' has' },
      c: { context: ['The', ' guards', ' know'], answer: ' have' },
    };
    writeFileSync(join(dir, 'clusters.json'), JSON.stringify(clusters));
    const single = await SfcTuiSession.open(memoryIO({ cwd: dir }), {
      model: SMALL_A, dictionaries: join(SMALL_A, 'dictionaries'), data: join(dir, 'clusters.json'), backend: 'tfjs', 'node-threshold': 0.01,
    }, { out: 'single.json' });
    try {
      expect(await single.defaultPrompt()).toEqual({ text: 'The parents that know', answer: ' have', patchAnswer: '' });
      const notes: string[] = [];
      const out = await single.discover({ ...context(notes), onProgress: () => undefined });
      expect(out.circuit.numExamples).toBe(3);
      expect(out.circuit.metricPatch).toBeNull();
      expect(out.circuit.nodes.length).toBeGreaterThan(1);
      expect(notes.some((n) => n.startsWith('data: 3 single prompts'))).toBe(true);
    } finally {
      await single.close();
    }
  });
});
