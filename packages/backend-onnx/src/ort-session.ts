// onnxruntime sessions: creation with sfc's settings, runs, and the translation of ORT failures
// into BackendError naming what sfc was doing (segment and op) instead of ORT's node ids.

import { BackendError } from '@sfc/core';
import * as ort from 'onnxruntime-node';

export interface SessionSettings {
  readonly intraOpNumThreads: number;
  readonly executionProviders: readonly string[];
  readonly graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
}

export type Feeds = Record<string, ort.Tensor>;

/** An ORT tensor over `data` (no copy); float16 data are the fp16 words. */
export function ortTensor(dtype: 'float32' | 'float16' | 'int32' | 'int64' | 'bool', data: Float32Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array, shape: readonly number[]): ort.Tensor {
  return new ort.Tensor(dtype, data as Float32Array, [...shape]);
}

/** Turns a graph node name `<segment>:<op label>:<ONNX op>:<n>` into `segment 'attn_0', op 'qkv' (MatMul)`. */
export function describeNode(nodeName: string): { scope: string; label: string; onnxOp: string } | undefined {
  const parts = nodeName.split(':');
  if (parts.length < 4) return undefined;
  return { scope: parts[0]!, label: parts.slice(1, -2).join(':'), onnxOp: parts[parts.length - 2]! };
}

/** The node name that an ORT error message mentions, if any. */
export function failingNode(message: string): string | undefined {
  return /Name:'([^']+)'/.exec(message)?.[1];
}

/**
 * A BackendError for an ORT failure in `what` (e.g. "segment 'attn_0' forward"), naming the op
 * when ORT says which node failed.
 */
export function backendError(what: string, e: unknown, nameOp?: (node: string) => string | undefined): BackendError {
  const msg = e instanceof Error ? e.message : String(e);
  const node = failingNode(msg);
  let where = '';
  if (node) {
    const custom = nameOp?.(node);
    const parsed = describeNode(node);
    where = custom ? `, op ${custom}` : parsed ? `, op '${parsed.label}' (ONNX ${parsed.onnxOp})` : `, node ${node}`;
  }
  return new BackendError(`onnxruntime failed in ${what}${where}: ${msg.split('\n')[0]}`,
    'check the inputs (token ids, column ids, shapes); if they are valid, report this with the model config', { cause: e });
}

/**
 * ORT session options for sfc's settings. Every session owns an intra-op thread pool; by default
 * its threads spin after each run, so when runs hop between a model's many sessions (one per
 * segment) the idle pools steal the cores from the busy one: measured 17 ms per MLP run round-robin
 * over 6 sessions with spinning, 2.7 ms without. So spinning is off, and so are the CPU arenas.
 */
export function sessionOptions(s: SessionSettings, extra: Partial<ort.InferenceSession.SessionOptions> = {}): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: s.intraOpNumThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: s.graphOptimizationLevel,
    executionProviders: [...s.executionProviders],
    logSeverityLevel: 3,
    // Per-session arenas keep their high-water mark for the session's life; with a session per
    // segment plus cached lazy-op sessions that cost 0.9–1.5 GiB of peak RSS at Pythia-70m scale
    // for no measured speed gain (docs/performance.md).
    enableCpuMemArena: false,
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    ...extra,
  };
}

export async function createSession(bytes: Uint8Array, s: SessionSettings, what: string): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, sessionOptions(s));
  } catch (e) {
    throw backendError(`building the graph for ${what}`, e);
  }
}

export async function runSession(session: ort.InferenceSession, feeds: Feeds, what: string,
  nameOp?: (node: string) => string | undefined): Promise<ort.InferenceSession.ReturnType> {
  try {
    return await session.run(feeds);
  } catch (e) {
    throw backendError(what, e, nameOp);
  }
}

export { ort };
