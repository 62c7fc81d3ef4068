import { describe, expect, it } from 'vitest';
import { computeLayout } from './layout.js';

describe('computeLayout', () => {
  it('fills 80×24 exactly: columns add up, each column\'s panes add up to the body', () => {
    const l = computeLayout(80, 24, 7);
    expect(l.tooSmall).toBe(false);
    expect(l.leftWidth + l.rightWidth).toBe(80);
    expect(l.circuitRows + l.chartRows).toBe(22);
    expect(l.nodeRows + l.steerRows + l.promptRows + l.resultRows).toBe(22);
    // Room for the result: title, header, 5 tokens, 2 continuations.
    expect(l.resultRows).toBeGreaterThanOrEqual(9);
    expect(l.circuitRows).toBeGreaterThanOrEqual(12);
  });

  it('gives larger terminals more rows everywhere, and limits the chart to a third', () => {
    for (const [c, r, subs] of [[120, 40, 7], [200, 60, 19], [60, 18, 1], [100, 30, 25]] as const) {
      const l = computeLayout(c, r, subs);
      expect(l.leftWidth + l.rightWidth).toBe(c);
      expect(l.circuitRows + l.chartRows).toBe(r - 2);
      expect(l.nodeRows + l.steerRows + l.promptRows + l.resultRows).toBe(r - 2);
      expect(l.chartRows - 1).toBeLessThanOrEqual(Math.max(2, subs));
      expect(l.chartRows).toBeLessThanOrEqual(Math.max(3, Math.floor((r - 2) / 3)));
    }
    expect(computeLayout(120, 40, 7).nodeRows).toBeGreaterThan(computeLayout(80, 24, 7).nodeRows);
  });

  it('says when the terminal is too small', () => {
    expect(computeLayout(59, 24, 7).tooSmall).toBe(true);
    expect(computeLayout(80, 17, 7).tooSmall).toBe(true);
    expect(computeLayout(60, 18, 7).tooSmall).toBe(false);
  });
});
