import { describe, expect, it } from 'vitest';
import { InputError } from '@sfc/core';
import { parseStrengthRange, type SweepRow } from './sweep.js';
import { niceTicks, sweepPlotSvg } from './sweep-plot.js';

describe('strength ranges', () => {
  it('START:STOP:COUNT is an inclusive linspace; lists pass through', () => {
    expect(parseStrengthRange('-4:4:9')).toEqual([-4, -3, -2, -1, 0, 1, 2, 3, 4]);
    expect(parseStrengthRange('0:1:11')).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
    expect(parseStrengthRange('2:2:1')).toEqual([2]);
    expect(parseStrengthRange('4:-4:3')).toEqual([4, 0, -4]);
    expect(parseStrengthRange('0, 2,8')).toEqual([0, 2, 8]);
    for (const bad of ['-4:4', '-4:4:0', '-4:4:2.5', '1:2:1', 'a:b:3', '1,,2', '', '0:1:5000']) expect(() => parseStrengthRange(bad)).toThrow(InputError);
  });
});

describe('sweep plot', () => {
  const rows: SweepRow[] = [-2, 0, 2].map((s, i) => ({
    strength: s, prompts: 4, metricName: 'logit-diff', metricBefore: -1, metricAfter: -1 + s, logitDiffBefore: 1, logitDiffAfter: 1 - s,
    klMean: 0.1 * i, flipRate: [0, 0, 0.75][i]!, onTargetRate: [0, 0.5, 1][i]!, top1ChangeRate: 0,
  }));

  it('is a standalone SVG: logit diff with the unsteered line; flip rate, on-target rate and KL; the chosen strength', () => {
    const svg = sweepPlotSvg(rows, { title: 'resid_1 <scale>', chosen: { strength: 2, targetRate: 0.9 } });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('resid_1 &lt;scale&gt;');
    expect(svg).toContain('logit[answer] − logit[patch answer]');
    expect(svg).toContain('unsteered 1');
    expect((svg.match(/<circle/g) ?? []).length).toBe(3);
    expect(svg).toContain('2: flip rate 0.75');
    expect(svg).toContain('0: on-target rate 0.5');
    expect(svg).toContain('2: KL 0.2');
    expect(svg).toContain('calibrated 2: smallest KL with on-target rate ≥ 0.9');
    // Points are placed by value: the logit diff falls with strength, so y increases (SVG y points down).
    const ys = [...svg.matchAll(/<circle cx="[\d.]+" cy="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(ys[0]! < ys[1]! && ys[1]! < ys[2]!).toBe(true);
  });

  it('without patch answers: the metric; without answers: rates and KL only; with no rows it refuses', () => {
    const single = rows.map(({ logitDiffBefore: _b, logitDiffAfter: _a, flipRate: _f, ...r }) => r);
    expect(sweepPlotSvg(single)).toContain('logit-diff (steered)');
    const bare = rows.map(({ strength, prompts, klMean, top1ChangeRate }) => ({ strength, prompts, klMean, top1ChangeRate }));
    const svg = sweepPlotSvg(bare);
    expect(svg).toContain('KL(before ‖ after)');
    expect(svg).not.toContain('flip rate');
    expect(svg).not.toContain('<circle');
    expect(() => sweepPlotSvg([])).toThrow(InputError);
  });

  it('ticks are round and cover the data', () => {
    expect(niceTicks(-4, 4)).toEqual([-4, -2, 0, 2, 4]);
    expect(niceTicks(0.03, 0.97)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    const one = niceTicks(3, 3);
    expect(one[0]! < 3 && one[one.length - 1]! > 3).toBe(true);
  });
});
