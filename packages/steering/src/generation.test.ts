// Generation (through a KV cache on tfjs; kv-generation.test.ts compares it with recompute) is
// checked by teacher forcing: one forward over the final sequence (with the same edits) must
// predict every generated token, greedy or sampled with the same seed. Steering applies at
// generated positions too; seeds make runs repeatable.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, type Edit, type Model } from '@sfc/core';
import { parseFeatureId } from './feature-ref.js';
import { generate, generateSideBySide, type Generation } from './generation.js';
import { clamp, interventionsFor, parsePositions, patch } from './intervention.js';
import { chooseToken, seededRandom, type Sampling } from './sampling.js';
import { Steering } from './steering.js';
import { loadSmallA, type SmallA } from '../test/small-a.js';

let s: SmallA;
let model: Model;
let prompt: number[];

beforeAll(async () => {
  s = await loadSmallA();
  model = s.model;
  prompt = model.encode('The parents that the guards know');
});
afterAll(async () => { await s.dispose(); });

/** Logits at every position of `ids` [seq][vocab] with `edits`. */
async function allLogits(ids: readonly number[], edits?: ReadonlyMap<string, Edit>): Promise<Float32Array[]> {
  const V = model.spec.dims.vocabSize;
  let rows: Float32Array[] = [];
  await model.ops.scope(async () => {
    const { logits } = await model.forward(model.tokens(Int32Array.from(ids), 1, ids.length), { edits });
    const d = (await logits!.data()) as Float32Array;
    rows = Array.from({ length: ids.length }, (_, p) => d.slice(p * V, (p + 1) * V));
  });
  return rows;
}

/** Replays the choices a generation must have made from teacher-forced logits. */
async function replay(g: Generation, sampling: Sampling, steering?: Steering): Promise<number[]> {
  const full = [...prompt, ...g.ids];
  const rows = await allLogits(full.slice(0, -1), steering?.edits({ promptLength: prompt.length }));
  const random = seededRandom(sampling.kind === 'sample' ? sampling.seed : 0);
  return g.ids.map((_, t) => chooseToken(rows[prompt.length - 1 + t]!, sampling, random));
}

const strong = () => Steering.create(model, s.dictionaries,
  interventionsFor(['resid_1/8', 'resid_1/2', 'resid_0/9', 'mlp_1/4'].map(parseFeatureId), clamp(12), parsePositions('all')));

describe('generation', () => {
  const sampled: Sampling = { kind: 'sample', temperature: 1.3, topP: 0.95, seed: 1234 };

  it('greedy and sampled generations agree with teacher forcing, unsteered and steered', async () => {
    const steering = await strong();
    for (const sampling of [{ kind: 'greedy' } as const, sampled]) {
      for (const st of [undefined, steering]) {
        const g = await generate(model, prompt, st, { maxNewTokens: 10, sampling });
        expect(g.ids).toHaveLength(10);
        expect(g.stoppedBy).toBe('length');
        expect(await replay(g, sampling, st)).toEqual(g.ids);
        expect(g.text).toBe(model.tokenizer.decode(g.ids));
      }
    }
  });

  it('a seed reproduces a sampled generation; another seed gives another one', async () => {
    const a = await generate(model, prompt, undefined, { maxNewTokens: 16, sampling: sampled });
    const b = await generate(model, prompt, undefined, { maxNewTokens: 16, sampling: sampled });
    const c = await generate(model, prompt, undefined, { maxNewTokens: 16, sampling: { ...sampled, seed: 99 } });
    expect(b.ids).toEqual(a.ids);
    expect(c.ids).not.toEqual(a.ids);
  });

  it('steering reaches generated tokens: "from the first generated position" leaves step 1 alone and changes later steps', async () => {
    const P = prompt.length;
    const later = await Steering.create(model, s.dictionaries,
      interventionsFor(['resid_1/8', 'resid_1/2', 'resid_0/9', 'mlp_1/4'].map(parseFeatureId), clamp(12), parsePositions(`${P}:`)));
    const plain = await generate(model, prompt, undefined, { maxNewTokens: 8 });
    const g = await generate(model, prompt, later, { maxNewTokens: 8 });
    expect(g.ids[0]).toBe(plain.ids[0]);
    expect(g.ids).not.toEqual(plain.ids);
    expect(await replay(g, { kind: 'greedy' }, later)).toEqual(g.ids);
  });

  it('side by side: before is unsteered, after is steered, same seed', async () => {
    const steering = await strong();
    const sbs = await generateSideBySide(model, 'The parents that the guards know', steering, { maxNewTokens: 8, sampling: sampled });
    expect(sbs.promptIds).toEqual(prompt);
    expect(sbs.before).toEqual(await generate(model, prompt, undefined, { maxNewTokens: 8, sampling: sampled }));
    expect(sbs.after).toEqual(await generate(model, prompt, steering, { maxNewTokens: 8, sampling: sampled }));
    expect(sbs.after.ids).not.toEqual(sbs.before.ids);
  });

  it('stops at a stop token and reports why', async () => {
    const first = (await generate(model, prompt, undefined, { maxNewTokens: 1 })).ids[0]!;
    const g = await generate(model, prompt, undefined, { maxNewTokens: 5, stopTokens: [first] });
    expect(g).toMatchObject({ ids: [first], stoppedBy: 'stop-token' });
  });

  it('patch ops during generation use the patch prompt where it exists', async () => {
    const patchIds = model.encode('The parent that the guards know');
    const steering = await Steering.create(model, s.dictionaries, interventionsFor(['resid_1/8', 'resid_0/9'].map(parseFeatureId), patch(), parsePositions('prompt')));
    const patchPrompt = { ids: Int32Array.from(patchIds), batch: 1, seq: patchIds.length };
    const g = await generate(model, prompt, steering, { maxNewTokens: 4, patchPrompt });
    expect(g.ids).toHaveLength(4);
    await expect(generate(model, prompt, steering, { maxNewTokens: 4 })).rejects.toThrow(/patch prompt/);
    const allPos = await Steering.create(model, s.dictionaries, interventionsFor([parseFeatureId('resid_1/8')], patch(), parsePositions('all')));
    await expect(generate(model, prompt, allPos, { maxNewTokens: 4, patchPrompt })).rejects.toThrow(/patch prompt has only 6 tokens/);
  });

  it('bad settings are typed errors', async () => {
    await expect(generate(model, prompt, undefined, { maxNewTokens: 0 })).rejects.toBeInstanceOf(InputError);
    await expect(generate(model, prompt, undefined, { maxNewTokens: 200 })).rejects.toMatchObject({ hint: expect.stringContaining('at most 123') });
    await expect(generate(model, [], undefined, { maxNewTokens: 2 })).rejects.toBeInstanceOf(InputError);
    await expect(generate(model, prompt, undefined, { maxNewTokens: 2, sampling: { kind: 'sample', temperature: -1, seed: 1 } })).rejects.toBeInstanceOf(InputError);
    const far = await Steering.create(model, s.dictionaries, interventionsFor([parseFeatureId('resid_1/8')], clamp(1), parsePositions('20')));
    await expect(generate(model, prompt, far, { maxNewTokens: 5 })).rejects.toThrow(/position 20 out of range/);
  });
});
