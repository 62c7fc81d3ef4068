// A deterministic TuiSession for tests of the UI: circuits are read from real sfc.circuit/v1 files
// (core's parser), steering results are a simple function of the request (so a test can predict
// every number on screen), and discovery reports progress that the test drives step by step.
// Every request is recorded. Not for production use: it computes nothing about a model.

import { readFile } from 'node:fs/promises';
import { InputError, NotFoundError, parseCircuit, type Circuit, type ProgressEvent, type TopContext } from '@sfc/core';
import { opStrength, type TopToken } from '@sfc/steering';
import {
  CancelledError, EMPTY_PROMPT, type CalibrationResult, type DiscoveryOutcome, type PromptInput, type RunContext, type SteerRequest, type SteerResult, type TopContextsView, type TuiSession,
} from '../session.js';

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

export interface FakeSessionOptions {
  readonly description?: string;
  readonly unavailable?: TuiSession['unavailable'];
  readonly prompt?: PromptInput;
  /** Steering waits for finishSteer() / failSteer() instead of answering at once. */
  readonly manualSteer?: boolean;
  /** Circuit file that discovery "finds". */
  readonly discoveredPath?: string;
  /**
   * Discovery honours an abort the way core's discover does: at its next unit of work (the next
   * progress() or finishDiscovery()), not at once.
   */
  readonly cancelBetweenUnits?: boolean;
  /** Top contexts by feature id (`embed/54`); without it the session offers none. */
  readonly topContexts?: Readonly<Record<string, readonly TopContext[]>>;
}

const BEFORE_TOP = [' have', ' has', ' are', ' is', ' the'];

/** The fake's rule for the metric after steering: each picked node moves it by effect × the op's pull. */
export function fakeMetricShift(circuit: Circuit | undefined, request: SteerRequest): number {
  const op = request.op;
  const pull = op.kind === 'scale' ? op.factor - 1 : op.kind === 'clamp' ? op.value - 1 : op.kind === 'add' ? op.alpha / 2 : -1;
  let shift = 0;
  for (const id of request.nodes) shift += (circuit?.nodes.find((n) => n.id === id)?.effect ?? 0) * pull;
  return shift;
}

function tokens(words: readonly string[], first: number): TopToken[] {
  return words.map((token, i) => ({ id: i, token, logprob: first - i }));
}

export class FakeSession implements TuiSession {
  readonly description: string;
  readonly unavailable: TuiSession['unavailable'];
  readonly steerRequests: SteerRequest[] = [];
  readonly calibrateRequests: SteerRequest[] = [];
  readonly statusLog: string[] = [];
  circuit: Circuit | undefined;
  closed = false;
  private steerWaits: Deferred<void>[] = [];
  private discovery: { readonly done: Deferred<void>; readonly onProgress: (e: ProgressEvent) => void; readonly context: RunContext } | undefined;

  readonly topContexts?: (submodule: string, feature: number) => Promise<TopContextsView>;

  constructor(private readonly options: FakeSessionOptions = {}) {
    this.description = options.description ?? 'fake session';
    this.unavailable = options.unavailable ?? {};
    const contexts = options.topContexts;
    if (contexts) {
      this.topContexts = async (submodule, feature) => {
        const c = contexts[`${submodule}/${feature}`];
        return c ? { contexts: c } : { none: `${submodule}/${feature} has no top contexts yet` };
      };
    }
  }

