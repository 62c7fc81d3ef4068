// Cancelling attribute, discover and evaluate through their AbortSignal: before the start, from
// a progress callback, and in the middle of a unit of work (an IG step chunk, an exact-patch
// chunk, an edge chunk, an ablation pass). Each time: the typed CancelledError, no unit of work
// after the one in flight, and no tensor left behind. Runs on fixtures/small-a's config and
// tokenizer with a toy runtime (position-wise ReLU layers over core's reference ops, so every
// gradient is nonzero and cheap) and toy ReLU SAEs: the algorithms' loops, scopes and checks are
// what is tested here, not the numbers (the parity suites in test/ check those).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, SegmentRuntime } from '../backend.js';
import type { Dictionary } from '../dictionary.js';
import { CancelledError, EXIT_CODES, InputError } from '../errors.js';
import { batchExamples, type PromptBatch } from '../data/batches.js';
import { selectExamples } from '../data/examples.js';
import { Model } from '../model/model.js';
import type { Tensor, TensorOps } from '../tensor.js';
import { referenceOps } from '../testing/reference-ops.js';
import { tidySync } from '../tidy.js';
import { attribute, type AttributionMethod, type NodeEffects } from './attribution.js';
import { cancelCheck, YIELD_INTERVAL_MS } from './cancel.js';
import { discover } from './discover.js';
import { evaluate } from './evaluation.js';
import type { ProgressEvent } from './progress.js';

const SMALL_A = fileURLToPath(new URL('../../../../fixtures/small-a', import.meta.url));
const D_SAE = 12;

/** Deterministic weights in [−scale, scale). */
function weights(seed: number, n: number, scale: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  });
}

interface RuntimeCalls { forward: number; vjp: number; hook?: (kind: 'forward' | 'vjp', segment: string) => void }

/**
 * Every mlp segment is y = relu(Σ inputs · W), every attention segment y = relu(A·(Σ inputs)·W)
 * with A the causal mean over positions (so patches at earlier positions reach the last one),
 * embed a table lookup, unembed a linear readout of the requested logits. Weights live outside
 * every scope until dispose().
 */
