// The TUI's only door to the work: loading a circuit, steering, discovery. The Ink components
// talk to this interface and never to a model or backend, so tests drive the whole UI with a
// deterministic fake (testing/fake-session.ts) and the real implementation (sfc-session.ts)
// stays free of UI code.

import { CancelledError, type Circuit, type ProgressEvent, type TopContext } from '@sfc/core';
import type { SteerOp, TopToken } from '@sfc/steering';

/** The prompt steering runs on; with answers the result has a metric. */
export interface PromptInput {
  readonly text: string;
  /** The expected next token (one token), e.g. " are". */
  readonly answer: string;
  /** The contrasting token, e.g. " is": the metric is then logit[patch] − logit[answer]. */
  readonly patchAnswer: string;
}

export const EMPTY_PROMPT: PromptInput = { text: '', answer: '', patchAnswer: '' };

export interface SteerRequest {
  readonly prompt: PromptInput;
  /** Circuit node ids to steer (features or SAE error nodes), in pick order. */
  readonly nodes: readonly string[];
  readonly op: SteerOp;
  /** How many next tokens to list on each side. */
  readonly topK: number;
  /** Tokens of continuation to generate on each side (0: none). */
  readonly generate: number;
}

export interface SteerSide {
  /** The metric at the last prompt position (when the prompt has answers). */
  readonly metric?: number;
  readonly top: readonly TopToken[];
  /** Greedy continuation of the prompt. */
  readonly continuation?: string;
}

export interface SteerResult {
  /** Name of the metric (e.g. logit_diff), when there is one. */
  readonly metricName?: string;
  readonly before: SteerSide;
  readonly after: SteerSide;
  /** KL(before ‖ after) of the next-token distributions, in nats. */
  readonly kl?: number;
  /** With a contrasting answer: whether the steered top-1 is it (docs/concepts.md, steering outcome). */
  readonly onTarget?: boolean;
  /** Mean log-prob per token of each continuation under the unsteered model (fluency), in nats. */
  readonly fluency?: { readonly before: number | null; readonly after: number | null };
}

/** Calibration on the prompt: the strength of smallest KL whose steered top-1 is the contrasting answer. */
export interface CalibrationResult {
  /** The strength found (reached), or the best measured one. */
  readonly strength: number;
  /** Some strength put the contrasting answer on top. */
  readonly reached: boolean;
  readonly kl: number;
  /** How many strengths were scored. */
  readonly tried: number;
}

export interface DiscoveryOutcome {
  readonly circuit: Circuit;
  /** Where the circuit was written, when it was. */
  readonly path?: string;
}

/** What a running operation may use: cancellation, and one-line status messages for the footer. */
export interface RunContext {
  readonly signal: AbortSignal;
  readonly onStatus: (message: string) => void;
}

/** A feature's top contexts, largest activation first, or a one-line reason there are none. */
export type TopContextsView = { readonly contexts: readonly TopContext[] } | { readonly none: string };

export interface TuiSession {
  /** One line on what is loaded (model, backend, dictionaries), for the header. */
  readonly description: string;
  /** Why steering or discovery cannot run in this session; undefined when they can. */
  readonly unavailable: { readonly steer?: string; readonly discover?: string };
  loadCircuit(path: string, context: RunContext): Promise<Circuit>;
  /** The prompt to start with (a flag, or the first example of the data file). */
  defaultPrompt(): Promise<PromptInput>;
  steer(request: SteerRequest, context: RunContext): Promise<SteerResult>;
  /** Searches the strength of request.op (scale, clamp or add) on the prompt; needs a contrasting answer. */
  calibrate(request: SteerRequest, context: RunContext): Promise<CalibrationResult>;
  discover(context: RunContext & { readonly onProgress: (event: ProgressEvent) => void }): Promise<DiscoveryOutcome>;
  /** The feature's top-activating contexts (`sfc dict top`), or why there are none; optional. */
  topContexts?(submodule: string, feature: number): Promise<TopContextsView>;
  /** Tells the session which circuit the UI shows (steering checks it against the dictionaries). */
  setCircuit(circuit: Circuit): void;
  close(): Promise<void>;
}

/**
 * Thrown (or rejected with) when a RunContext's signal aborts the work: core's typed error, the
 * one discover throws when the signal reaches it, so the UI tells a cancel from a failure by one test.
 */
export { CancelledError };

/** Throws CancelledError naming `operation` when the signal has aborted. */
export function throwIfAborted(signal: AbortSignal, operation: string): void {
  if (signal.aborted) throw new CancelledError(operation, { cause: signal.reason });
}