  async loadCircuit(path: string, context: RunContext): Promise<Circuit> {
    context.onStatus(`reading ${path}`);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      throw new NotFoundError(`circuit file ${path} does not exist`, 'write one with `sfc discover --out circuit.json`');
    }
    return parseCircuit(text, path);
  }

  async defaultPrompt(): Promise<PromptInput> {
    return this.options.prompt ?? EMPTY_PROMPT;
  }

  setCircuit(circuit: Circuit): void {
    this.circuit = circuit;
  }

  async steer(request: SteerRequest, context: RunContext): Promise<SteerResult> {
    this.steerRequests.push(request);
    if (this.options.manualSteer) {
      const wait = deferred<void>();
      this.steerWaits.push(wait);
      context.signal.addEventListener('abort', () => wait.reject(new CancelledError('steering')));
      await wait.promise;
    }
    if (context.signal.aborted) throw new CancelledError('steering');
    const hasMetric = request.prompt.answer !== '';
    const before = this.circuit?.metricClean ?? -1;
    const after = before + fakeMetricShift(this.circuit, request);
    const flipped = hasMetric && (before > 0) !== (after > 0);
    const afterWords = flipped ? [BEFORE_TOP[1]!, BEFORE_TOP[0]!, ...BEFORE_TOP.slice(2)] : BEFORE_TOP;
    const k = request.topK;
    const strength = opStrength(request.op);
    return {
      ...(hasMetric ? { metricName: request.prompt.patchAnswer ? 'logit-diff' : 'neg-answer-logit' } : {}),
      before: { ...(hasMetric ? { metric: before } : {}), top: tokens(BEFORE_TOP.slice(0, k), -0.5), ...(request.generate ? { continuation: ' the guards know have' } : {}) },
      after: {
        ...(hasMetric ? { metric: after } : {}), top: tokens(afterWords.slice(0, k), -0.7),
        ...(request.generate ? { continuation: ` ${request.op.kind}${strength === undefined ? '' : ` ${strength}`} has` } : {}),
      },
      kl: Math.abs(after - before) / 10,
      ...(request.prompt.patchAnswer ? { onTarget: flipped } : {}),
      ...(request.generate ? { fluency: { before: -1.25, after: -1.25 - Math.abs(after - before) / 4 } } : {}),
    };
  }

  /** The fake's calibration: the strength 1.5 for scale (reached), none for clamp/add (best 0). */
  async calibrate(request: SteerRequest, context: RunContext): Promise<CalibrationResult> {
    this.calibrateRequests.push(request);
    if (context.signal.aborted) throw new CancelledError('calibration');
    if (!request.prompt.patchAnswer) throw new InputError('calibration needs a target: the prompt\'s contrasting answer');
    return request.op.kind === 'scale' ? { strength: -1.5, reached: true, kl: 2.25, tried: 16 } : { strength: 0, reached: false, kl: 0.5, tried: 21 };
  }

  /** Resolves the oldest waiting steering run (manualSteer). */
  finishSteer(): void {
    this.steerWaits.shift()?.resolve();
  }

  failSteer(e: unknown): void {
    this.steerWaits.shift()?.reject(e);
  }

  get waitingSteers(): number {
    return this.steerWaits.length;
  }

  async discover(context: RunContext & { readonly onProgress: (event: ProgressEvent) => void }): Promise<DiscoveryOutcome> {
    const done = deferred<void>();
    this.discovery = { done, onProgress: context.onProgress, context };
    if (!this.options.cancelBetweenUnits) context.signal.addEventListener('abort', () => done.reject(new CancelledError('discover')));
    context.onStatus('loading the model');
    try {
      await done.promise;
    } finally {
      this.discovery = undefined;
    }
    const path = this.options.discoveredPath;
    if (!path) throw new NotFoundError('the fake session has no discovered circuit', 'pass discoveredPath');
    const circuit = parseCircuit(await readFile(path, 'utf8'), path);
    return { circuit, path };
  }

  get discovering(): boolean {
    return this.discovery !== undefined;
  }

  /** Reports progress of the running discovery (with cancelBetweenUnits: or stops it, when aborted). */
  progress(event: ProgressEvent): void {
    if (this.stoppedByAbort()) return;
    this.discovery?.onProgress(event);
  }

  finishDiscovery(): void {
    if (this.stoppedByAbort()) return;
    this.discovery?.done.resolve();
  }

  /** The check core makes before each unit of work. */
  private stoppedByAbort(): boolean {
    if (!this.discovery?.context.signal.aborted) return false;
    this.discovery.done.reject(new CancelledError('discover'));
    return true;
  }

  failDiscovery(e: unknown): void {
    this.discovery?.done.reject(e);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