function toyBackend(calls: RuntimeCalls): Backend {
  const ops = referenceOps();
  return {
    name: 'toy',
    capabilities: { grad: true, devices: ['cpu'], dtypes: ['float32', 'int32'] },
    ops,
    describe: () => 'toy runtime on reference ops (tests only)',
    async loadModel(spec) {
      const { dModel: d, vocabSize: V } = spec.dims;
      const owned: Tensor[] = [];
      const keep = (t: Tensor) => { owned.push(t); return t; };
      const embed = keep(ops.tensor(weights(1, V * d, 1), [V, d]));
      const unembed = keep(ops.tensor(weights(2, d * V, 0.5), [d, V]));
      const unembedT = keep(ops.transpose(unembed));
      const layer = new Map(spec.segments.filter((s) => s.kind === 'attention' || s.kind === 'mlp').map((s, i) => {
        const w = keep(ops.tensor(weights(10 + i, d * d, 0.4), [d, d]));
        return [s.name, { w, wT: keep(ops.transpose(w)) }] as const;
      }));
      const attention = new Set(spec.segments.filter((s) => s.kind === 'attention').map((s) => s.name));
      const total = (inputs: readonly Tensor[]) => inputs.slice(1).reduce((a, b) => ops.add(a, b), inputs[0]!);
      /** A·x over positions for x [b, s, d] (A row i = 1/(i+1) on j ≤ i), or Aᵀ·x. */
      const mix = (x: Tensor, transposed = false) => {
        const s = x.shape[1]!;
        const a = Array.from({ length: s * s }, (_, k) => { const [i, j] = [Math.floor(k / s), k % s]; return j <= i ? 1 / (i + 1) : 0; });
        const m = ops.tensor(a, [s, s]);
        // (A·x)ᵀ = xᵀ·Aᵀ on [b, d, s].
        return ops.transpose(ops.matMul(ops.transpose(x, [0, 2, 1]), transposed ? m : ops.transpose(m)), [0, 2, 1]);
      };
      const layerInput = (segment: string, inputs: readonly Tensor[]) => (attention.has(segment) ? mix(total(inputs)) : total(inputs));
      /** Logits → the selected ones: [b, V] (lastOnly) gathered to [b, k] with `columns`. */
      const columnsOneHot = (columns: Tensor) => {
        const [b, k] = columns.shape as [number, number];
        return ops.reshape(ops.oneHot(ops.reshape(columns, [b * k]), V), [b, k, V]);
      };
      const runtime: SegmentRuntime = {
        async forward(segment, inputs, options) {
          calls.forward++;
          calls.hook?.('forward', segment);
          if (segment === 'embed') {
            const [b, s] = inputs[0]!.shape as [number, number];
            return ops.reshape(ops.gather(embed, ops.reshape(inputs[0]!, [b * s]), 0), [b, s, d]);
          }
          if (segment === 'unembed') {
            const x = inputs[0]!;
            const [b, s] = x.shape as [number, number];
            const sel = options?.logits;
            if (!sel?.lastOnly) {
              if (sel?.columns) throw new Error('toy runtime: columns need lastOnly');
              return ops.matMul(x, unembed);
            }
            const full = ops.matMul(ops.reshape(ops.slice(x, [0, s - 1, 0], [b, 1, d]), [b, d]), unembed);
            return sel.columns ? ops.sum(ops.mul(columnsOneHot(sel.columns), ops.reshape(full, [b, 1, V])), 2) : full;
          }
          return ops.relu(ops.matMul(layerInput(segment, inputs), layer.get(segment)!.w));
        },
        async vjp(segment, inputs, cotangent, options) {
          calls.vjp++;
          calls.hook?.('vjp', segment);
          if (segment === 'embed') return [];
          if (segment === 'unembed') {
            const [b, s] = inputs[0]!.shape as [number, number];
            const sel = options?.logits;
            if (!sel?.lastOnly) return [ops.matMul(cotangent, unembedT)];
            const full = sel.columns ? ops.sum(ops.mul(columnsOneHot(sel.columns), ops.reshape(cotangent, [b, sel.columns.shape[1]!, 1])), 1) : cotangent;
            const last = ops.reshape(ops.matMul(full, unembedT), [b, 1, d]);
            return [ops.mul(ops.reshape(ops.oneHot(ops.intTensor([s - 1], [1]), s), [1, s, 1]), last)];
          }
          const { w, wT } = layer.get(segment)!;
          const pre = ops.matMul(layerInput(segment, inputs), w);
          const g = ops.matMul(ops.mul(cotangent, ops.greater(pre, ops.zeros([1]))), wT);
          const gx = attention.has(segment) ? mix(g, true) : g;
          return inputs.map(() => gx);
        },
        dispose() { for (const t of owned) t.dispose(); },
      };
      return runtime;
    },
    async dispose() {},
  };
}

/** A ReLU SAE: f = relu(x·W_enc + b_enc), x̂ = f·W_dec + b_dec. Every weight is built up front, outside scopes. */
function toySae(ops: TensorOps, dIn: number, seed: number): Dictionary {
  const wEnc = ops.tensor(weights(seed, dIn * D_SAE, 0.5), [dIn, D_SAE]);
  const wEncT = ops.transpose(wEnc);
  const bEnc = ops.tensor(weights(seed + 1, D_SAE, 0.1), [D_SAE]);
  const wDec = ops.tensor(weights(seed + 2, D_SAE * dIn, 0.5), [D_SAE, dIn]);
  const bDec = ops.tensor(weights(seed + 3, dIn, 0.05), [dIn]);
  const active = (x: Tensor, t: <T extends Tensor>(u: T) => T) => ops.greater(t(ops.add(t(ops.matMul(x, wEnc)), bEnc)), t(ops.zeros([1])));
  return {
    architecture: 'relu', dIn, dSae: D_SAE,
    encode: (x) => tidySync((t) => ops.relu(t(ops.add(t(ops.matMul(x, wEnc)), bEnc)))),
    decode: (f) => tidySync((t) => ops.add(t(ops.matMul(f, wDec)), bDec)),
    decoderRows: () => wDec,
    decoderBias: () => bDec,
    encodeVjp: (x, cot) => tidySync((t) => ops.matMul(t(ops.mul(cot, t(active(x, t)))), wEncT)),
    featureGradients: (x, features) => tidySync((t) => {
      const j = t(ops.intTensor(features, [features.length]));
      const on = t(ops.sum(t(ops.mul(t(active(x, t)), t(ops.oneHot(j, D_SAE)))), 1));
      return ops.mul(t(ops.gather(wEncT, j, 0)), t(ops.reshape(on, [features.length, 1])));
    }),
    dispose: () => { for (const w of [wEnc, wEncT, bEnc, wDec, bDec]) w.dispose(); },
  };
}

