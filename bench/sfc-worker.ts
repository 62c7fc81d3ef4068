// One sfc backend on one workload, in its own process (bench/run.ts starts one per backend so
// peak memory does not mix): loads the model and SAEs once, then times each stage `runs` times
// through the public API (Model, attribute, discover, evaluate) and writes a SideResult as JSON.
//
//   npx tsx --conditions=@sfc/source bench/sfc-worker.ts --backend tfjs-wasm --scale small --out /tmp/r.json

import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  attribute, batchExamples, batchNodeEffects, discover, evaluate, loadExamples, logitDiff, Model, prepareBatch, resolveDictionaries, tidySync, topActivations, topContextsFiles,
  type AttributionResult, type Backend, type Dictionary, type Edit, type NodeEffects, type PromptBatch, type Tensor,
} from '@sfc/core';
import { loadDictionarySet } from '@sfc/dictionaries';
import { peakMiB, parseStages, resetPeak, rssMiB, type SideResult, type StageId, type StageResult } from './measure.js';
import { CACHE_DIR, EMBEDDING_ON_DISK, EVAL_THRESHOLDS, exactSubmodule, FAST_RUNS, FAST_SECONDS, IG_STEPS, NODE_THRESHOLD, scaleByName, type Scale } from './scales.js';
import { findWorkload } from './workload.js';

/** The backends the harness can ask for, by the name the table shows. */
export const SFC_BACKENDS = ['tfjs-wasm', 'tfjs-cpu', 'tfjs-tensorflow', 'onnx'] as const;

/** The backend, or the reason it cannot run here (a missing export is "not available", never faked). */
export async function makeBackend(name: string, scale?: Scale): Promise<Backend | string> {
  if (name.startsWith('tfjs-')) {
    const mod: Record<string, unknown> = await import('@sfc/backend-tfjs');
    if (typeof mod.tfjsBackend !== 'function') return '@sfc/backend-tfjs exports no tfjsBackend';
    const flavor = name.slice('tfjs-'.length) as 'wasm' | 'cpu' | 'tensorflow';
    return (mod.tfjsBackend as (o: { flavor: string }) => Promise<Backend>)({ flavor });
  }
  if (name === 'onnx') {
    let mod: Record<string, unknown>;
    try { mod = await import('@sfc/backend-onnx'); } catch (e) { return `@sfc/backend-onnx does not load: ${(e as Error).message.split('\n')[0]}`; }
    if (typeof mod.onnxBackend !== 'function') return '@sfc/backend-onnx exports no onnxBackend yet';
    return (mod.onnxBackend as (o: Record<string, unknown>) => Promise<Backend>)({
      intraOpNumThreads: 2, cacheDir: join(CACHE_DIR, 'onnx-graphs'), ...(scale && EMBEDDING_ON_DISK.has(scale.name) ? { embeddingOnDisk: true } : {}),
    });
  }
  return `unknown backend '${name}' (known: ${SFC_BACKENDS.join(', ')})`;
}

interface Env {
  readonly scale: Scale;
  readonly model: Model;
  readonly dicts: Map<string, Dictionary>;
  readonly batches: PromptBatch[];
  /** Node effects from the last ig (or attrib) run, for eval. */
  effects?: ReadonlyMap<string, NodeEffects>;
}

interface StageOutput {
  readonly check?: Record<string, number>;
  readonly detail?: Record<string, number | string>;
  /** The wall and CPU time to report when it is not the whole call (edges: discovery minus its IG). */
  readonly seconds?: number;
  readonly cpuSeconds?: number;
}

type Stage = (env: Env) => Promise<StageOutput>;

/** Σ |features| + |error| over every submodule's aggregated effects. */
function effectMass(res: AttributionResult): Record<string, number> {
  let mass = 0;
  for (const e of res.effects.values()) {
    for (const v of e.features) mass += Math.abs(v);
    for (const v of e.error) mass += Math.abs(v);
  }
  return { effectMass: mass, metricClean: res.metricClean, totalEffect: res.totalEffect ?? 0 };
}

/** Mean over examples of logit[last, patch answer] − logit[last, clean answer] from full logits [B, S, V]. */
async function logitDiffFromFull(logits: Tensor, batch: PromptBatch): Promise<number> {
  const [B, S, V] = logits.shape as [number, number, number];
  const v = await logits.data();
  let sum = 0;
  for (let b = 0; b < B; b++) {
    const row = (b * S + S - 1) * V;
    sum += v[row + batch.patchAnswer![b]!]! - v[row + batch.cleanAnswer[b]!]!;
  }
  return sum / B;
}

