// A feature-circuits circuit of a Gemma 2 model, saved as the reference saves it (torch.save of
// SparseAct nodes and sparse edges; the --use_neurons variant with identity dictionaries, nodes
// only), converted and steered end to end on the matching model: the converted nodes are the
// reference's, the features picked are the reference's top three, and the metric before and
// after scaling them by 0 is the float64 PyTorch reference's (tools/refgen/make_fc_gemma_circuits.py).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type Dictionary } from '@sfc/core';
import { loadDictionarySet, readFcCircuitFile } from '@sfc/dictionaries';
import { featureId, interventionsFor, scale, score, selectCircuitFeatures, Steering, type ScoreBatch } from '@sfc/steering';
import { ALGORITHM_BACKENDS, type OpenBackend } from './backends.js';
import { MODELS, REPO_ROOT } from './paths.js';

const MODEL = join(MODELS, 'gemma2-a');
const CIRCUITS = join(REPO_ROOT, 'packages', 'dictionaries', 'test-data', 'formats', 'circuits');
const SAE_FILE = join(CIRCUITS, 'gemma2-a_agreement_n5_aggsum_node0.02084.pt');
const NEURON_FILE = join(CIRCUITS, 'gemma2-a_agreement_n5_aggsum_neurons_nodeall.pt');

interface SteerRef { features: string[]; effects: number[]; metric_after: number[] }
const REF = JSON.parse(readFileSync(join(CIRCUITS, 'gemma2-a_steer.json'), 'utf8')) as {
  metric_before: number[]; saes: SteerRef; neurons: SteerRef & { node_effects: Record<string, number[]> };
};
const IG = JSON.parse(readFileSync(join(MODEL, 'edges', 'ig_sum.json'), 'utf8')) as {
  submodules: string[]; node_threshold: number; nodes: Record<string, { act: number[]; err: number }>;
};
const DATA = JSON.parse(readFileSync(join(MODEL, 'edges', 'data.json'), 'utf8')) as {
  clean_ids: number[][]; patch_ids: number[][]; clean_answer: number[]; patch_answer: number[];
};

function batch(): ScoreBatch {
  const size = DATA.clean_ids.length, seq = DATA.clean_ids[0]!.length;
  return {
    size, seq, clean: Int32Array.from(DATA.clean_ids.flat()), patch: Int32Array.from(DATA.patch_ids.flat()),
    cleanAnswer: Int32Array.from(DATA.clean_answer), patchAnswer: Int32Array.from(DATA.patch_answer),
  };
}

describe('feature-circuits Gemma circuits convert', () => {
  it('the SAE circuit: every submodule but embed, the reference node effects, its top features', async () => {
    const { circuit, fileName } = await readFcCircuitFile(SAE_FILE);
    expect(fileName).toMatchObject({ numExamples: 5, aggregation: 'sum', nodeThreshold: IG.node_threshold });
    expect(circuit.submodules).toEqual(IG.submodules);
    for (const n of circuit.nodes) {
      if (n.index === null || n.effect === null) continue;
      const act = IG.nodes[n.submodule]!.act;
      const ref = n.index === act.length ? IG.nodes[n.submodule]!.err : act[n.index]!; // index F is the error node
      expect(Math.abs(n.effect - ref), `${n.submodule}/${n.index}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(ref)));
    }
    expect(selectCircuitFeatures(circuit, { topK: 3 }).map(featureId)).toEqual(REF.saes.features);
    expect(circuit.edges.length).toBeGreaterThan(0);
  });

  it('the neurons circuit (--use_neurons, --nodes_only): widths of the submodules (attn_l = heads × head_dim), no edges', async () => {
    const { circuit, fileName } = await readFcCircuitFile(NEURON_FILE);
    expect(fileName).toMatchObject({ neurons: true, nodesOnly: true, aggregation: 'sum' });
    expect(circuit.edges).toEqual([]);
    expect(selectCircuitFeatures(circuit, { topK: 3 }).map(featureId)).toEqual(REF.neurons.features);
    const widest = new Map<string, number>();
    for (const n of circuit.nodes) if (typeof n.index === 'number') widest.set(n.submodule, Math.max(widest.get(n.submodule) ?? 0, n.index + 1));
    expect(Math.max(...[0, 1, 2].map((l) => widest.get(`attn_${l}`) ?? 0))).toBeGreaterThan(32); // z is 48 wide; d_model is 32
  });
});

describe.each(ALGORITHM_BACKENDS)('steering a converted Gemma circuit on $name', (tb) => {
  let open: OpenBackend;
  let model: Model;
  const dicts: Map<string, Dictionary>[] = [];
  beforeAll(async () => {
    open = await tb.open();
    model = await Model.load(MODEL, open.backend);
  });
  afterAll(async () => {
    for (const d of dicts) for (const x of d.values()) x.dispose();
    model?.dispose();
    await open?.close();
  });

  const run = async (file: string, load: () => Promise<Map<string, Dictionary>>, ref: SteerRef) => {
    const { circuit } = await readFcCircuitFile(file);
    const set = await load();
    dicts.push(set);
    const features = selectCircuitFeatures(circuit, { topK: 3 });
    const steering = await Steering.create(model, set, interventionsFor(features, scale(0)));
    const res = await score(model, steering, [batch()]);
    res.prompts.forEach((p, b) => {
      expect(Math.abs(p.before.metric! - REF.metric_before[b]!), `before, prompt ${b}`).toBeLessThan(1e-4);
      expect(Math.abs(p.after.metric! - ref.metric_after[b]!), `after, prompt ${b}`).toBeLessThan(1e-4);
    });
    // The edit did something: the reference's steered metric differs from the unsteered one.
    expect(Math.max(...ref.metric_after.map((v, b) => Math.abs(v - REF.metric_before[b]!)))).toBeGreaterThan(0.05);
  };

  it('SAE features (the fixture\'s SAEs, feature-circuits folder names, attn_l on hook_z): scale 0 = the PyTorch reference', async () => {
    await run(SAE_FILE, () => loadDictionarySet(join(MODEL, 'edges', 'saes'), model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel }), REF.saes);
  });

  it('neurons (identity dictionaries of each submodule\'s width): scale 0 = the PyTorch reference', async () => {
    await run(NEURON_FILE, () => loadDictionarySet('', model.submodules, { ops: model.ops, dIn: model.spec.dims.dModel, loader: 'identity' }), REF.neurons);
  });
});