const calls: RuntimeCalls = { forward: 0, vjp: 0 };
let model: Model;
let ops: TensorOps;
let dictionaries: Map<string, Dictionary>;
let batches: PromptBatch[];

beforeAll(async () => {
  model = await Model.load(SMALL_A, toyBackend(calls));
  ops = model.ops;
  const d = model.spec.dims.dModel;
  dictionaries = new Map(model.submodules.map((s, i) => [s.name, toySae(ops, d, 100 + 10 * i)]));
  const sel = selectExamples(readFileSync(join(SMALL_A, 'data.jsonl'), 'utf8'), model.tokenizer, { numExamples: 6, seed: null });
  batches = batchExamples(sel.examples, 2);
});

afterAll(() => {
  for (const dict of dictionaries?.values() ?? []) dict.dispose();
  model?.dispose();
});

/** Runs `fn` with a fresh signal; returns its rejection and what happened after the abort. */
async function cancelled(fn: (signal: AbortSignal, abort: () => void, events: ProgressEvent[]) => Promise<unknown>): Promise<{
  error: unknown; eventsAfter: ProgressEvent[]; callsAfter: number; events: ProgressEvent[];
}> {
  const controller = new AbortController();
  const events: ProgressEvent[] = [];
  let mark: { events: number; calls: number } | undefined;
  const abort = () => {
    mark ??= { events: events.length, calls: calls.forward + calls.vjp };
    controller.abort();
  };
  const before = ops.numTensors();
  const error = await fn(controller.signal, abort, events).then(() => undefined, (e: unknown) => e);
  calls.hook = undefined;
  expect(ops.numTensors(), 'tensors left after the cancelled run').toBe(before);
  return {
    error, events,
    eventsAfter: mark ? events.slice(mark.events) : events,
    callsAfter: mark ? calls.forward + calls.vjp - mark.calls : calls.forward + calls.vjp,
  };
}

function expectCancelled(error: unknown, operation: string): void {
  expect(error).toBeInstanceOf(CancelledError);
  const e = error as CancelledError;
  expect(e.code).toBe('CANCELLED');
  expect(e.operation).toBe(operation);
  expect(e.message).toBe(`${operation} cancelled`);
  expect(EXIT_CODES[e.code]).toBe(130);
  expect(e.hint).toBeUndefined();
}

describe('cancelCheck', () => {
  it('does nothing without a signal or before the abort, then rejects with CancelledError with the reason as cause', async () => {
    await cancelCheck(undefined, 'x')();
    const c = new AbortController();
    const check = cancelCheck(c.signal, 'attribute (ig)');
    await check();
    const reason = new Error('Ctrl-C');
    c.abort(reason);
    const thrown = await check().then(() => undefined, (e: unknown) => e);
    expectCancelled(thrown, 'attribute (ig)');
    expect((thrown as Error).cause).toBe(reason);
  });

  it('gives the event loop a turn after YIELD_INTERVAL_MS of work, so timers and signal handlers can abort', async () => {
    const c = new AbortController();
    const check = cancelCheck(c.signal, 'discover');
    let fired = false;
    setImmediate(() => { fired = true; c.abort(); });
    await check(); // just created: no turn yet
    expect(fired).toBe(false);
    const until = performance.now() + YIELD_INTERVAL_MS + 5;
    while (performance.now() < until) { /* a unit of synchronous work */ }
    await expect(check()).rejects.toBeInstanceOf(CancelledError);
    expect(fired).toBe(true);
  });
});

