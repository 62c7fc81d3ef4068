import { describe, expect, it } from 'vitest';
import { parseFeatureId } from './feature-ref.js';
import { interventionsFor, parsePositions, scale } from './intervention.js';
import type { PromptScore } from './scoring.js';
import { steerReport } from './steer-report.js';

describe('sfc.steer/v1', () => {
  const features = ['resid_3/1234', 'attn_0/17@2', 'resid_3/err'].map(parseFeatureId);
  const interventions = interventionsFor(features, scale(-2), parsePositions('prompt'));

  it('a dry run lists the resolved features and interventions', () => {
    const r = steerReport({ features, interventions, meta: { model: 'pythia-70m-deduped' } });
    expect(JSON.parse(JSON.stringify(r))).toEqual({
      schema: 'sfc.steer/v1', model: 'pythia-70m-deduped', dryRun: true,
      features: [
        { id: 'resid_3/1234', submodule: 'resid_3', index: 1234, pos: null },
        { id: 'attn_0/17@2', submodule: 'attn_0', index: 17, pos: 2 },
        { id: 'resid_3/err', submodule: 'resid_3', index: null, pos: null },
      ],
      interventions: [
        { id: 'resid_3/1234', op: { kind: 'scale', factor: -2 }, opText: 'scale(-2)', positions: 'prompt' },
        { id: 'attn_0/17', op: { kind: 'scale', factor: -2 }, opText: 'scale(-2)', positions: '2' },
        { id: 'resid_3/err', op: { kind: 'scale', factor: -2 }, opText: 'scale(-2)', positions: 'prompt' },
      ],
    });
  });

  it('a run carries per-prompt results with their texts (by example index when batches were regrouped)', () => {
    const side = { top: [{ id: 1, token: 'is', logprob: -0.1 }], logitDiff: 1 };
    const prompts: PromptScore[] = [
      { index: 0, example: 2, before: side, after: side, kl: 0, top1Changed: false },
      { index: 1, before: side, after: side, kl: 0, top1Changed: false },
    ];
    const r = steerReport({ features, interventions, prompts, promptTexts: ['a', 'b', 'c'], summary: { prompts: 2, klMean: 0, top1ChangeRate: 0 } });
    expect(r.dryRun).toBe(false);
    expect(r.prompts!.map((p) => p.prompt)).toEqual(['c', 'b']);
    expect(r.summary).toEqual({ prompts: 2, klMean: 0, top1ChangeRate: 0 });
  });
});
