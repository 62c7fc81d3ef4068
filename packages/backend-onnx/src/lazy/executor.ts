// Materializes pending DAG nodes: every request made in the same tick (and while a run is in
// flight) is compiled together into ONE ONNX graph and run once. Graphs are cached by structure
// (ops, attributes, ranks and dtypes — not sizes, scalars or shapes, which are graph inputs), so a
// loop that repeats the same math on new data or new batch sizes reuses one session.
// Output policy: the requested nodes plus every node of the graph that still has a live handle,
// so nothing the caller can still read is computed twice — the memory an eager backend would use.

import type * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../onnx-graph.js';
import { createSession, ortTensor, runSession, type SessionSettings } from '../ort-session.js';
import { EMITTERS } from './emit.js';
import type { LazyNode, NodeFeed, Values } from './node.js';

/** Sessions kept for lazy graphs (least recently used ones are released beyond this). */
const MAX_SESSIONS = 128;

/**
 * Ops worth a multi-threaded session. Each session owns its own intra-op thread pool, so graphs
 * of cheap element-wise work run single-threaded and do not add threads to the process.
 */
const HEAVY = new Set(['matMul', 'matMulTransposed', 'sum', 'mean', 'max', 'topk', 'logSoftmax']);

export interface ExecutorStats {
  /** session.run calls made for lazy graphs. */
  runs: number;
  /** Sessions compiled (cache misses). */
  compiled: number;
  /** Sessions currently cached. */
  cached: number;
}

interface Compiled {
  readonly session: ort.InferenceSession;
  /** Graph node name → the TensorOps op it came from (for error messages). */
  readonly opOfNode: (node: string) => string | undefined;
}

interface Plan {
  readonly key: string;
  readonly nodes: readonly LazyNode[];
  readonly leaves: readonly LazyNode[];
  readonly outputs: readonly LazyNode[];
}

function feedTensor(f: NodeFeed): ort.Tensor {
  switch (f.elem) {
    case 'float32': return ortTensor('float32', Float32Array.from(f.data), f.dims);
    case 'int32': return ortTensor('int32', Int32Array.from(f.data), f.dims);
    case 'int64': return ortTensor('int64', BigInt64Array.from(f.data.map((x) => BigInt(x))), f.dims);
  }
}

/**
 * A cached session and its node → op names. Built outside `compile`, so that the cached closure
 * does not hold compile's scope: that scope's plan reaches the first run's input values, which a
 * cached session kept alive for its life (~0.1 GiB at Gemma-2-2B size).
 */
function compiledOf(session: ort.InferenceSession, opOf: ReadonlyMap<string, string>): Compiled {
  return {
    session,
    opOfNode: (node: string) => {
      const op = opOf.get(node.split(':')[0]!);
      return op ? `'${op}'` : undefined;
    },
  };
}

export class LazyExecutor {
  private readonly sessions = new Map<string, Promise<Compiled>>();
  private readonly requested = new Set<LazyNode>();
  private pending: Promise<void> | undefined;
  private tail: Promise<void> = Promise.resolve();
  readonly stats: ExecutorStats = { runs: 0, compiled: 0, cached: 0 };

  constructor(private readonly settings: SessionSettings) {}

  /**
   * Resolves when every node has its values (one combined run for all requests of this tick);
   * rejects with the failure of the first node that could not be computed.
   */
  async materialize(nodes: readonly LazyNode[]): Promise<void> {
    let any = false;
    for (const n of nodes) if (!n.concrete) { this.requested.add(n); n.failure = undefined; any = true; }
    if (!any) return;
    if (!this.pending) {
      const flush = this.tail.then(() => {
        this.pending = undefined;
        const req = [...this.requested].filter((n) => !n.concrete);
        this.requested.clear();
        return req.length ? this.runIsolatingFailures(req) : undefined;
      });
      this.pending = flush;
      this.tail = flush;
    }
    await this.pending;
    for (const n of nodes) if (!n.concrete) throw n.failure ?? new Error('internal: a tensor was not computed');
  }

  /** One run for all; if it fails, each request alone, so only the tensors at fault fail. */
  private async runIsolatingFailures(req: readonly LazyNode[]): Promise<void> {
    try {
      await this.run(req);
      return;
    } catch (e) {
      if (req.length === 1) { req[0]!.failure = e; return; }
    }
    for (const n of req) {
      if (n.concrete) continue;
      try { await this.run([n]); } catch (e) { n.failure = e; }
    }
  }