describe('discover', () => {
  it('runs to the end with a signal that never fires, leaving no tensor behind', async () => {
    const before = ops.numTensors();
    const plain = await discover(model, dictionaries, batches, { nodeThreshold: 0.05, steps: 3 });
    const signalled = await discover(model, dictionaries, batches, { nodeThreshold: 0.05, steps: 3, signal: new AbortController().signal });
    expect(ops.numTensors()).toBe(before);
    expect(signalled.effects.get('resid_1')!.features).toEqual(plain.effects.get('resid_1')!.features);
    expect(plain.edges.filter((e) => e.weight.length > 0).length).toBeGreaterThan(5); // the toy model has edges to cancel
  });

  it('is stopped by a timer, although the toy runtime never lets the event loop turn by itself', async () => {
    // Like Ctrl-C (a signal handler) or Esc in the TUI (a stdin read): a macrotask that aborts.
    const r = await cancelled((signal, abort, events) => {
      setTimeout(abort, 30);
      return discover(model, dictionaries, batches, { nodeThreshold: 0.05, steps: 3, signal, onProgress: (e) => events.push(e) });
    });
    expectCancelled(r.error, 'discover');
    expect(r.callsAfter).toBeLessThanOrEqual(2 * model.spec.segments.length); // at most the rest of one unit
    expect(r.events.filter((e) => e.stage === 'batches').length).toBeLessThan(batches.length);
  });

  it('does no work when the signal has already aborted', async () => {
    const r = await cancelled((signal, abort, events) => { abort(); return discover(model, dictionaries, batches, { signal, onProgress: (e) => events.push(e) }); });
    expectCancelled(r.error, 'discover');
    expect(r.events).toEqual([]);
    expect(r.callsAfter).toBe(0);
  });

  it('stops at the next unit after an abort from a progress callback, at every stage', async () => {
    for (const stage of ['submodules', 'edges', 'batches']) {
      const r = await cancelled((signal, abort, events) => discover(model, dictionaries, batches, {
        nodeThreshold: 0.05, steps: 3, signal,
        onProgress: (e) => { events.push(e); if (e.stage === stage) abort(); },
      }));
      expectCancelled(r.error, 'discover');
      expect(r.events.at(-1)!.stage, stage).toBe(stage);
      expect(r.eventsAfter, stage).toEqual([]);
      expect(r.callsAfter, stage).toBe(0); // the check comes before the next unit's first segment call
    }
  });

  it('stops within one chunk of IG steps, long before the submodule is done', async () => {
    // maxRows 2 = one IG step per chunk (batches of 2): 10 chunks for the first submodule.
    let forwards = 0;
    const r = await cancelled((signal, abort, events) => {
      calls.hook = (kind) => { if (kind === 'forward' && ++forwards === 14) abort(); };
      return discover(model, dictionaries, batches, { steps: 10, maxRows: 2, signal, onProgress: (e) => events.push(e) });
    });
    expectCancelled(r.error, 'discover');
    expect(r.events).toEqual([]); // not even the first submodule finished
    expect(forwards).toBeLessThan(20);
    // The chunk in flight finishes: the rest of its forward and its backward, no other.
    expect(r.callsAfter).toBeLessThanOrEqual(2 * model.spec.segments.length);
  });

  it('stops within one edge chunk, in the middle of an edge pair', async () => {
    let inEdges = false;
    const r = await cancelled((signal, abort, events) => {
      calls.hook = (kind) => { if (inEdges && kind === 'vjp') abort(); };
      return discover(model, dictionaries, batches, {
        nodeThreshold: 0, steps: 2, maxRows: 2, signal,
        onProgress: (e) => { events.push(e); if (e.stage === 'edges') inEdges = true; },
      });
    });
    expectCancelled(r.error, 'discover');
    expect(r.eventsAfter).toEqual([]); // the pair in flight never reported
    expect(r.callsAfter).toBe(0); // its segment VJP was the last one
  });
});