const STAGE_FNS: Partial<Record<StageId, Stage>> = {
  async forward({ model, batches }) {
    const b = batches[0]!;
    const run = await model.forward(model.tokens(b.clean, b.size, b.seq));
    return { check: { metricClean: await logitDiffFromFull(run.logits!, b) } };
  },

  async 'sae-forward'({ model, dicts, batches }) {
    const ops = model.ops;
    const b = batches[0]!;
    // The reference's splice: x := dec(enc(x)) + (x − dec(enc(x))), intermediates freed at once.
    const edits = new Map<string, Edit>([...dicts].map(([name, dict]) => [name, (x: Tensor) => tidySync((t) => {
      const xHat = t(dict.decode(t(dict.encode(x))));
      return ops.add(xHat, t(ops.sub(x, xHat)));
    }, [x])]));
    const run = await model.forward(model.tokens(b.clean, b.size, b.seq), { edits });
    return { check: { metricClean: await logitDiffFromFull(run.logits!, b) } };
  },

  async attrib(env) {
    const res = await attribute(env.model, env.dicts, env.batches, { method: { kind: 'attrib' }, submodules: [...env.dicts.keys()] });
    env.effects ??= res.effects;
    return { check: effectMass(res) };
  },

  async ig(env) {
    const res = await attribute(env.model, env.dicts, env.batches, { method: { kind: 'ig', steps: IG_STEPS }, submodules: [...env.dicts.keys()] });
    env.effects = res.effects;
    return { check: effectMass(res) };
  },

  async exact({ scale, model, dicts, batches }) {
    const ops = model.ops;
    const [sub] = resolveDictionaries(model, dicts, [exactSubmodule(scale)]);
    const F = sub!.dict.dSae;
    const batch = batches[0]!;
    const ctx = await prepareBatch(model, [sub!], batch, logitDiff().bind(ops, batch));
    // Only Δf of the fixed feature subset is patched (the rest of Δf is zeroed); every error node is.
    const keep = new Float32Array(F);
    keep.fill(1, 0, scale.exactFeatures);
    const delta = ctx.delta.get(sub!.name)!;
    const act = ops.mul(delta.act, ops.tensor(keep, [F]));
    const df = await act.data();
    let patched = 0;
    for (const v of df) if (v !== 0) patched++;
    const eff = await batchNodeEffects(model, { ...ctx, delta: new Map([[sub!.name, { act, res: delta.res }]]) }, sub!, { kind: 'exact' });
    const a = await eff.act.data(), r = await eff.res.data();
    let mass = 0;
    for (const v of a) mass += Math.abs(v);
    for (const v of r) mass += Math.abs(v);
    return { check: { effectMass: mass / batch.size, featurePatches: patched }, detail: { submodule: sub!.name, featurePatches: patched, errorPatches: batch.size * batch.seq } };
  },

  async edges(env) {
    let igDone = 0, igCpu = process.cpuUsage();
    const subs = env.dicts.size;
    const t0 = performance.now();
    const res = await discover(env.model, env.dicts, env.batches, {
      nodeThreshold: NODE_THRESHOLD, steps: IG_STEPS, submodules: [...env.dicts.keys()],
      onProgress: (e) => { if (e.stage === 'submodules' && e.done === subs) { igDone = performance.now(); igCpu = process.cpuUsage(); } },
    });
    const end = performance.now();
    const cpu = process.cpuUsage(igCpu);
    env.effects = res.effects;
    let mass = 0, entries = 0;
    for (const e of res.edges) {
      if (e.downstream === 'y') continue;
      entries += e.weight.length;
      for (const w of e.weight) mass += Math.abs(w);
    }
    const nodes = [...res.downstreamNodes.values()].reduce((a, b) => a + b, 0);
    return {
      check: { downstreamNodes: nodes, edgeMass: mass },
      detail: { igSeconds: (igDone - t0) / 1000, discoverSeconds: (end - t0) / 1000, downstreamNodes: nodes, edgeEntries: entries, pairs: res.edges.length - 1 },
      seconds: (end - igDone) / 1000,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    };
  },

  'dict-top': dictTop,

  async eval(env) {
    if (!env.effects) {
      env.effects = (await attribute(env.model, env.dicts, env.batches, { method: { kind: 'attrib' }, submodules: [...env.dicts.keys()] })).effects;
    }
    const res = await evaluate(env.model, env.dicts, env.batches, { effects: env.effects, thresholds: EVAL_THRESHOLDS, ablation: { kind: 'mean' } });
    const row = res.rows[0]!;
    return { check: { mFull: row.mFull, mEmpty: row.mEmpty }, detail: { nodes: row.nodes, faithfulness: row.faithfulness ?? 'n/a', completeness: row.completeness ?? 'n/a' } };
  },
};

