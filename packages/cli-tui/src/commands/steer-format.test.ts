// sfc steer's text and plot use one sign convention (logit diff = logit[answer] − logit[patch
// answer]); no number prints as -0.00.
import { describe, expect, it } from 'vitest';
import { sweepPlotSvg, type PromptScore, type SweepRow } from '@sfc/steering';
import { fixed } from '../number-format.js';
import { formatEvaluationTable } from './evaluate.js';
import { formatPromptScore, formatSweepTable } from './steer.js';

const view = (metric: number) => ({ metric, logitDiff: -metric, cleanLogit: 1, patchLogit: 1 + metric, top: [{ id: 1, token: 'a', logprob: -1 }] });
const row = (strength: number, after: number): SweepRow => ({
  strength, prompts: 4, metricName: 'logit-diff', metricBefore: -1, metricAfter: after, logitDiffBefore: 1, logitDiffAfter: -after,
  flipRate: 0, top1ChangeRate: 0, klMean: 0,
} as unknown as SweepRow);

describe('steer output sign convention', () => {
  it('prints the logit diff once, not the mirrored logit-diff metric beside it', () => {
    const p = { index: 0, before: view(-1.03), after: view(2.82), kl: 0.5, flipped: true } as unknown as PromptScore;
    const text = formatPromptScore(p, 'The parents', 'logit-diff');
    expect(text).not.toContain('metric (logit-diff)');
    expect(text).toContain('logit[answer] − logit[patch answer]  1.0300 → -2.8200  (flipped)');
    expect(formatPromptScore(p, 'x', 'my-metric')).toContain('metric (my-metric)  -1.0300 → 2.8200');
  });

  it('the sweep table and the plot rows carry the same quantity with the same sign', () => {
    const rows = [row(-1, 1.5), row(0, 0.2), row(1, -1)];
    const table = formatSweepTable(rows);
    expect(table.split('\n')[0]).toMatch(/^strength +logit diff +flipped/);
    expect(table).not.toContain('logit-diff');
    expect(table).toContain('unsteered: logit diff 1.0000');
    // The plot's upper panel draws logitDiffAfter (not the mirrored metric) under the table's name.
    const svg = sweepPlotSvg(rows);
    expect(svg).toContain('logit[answer] − logit[patch answer]');
    expect(svg).not.toContain('logit-diff');
    expect([...svg.matchAll(/<title>(-?[\d.]+): logit diff (-?[\d.]+)<\/title>/g)].map((m) => Number(m[2]))).toEqual(rows.map((r) => r.logitDiffAfter));
    expect(svg).toContain('<title>unsteered 1</title>');
  });
});

describe('no negative zero', () => {
  it('fixed() drops the sign of a value that rounds to zero', () => {
    expect(fixed(-0.001, 2)).toBe('0.00');
    expect(fixed(-0, 4)).toBe('0.0000');
    expect(fixed(-0.006, 2)).toBe('-0.01');
    expect(fixed(2.5, 1)).toBe('2.5');
  });

  it('the evaluation table prints completeness -0.0000… as 0.0000', () => {
    const t = formatEvaluationTable([{ threshold: 0.1, nodes: 3, faithfulness: 0.9, completeness: -0.00001, mFull: 1, mEmpty: 0, mCircuit: 0.9, mComplement: -0.00001 } as never]);
    expect(t).not.toContain('-0.0000');
  });
});
