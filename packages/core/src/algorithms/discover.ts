// Circuit discovery (feature-circuits' get_circuit): IG node effects for every submodule, then
// edges between adjacent submodules from the downstream nodes whose per-example, per-position IG
// effect exceeds the node threshold. Everything is averaged over examples (batches weighted by
// size); thresholds for the circuit itself are applied later (circuit/circuit.ts).

import { InputError } from '../errors.js';
import type { Model } from '../model/model.js';
import { countPrompts, type PromptBatch } from '../data/batches.js';
import type { Tensor } from '../tensor.js';
import {
  attribGradients, DEFAULT_IG_STEPS, DEFAULT_MAX_ROWS, EffectAccumulator, forEachBatch, gradientEffect, igGradient, sameLength,
  type Aggregation, type AttributionResult,
} from './attribution.js';
import { cancelCheck } from './cancel.js';
import {
  accumulatePairEdges, EdgeAccumulator, edgePairs, metricEdges, selectDownstreamNodes, upstreamDelta, type DownstreamNodes, type EdgeSet, type UpstreamDelta,
} from './edges.js';
import type { Metric } from './metrics.js';
import type { ProgressCallback } from './progress.js';
import { checkBatches, checkGrad, requirePositiveInt, resolveDictionaries, type DictionarySet } from './setup.js';

export const DEFAULT_NODE_THRESHOLD = 0.1;
export const DEFAULT_EDGE_THRESHOLD = 0.01;

export interface DiscoverOptions {
  /** Selects the downstream nodes whose edges are computed (per example and position); default 0.1. */
  readonly nodeThreshold?: number;
  readonly aggregation?: Aggregation;
  /** IG steps; default 10. */
  readonly steps?: number;
  /** Skip edges. */
  readonly nodesOnly?: boolean;
  /**
   * Submodules with dictionaries to use (default: all). Edges exist only between listed
   * submodules, e.g. without `embed` layer 0 has no incoming edges (the reference's include_embed=False).
   */
  readonly submodules?: readonly string[];
  readonly metric?: Metric;
  /** Most rows in one batched forward or segment VJP; default 256. */
  readonly maxRows?: number;
  readonly onProgress?: ProgressCallback;
  /**
   * Aborting stops the run at the next unit of work (a batch, a chunk of IG steps, a submodule, an
   * edge pair or chunk) with CancelledError; every tensor the run made is disposed.
   */
  readonly signal?: AbortSignal;
}

export interface DiscoveryResult extends AttributionResult {
  readonly nodeThreshold: number;
  readonly nodesOnly: boolean;
  /** One set per edge pair (upstream → downstream), plus `resid_last → y`. */
  readonly edges: readonly EdgeSet[];
  /** Per submodule, how many per-example (b, s, index) nodes exceeded the node threshold (the edge rows). */
  readonly downstreamNodes: ReadonlyMap<string, number>;
}

export async function discover(model: Model, dictionaries: DictionarySet, batches: readonly PromptBatch[], options: DiscoverOptions = {}): Promise<DiscoveryResult> {
  const ops = model.ops;
  const aggregation = options.aggregation ?? 'sum';
  if (aggregation !== 'sum' && aggregation !== 'none') throw new InputError(`unknown aggregation ${JSON.stringify(aggregation)}`, 'use sum or none');
  const steps = options.steps ?? DEFAULT_IG_STEPS;
  requirePositiveInt(steps, 'IG steps', 'pass --steps N with N ≥ 1 (the reference uses 10)');
  const maxRows = options.maxRows ?? DEFAULT_MAX_ROWS;
  requirePositiveInt(maxRows, 'maxRows');
  const nodeThreshold = options.nodeThreshold ?? DEFAULT_NODE_THRESHOLD;
  if (!(Number.isFinite(nodeThreshold) && nodeThreshold >= 0)) throw new InputError(`node threshold must be a number ≥ 0, got ${nodeThreshold}`);
  const nodesOnly = options.nodesOnly ?? false;
  checkGrad(model, 'circuit discovery (integrated gradients and edges)');
  const subs = resolveDictionaries(model, dictionaries, options.submodules);
  checkBatches(batches, { aggregation, metric: options.metric });
  const N = countPrompts(batches);
  const seqLen = sameLength(batches);
  const positions = aggregation === 'none' ? seqLen : null;
  const byName = new Map(subs.map((s) => [s.name, s]));
  const pairs = nodesOnly ? [] : edgePairs(model, subs.map((s) => s.name));
  const upstreamNames = new Set(pairs.map((p) => p.upstream));
  const nodeAcc = new Map(subs.map((s) => [s.name, new EffectAccumulator(s.name, s.dict.dSae, positions)]));
  const edgeAcc = pairs.map((p) => new EdgeAccumulator(p.upstream, p.downstream, positions, byName.get(p.downstream)!.dict.dSae + 1, byName.get(p.upstream)!.dict.dSae + 1));
  const downstreamCounts = new Map(subs.map((s) => [s.name, 0]));
  const progress = options.onProgress;
  const cancel = cancelCheck(options.signal, 'discover');
  const summary = await forEachBatch(model, subs, batches, { ...options, cancel }, async (ctx) => {
    const grads = new Map<string, Tensor>();
    const nodes = new Map<string, DownstreamNodes>();
    const clean = await attribGradients(model, ctx, subs); // IG's α = 0 step of every submodule, one backward
    const upstream = new Map<string, UpstreamDelta>();
    for (const [i, s] of subs.entries()) {
      await cancel();
      const g = await igGradient(model, ctx, s, steps, maxRows, cancel, clean.get(s.name));
      grads.set(s.name, g);
      await ops.scope(async () => {
        const effect = await gradientEffect(ops, ctx, s, g);
        await nodeAcc.get(s.name)!.add(ops, effect);
        const sel = await selectDownstreamNodes(effect, nodeThreshold);
        nodes.set(s.name, sel);
        downstreamCounts.set(s.name, downstreamCounts.get(s.name)! + sel.k.length);
      });
      if (upstreamNames.has(s.name)) {
        // Its node effects are done: keep what edges need (Δf on each example's support, Δr), not
        // the dense Δf [B, S, F] (~10 MB per 32k-feature SAE at 80 tokens).
        const delta = ctx.delta.get(s.name)!;
        upstream.set(s.name, await upstreamDelta(ops, delta));
        delta.act.dispose();
      }
      progress?.({ stage: 'submodules', done: i + 1, total: subs.length, detail: s.name });
    }
    for (const [i, pair] of pairs.entries()) {
      await cancel();
      await accumulatePairEdges(model, {
        ctx, grads, down: byName.get(pair.downstream)!, up: byName.get(pair.upstream)!, nodes: nodes.get(pair.downstream)!,
        upstream: upstream.get(pair.upstream)!, aggregation, maxRows, cancel,
      }, edgeAcc[i]!);
      progress?.({ stage: 'edges', done: i + 1, total: pairs.length, detail: `${pair.upstream} → ${pair.downstream}` });
    }
  });

  const effects = new Map([...nodeAcc].map(([k, a]) => [k, a.result(N)]));
  const edges = edgeAcc.map((a) => a.result(N));
  if (!nodesOnly) {
    const last = subs[subs.length - 1]!;
    const e = effects.get(last.name)!;
    edges.unshift(metricEdges(last.name, last.dict.dSae, positions, e.features, e.error));
  }
  return {
    method: 'ig', steps, aggregation, numExamples: N, seqLen, submodules: subs.map((s) => s.name), effects,
    ...summary,
    nodeThreshold, nodesOnly, edges, downstreamNodes: downstreamCounts,
  };
}