  private plan(requested: readonly LazyNode[]): Plan {
    const inGraph = new Set<LazyNode>();
    const leafSet = new Set<LazyNode>();
    const stack = [...requested];
    while (stack.length) {
      const n = stack.pop()!;
      if (inGraph.has(n) || leafSet.has(n)) continue;
      if (n.concrete) { leafSet.add(n); continue; }
      inGraph.add(n);
      for (const i of n.inputs) stack.push(i);
    }
    const nodes = [...inGraph].sort((a, b) => a.id - b.id);
    const req = new Set(requested);
    const outputs = nodes.filter((n) => !n.internal && (req.has(n) || n.handles > 0));
    const index = new Map<LazyNode, string>();
    const leaves: LazyNode[] = [];
    const ref = (n: LazyNode): string => {
      let r = index.get(n);
      if (r === undefined) { r = `L${leaves.length}`; leaves.push(n); index.set(n, r); }
      return r;
    };
    const parts: string[] = [];
    nodes.forEach((n, i) => {
      const ins = n.inputs.map(ref).join(',');
      index.set(n, `N${i}`);
      const feeds = n.feeds.map((f) => `${f.elem}${f.dims.join('x')}`).join(',');
      parts.push(`${n.op}${JSON.stringify(n.attrs)}(${ins})[${feeds}]${n.dtype}r${n.shape.length}`);
    });
    const leafSig = leaves.map((l) => `${l.dtype}r${l.shape.length}`).join(',');
    const outSig = outputs.map((o) => index.get(o)).join(',');
    return { key: `${leafSig}|${parts.join(';')}|${outSig}`, nodes, leaves, outputs };
  }

  private compile(plan: Plan): Promise<Compiled> {
    let c = this.sessions.get(plan.key);
    if (c) {
      // Refresh LRU position.
      this.sessions.delete(plan.key);
      this.sessions.set(plan.key, c);
      return c;
    }
    const g = new GraphBuilder('lazy');
    const names = new Map<LazyNode, string[]>();
    const opOf = new Map<string, string>();
    plan.leaves.forEach((l, i) => names.set(l, [g.input(`in${i}`, l.dtype, l.shape.map((_, k) => `in${i}_${k}`))]));
    plan.nodes.forEach((n, i) => {
      const scope = `lazy${i}`;
      opOf.set(scope, n.op);
      const feeds = n.feeds.map((f, j) => g.input(`f${i}_${j}`, f.elem, f.dims));
      if (n.op === 'select') {
        names.set(n, [names.get(n.inputs[0]!)![n.attrs.index as number]!]);
        return;
      }
      const emit = EMITTERS[n.op];
      if (!emit) throw new Error(`internal: no ONNX lowering for op '${n.op}'`);
      const ins = n.inputs.map((x) => names.get(x)![0]!);
      names.set(n, g.within(`${scope}:${n.op}`, () => emit(g, ins, n, feeds, n.inputs)));
    });
    plan.outputs.forEach((o, k) => g.output(names.get(o)![0]!, `out${k}`, o.dtype, o.shape.map((_, j) => `out${k}_${j}`)));
    const ops = [...new Set(plan.nodes.map((n) => n.op))].join(', ');
    const threads = plan.nodes.some((n) => HEAVY.has(n.op)) ? this.settings.intraOpNumThreads : 1;
    c = createSession(g.encode(), { ...this.settings, intraOpNumThreads: threads }, `tensor ops (${ops})`).then((session) => compiledOf(session, opOf));
    this.stats.compiled++;
    this.sessions.set(plan.key, c);
    c.catch(() => this.sessions.delete(plan.key));
    while (this.sessions.size > MAX_SESSIONS) {
      const [oldKey, old] = this.sessions.entries().next().value as [string, Promise<Compiled>];
      this.sessions.delete(oldKey);
      void old.then((x) => x.session.release()).catch(() => undefined);
    }
    this.stats.cached = this.sessions.size;
    return c;
  }

  private async run(requested: readonly LazyNode[]): Promise<void> {
    const plan = this.plan(requested);
    const compiled = await this.compile(plan);
    const feeds: Record<string, ort.Tensor> = {};
    plan.leaves.forEach((l, i) => { feeds[`in${i}`] = ortTensor(l.dtype, l.value!, l.shape); });
    plan.nodes.forEach((n, i) => n.feeds.forEach((f, j) => { feeds[`f${i}_${j}`] = feedTensor(f); }));
    this.stats.runs++;
    const ops = [...new Set(plan.nodes.map((n) => n.op))].join(', ');
    const out = await runSession(compiled.session, feeds, `tensor ops (${ops})`, compiled.opOfNode);
    plan.outputs.forEach((o, k) => {
      const t = out[`out${k}`]!;
      const dims = t.dims;
      if (dims.length !== o.shape.length || dims.some((d, j) => d !== o.shape[j])) {
        throw new Error(`internal: op ${o.op} produced shape [${dims.join(', ')}], expected [${o.shape.join(', ')}]`);
      }
      o.resolve(t.data as Values);
    });
  }

  dispose(): void {
    for (const c of this.sessions.values()) void c.then((x) => x.session.release()).catch(() => undefined);
    this.sessions.clear();
    this.stats.cached = 0;
  }
}