/**
 * `sfc dict top`'s work for a 50-feature circuit over 1 MB of text: tokenizing, topActivations
 * (k 10, rows of 64 tokens, 32 rows per forward) and building the context files. The corpus is
 * the workload's vocabulary in a fixed pseudo-random order; the features are 5 of each of 10
 * submodules spread from embed to the last residual (so the whole model runs).
 */
async function dictTop(env: Env): Promise<StageOutput> {
  const { model, dicts } = env;
  const vocab = Object.keys((JSON.parse(readFileSync(join(model.dir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab)
    .filter((w) => /^[A-Za-z]+$/.test(w));
  const words: string[] = [];
  let chars = 0;
  for (let i = 0, x = 12345; chars < 1_000_000; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const w = vocab[x % vocab.length]!;
    words.push(w);
    chars += w.length + 1;
  }
  const lines = Array.from({ length: Math.ceil(words.length / 20) }, (_, i) => words.slice(i * 20, i * 20 + 20).join(' '));
  const all = model.submodules.map((x) => x.name).filter((n) => dicts.has(n));
  const subs = [...new Set(Array.from({ length: 10 }, (_, i) => all[Math.round((i * (all.length - 1)) / 9)]!))];
  const per = Math.ceil(50 / subs.length);
  const features = new Map(subs.map((s, i) => [s, Int32Array.from({ length: per }, (_, j) => ((i * per + j) * 7919) % dicts.get(s)!.dSae)]));
  const ids: number[] = [];
  for (const line of lines) for (const id of model.tokenizer.encode(`${line}\n`)) ids.push(id);
  const tokens = Int32Array.from(ids);
  const res = await topActivations(model, dicts, tokens, { features, k: 10, seqLen: 64, batchSize: 32 });
  const meta = { sae: { path: '', hash: '' }, model: {}, corpus: { path: '', hash: '', tokens: tokens.length }, k: 10, before: 12, after: 4 };
  const files = topContextsFiles(res, tokens, (ids) => model.tokenizer.decode(ids), () => meta);
  let top = 0;
  for (const f of files) for (const list of Object.values(f.features)) top += list[0]?.value ?? 0;
  return { check: { topSum: top }, detail: { characters: chars, tokens: tokens.length, features: 50 } };
}

/** Runs the stages; a failing stage is recorded and the others still run. */
export async function runSfc(backendName: string, scale: Scale, examples: number, runs: number, stages: readonly StageId[],
  log: (line: string) => void): Promise<SideResult> {
  const w = findWorkload(scale);
  if (!w) throw new Error(`no workload for scale ${scale.name}; run bench/run.ts (it generates one)`);
  const t0 = performance.now();
  const backend = await makeBackend(backendName, scale);
  if (typeof backend === 'string') return { name: backendName, available: false, reason: backend, stages: {} };
  let peak = 0;
  const malloc = process.env.MALLOC_MMAP_THRESHOLD_ !== undefined ? `; glibc MALLOC_MMAP_THRESHOLD_=${process.env.MALLOC_MMAP_THRESHOLD_}` : '';
  const out: SideResult = { name: backendName, available: true, describe: backend.describe() + malloc, stages: {} };
  try {
    const model = await Model.load(w.modelDir, backend);
    // gemma2 scales have SAEs on the resid_l only (the other submodules are not spliced).
    const only = w.manifest.saes.submodules;
    const dicts = await loadDictionarySet(w.saeDir, model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel, only });
    const sel = await loadExamples(w.dataFile, model.tokenizer, { numExamples: examples, seed: null, minLengthOnly: false });
    if (sel.examples.length !== examples) throw new Error(`the workload has ${sel.examples.length} usable pairs, ${examples} asked for`);
    const env: Env = { scale, model, dicts, batches: batchExamples(sel.examples, examples) };
    Object.assign(out, { loadSeconds: (performance.now() - t0) / 1000, loadedRssMiB: rssMiB() });
    peak = peakMiB();
    log(`loaded in ${out.loadSeconds!.toFixed(1)} s, RSS ${out.loadedRssMiB!.toFixed(0)} MiB (${out.describe})`);
    // One untimed attribution first, as on the PyTorch side: it creates every forward and VJP
    // graph session (a one-time cost of the first calls, like PyTorch's first-call allocations).
    // PyTorch's attribution runs full-vocabulary forwards; sfc's selects logits, so one untimed
    // full-logits forward creates that unembedding's session too.
    const w0 = performance.now();
    await model.ops.scope(async () => { await STAGE_FNS.attrib!({ ...env }); await STAGE_FNS.forward!({ ...env }); });
    log(`warm-up (one untimed attrib and forward): ${((performance.now() - w0) / 1000).toFixed(1)} s`);
    for (const id of stages) {
      const fn = STAGE_FNS[id];
      if (!fn) continue;
      const r: { seconds: number[]; cpuSeconds: number[]; peakRssMiB?: number[]; check?: Record<string, number>; detail?: Record<string, number | string>; error?: string } = { seconds: [], cpuSeconds: [] };
      for (let i = 0; i < runs || (i < FAST_RUNS && !r.error && Math.max(...r.seconds) < FAST_SECONDS); i++) {
        const canReset = resetPeak();
        const t = performance.now();
        const cpu = process.cpuUsage();
        try {
          const got = await model.ops.scope(async () => {
            const v = await fn(env);
            return JSON.stringify(v); // keep tensors out of the scope's result
          });
          const v = JSON.parse(got) as StageOutput;
          const used = process.cpuUsage(cpu);
          r.seconds.push(v.seconds ?? (performance.now() - t) / 1000);
          r.cpuSeconds.push(v.cpuSeconds ?? (used.user + used.system) / 1e6);
          r.check = v.check;
          r.detail = v.detail;
        } catch (e) {
          r.error = `${(e as Error).name}: ${(e as Error).message.split('\n')[0]}`;
          log(`${id} run ${i + 1}: FAILED ${r.error}`);
          break;
        } finally {
          const p = peakMiB();
          peak = Math.max(peak, p);
          if (canReset) (r.peakRssMiB ??= []).push(p);
        }
        log(`${id} run ${i + 1}/${Math.max(runs, r.seconds.length)}: ${r.seconds[r.seconds.length - 1]!.toFixed(2)} s (CPU ${r.cpuSeconds[r.cpuSeconds.length - 1]!.toFixed(2)} s)${r.peakRssMiB ? `, peak RSS ${r.peakRssMiB[r.peakRssMiB.length - 1]!.toFixed(0)} MiB` : ''}`);
      }
      (out.stages as Record<string, StageResult>)[id] = r;
    }
    for (const d of dicts.values()) d.dispose();
    model.dispose();
  } catch (e) {
    Object.assign(out, { reason: `${(e as Error).name}: ${(e as Error).message.split('\n')[0]}` });
    log(`FAILED: ${out.reason}`);
  } finally {
    await backend.dispose();
  }
  return { ...out, peakRssMiB: Math.max(peak, peakMiB()) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string' }, scale: { type: 'string', default: 'small' }, examples: { type: 'string' },
      runs: { type: 'string', default: '3' }, stages: { type: 'string', default: 'forward,sae-forward,attrib,ig,exact,edges,eval' },
      out: { type: 'string' },
    },
  });
  const scale = scaleByName(values.scale!);
  const name = values.backend ?? 'tfjs-wasm';
  const res = await runSfc(name, scale, Number(values.examples ?? scale.examples), Number(values.runs), parseStages(values.stages!),
    (l) => console.error(`[${name}] ${l}`));
  const json = `${JSON.stringify(res, null, 2)}\n`;
  if (values.out) {
    writeFileSync(`${values.out}.tmp`, json);
    renameSync(`${values.out}.tmp`, values.out);
  } else {
    process.stdout.write(json);
  }
  // onnxruntime and tfjs-wasm may keep worker threads alive; the result is written.
  process.exit(0);
}