describe('attribute', () => {
  const methods: readonly AttributionMethod[] = [{ kind: 'attrib' }, { kind: 'ig', steps: 3 }, { kind: 'exact' }];

  it('does no work when the signal has already aborted', async () => {
    for (const method of methods) {
      const r = await cancelled((signal, abort) => { abort(); return attribute(model, dictionaries, batches, { method, signal }); });
      expectCancelled(r.error, `attribute (${method.kind})`);
      expect(r.callsAfter).toBe(0);
    }
  });

  it('stops at the next submodule after an abort from a progress callback', async () => {
    for (const method of methods) {
      const r = await cancelled((signal, abort, events) => attribute(model, dictionaries, batches, {
        method, signal, onProgress: (e) => { events.push(e); if (e.stage === 'submodules' && e.done === 2) abort(); },
      }));
      expectCancelled(r.error, `attribute (${method.kind})`);
      expect(r.eventsAfter, method.kind).toEqual([]);
      expect(r.callsAfter, method.kind).toBe(0);
    }
  });

  it('stops exact patching at the next chunk of patches', async () => {
    const r = await cancelled((signal, abort, events) => attribute(model, dictionaries, batches, {
      method: { kind: 'exact' }, maxRows: 2, signal,
      onProgress: (e) => { events.push(e); if (e.stage === 'exact' && e.done === 4) abort(); },
    }));
    expectCancelled(r.error, 'attribute (exact)');
    expect(r.events.at(-1)).toMatchObject({ stage: 'exact', done: 4 });
    expect(r.events.at(-1)!.total).toBeGreaterThan(4); // aborted mid-submodule
    expect(r.callsAfter).toBe(0);
  });

  it('runs to the end with a signal that never fires', async () => {
    const before = ops.numTensors();
    const r = await attribute(model, dictionaries, batches, { method: { kind: 'ig', steps: 2 }, signal: new AbortController().signal });
    expect(r.effects.size).toBe(model.submodules.length);
    expect(ops.numTensors()).toBe(before);
  });
});

describe('evaluate', () => {
  let effects: Map<string, NodeEffects>;
  beforeAll(async () => {
    effects = new Map((await attribute(model, dictionaries, batches, { method: { kind: 'attrib' } })).effects);
  });
  const options = (signal: AbortSignal, kind: 'mean' | 'zero' | 'resample' = 'mean') =>
    ({ effects, thresholds: [0.001, 0.01, 0.1], ablation: kind === 'resample' ? { kind, seed: 3 } : { kind }, signal } as const);

  it('does no work when the signal has already aborted', async () => {
    const r = await cancelled((signal, abort) => { abort(); return evaluate(model, dictionaries, batches, options(signal)); });
    expectCancelled(r.error, 'evaluate');
    expect(r.callsAfter).toBe(0);
  });

  it('stops before the next ablated forward after an abort from a progress callback', async () => {
    for (const kind of ['mean', 'zero', 'resample'] as const) {
      const r = await cancelled((signal, abort, events) => evaluate(model, dictionaries, batches, {
        ...options(signal, kind), onProgress: (e) => { events.push(e); if (e.done === 3) abort(); },
      }));
      expectCancelled(r.error, 'evaluate');
      expect(r.events.map((e) => e.done), kind).toEqual([1, 2, 3]);
      expect(r.callsAfter, kind).toBe(0);
    }
  });

  it('stops the mean-ablation pass at the next batch', async () => {
    let forwards = 0;
    const r = await cancelled((signal, abort, events) => {
      calls.hook = (kind, segment) => { if (kind === 'forward' && segment === 'embed' && ++forwards === 2) abort(); };
      return evaluate(model, dictionaries, batches, { ...options(signal), onProgress: (e) => events.push(e) });
    });
    expectCancelled(r.error, 'evaluate');
    expect(r.events).toEqual([]); // still in the pass over the patch prompts
    expect(forwards).toBe(2);
  });

  it('runs to the end with a signal that never fires', async () => {
    const before = ops.numTensors();
    const r = await evaluate(model, dictionaries, batches, options(new AbortController().signal));
    expect(r.rows).toHaveLength(3);
    expect(ops.numTensors()).toBe(before);
  });

  it('checks its inputs before it checks the signal', async () => {
    const c = new AbortController();
    c.abort();
    await expect(evaluate(model, dictionaries, batches, { ...options(c.signal), thresholds: [] })).rejects.toBeInstanceOf(InputError);
  });
});
