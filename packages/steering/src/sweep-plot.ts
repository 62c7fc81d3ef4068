// The sweep as a standalone SVG string (no dependency), in two panels sharing the strength axis:
// on top the steered logit[answer] − logit[patch answer] (or the metric, when the prompts have no
// patch answers) with the unsteered value as a dashed line; below, the flip and on-target rates
// (left axis, 0–1) and the mean KL(before ‖ after) in nats (right axis). A vertical line marks the
// chosen strength (calibrated: smallest KL reaching the on-target rate; docs/concepts.md). Without
// answers the top panel is left out.

import { InputError } from '@sfc/core';
import type { SweepRow } from './sweep.js';

export interface SweepPlotOptions {
  readonly title?: string;
  readonly width?: number;
  readonly height?: number;
  /** The strength to mark, and the on-target rate it was chosen for. */
  readonly chosen?: { readonly strength: number; readonly targetRate: number };
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Round tick values: steps of 1, 2 or 5 × 10^k covering [lo, hi] with about `n` ticks. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) { const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.5 : 1; lo -= d; hi += d; }
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let t = Math.floor(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  if (ticks[0]! > lo) ticks.unshift(Number((ticks[0]! - step).toPrecision(12)));
  if (ticks[ticks.length - 1]! < hi) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

function fmt(v: number): string {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(4)));
}

const path = (pts: readonly [number, number][]) => pts.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(2)},${y.toFixed(2)}`).join(' ');
const COLORS = { metric: '#1f5fbf', flip: '#c0392b', onTarget: '#1e8449', kl: '#7d3c98' } as const;

/** One panel's vertical extent and a value → y map over its ticks. */
interface Panel { readonly top: number; readonly bottom: number }
function yScale(p: Panel, ticks: readonly number[]): (v: number) => number {
  const [y0, y1] = [ticks[0]!, ticks[ticks.length - 1]!];
  return (v) => p.bottom - ((v - y0) / (y1 - y0)) * (p.bottom - p.top);
}

export function sweepPlotSvg(rows: readonly SweepRow[], options: SweepPlotOptions = {}): string {
  if (rows.length === 0) throw new InputError('nothing to plot: the sweep has no rows');
  const W = options.width ?? 640;
  const useDiff = rows.every((r) => r.logitDiffAfter !== undefined);
  const hasTop = useDiff || rows.every((r) => r.metricAfter !== undefined);
  const H = options.height ?? (hasTop ? 560 : 360);
  const m = { left: 64, right: 64, top: 40, bottom: 66, gap: 40 };
  const inner = H - m.top - m.bottom - (hasTop ? m.gap : 0);
  const topPanel: Panel = { top: m.top, bottom: m.top + (hasTop ? inner / 2 : 0) };
  const lowPanel: Panel = { top: hasTop ? topPanel.bottom + m.gap : m.top, bottom: H - m.bottom };
  const xs = rows.map((r) => r.strength);
  const xt = niceTicks(Math.min(...xs), Math.max(...xs));
  const px = (x: number) => m.left + ((x - xt[0]!) / (xt[xt.length - 1]! - xt[0]!)) * (W - m.left - m.right);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  if (options.title) out.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">${escapeXml(options.title)}</text>`);
  const frame = (p: Panel, yt: readonly number[], py: (v: number) => number, label: string, color: string) => {
    for (const t of xt) out.push(`<line x1="${px(t).toFixed(2)}" y1="${p.top}" x2="${px(t).toFixed(2)}" y2="${p.bottom}" stroke="#eee"/>`);
    for (const t of yt) {
      out.push(`<line x1="${m.left}" y1="${py(t).toFixed(2)}" x2="${W - m.right}" y2="${py(t).toFixed(2)}" stroke="#eee"/>`);
      out.push(`<text x="${m.left - 6}" y="${(py(t) + 4).toFixed(2)}" text-anchor="end">${fmt(t)}</text>`);
    }
    out.push(`<rect x="${m.left}" y="${p.top}" width="${W - m.left - m.right}" height="${p.bottom - p.top}" fill="none" stroke="#444"/>`);
    out.push(`<text transform="translate(16 ${(p.top + p.bottom) / 2}) rotate(-90)" text-anchor="middle" fill="${color}">${escapeXml(label)}</text>`);
  };
  const series = (ys: readonly number[], py: (v: number) => number, color: string, name: string, marker: 'circle' | 'square' | 'diamond', dash?: string) => {
    out.push(`<path d="${path(rows.map((r, i) => [px(r.strength), py(ys[i]!)]))}" fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
    rows.forEach((r, i) => {
      const [x, y] = [px(r.strength), py(ys[i]!)];
      const title = `<title>${fmt(r.strength)}: ${name} ${fmt(ys[i]!)}</title>`;
      if (marker === 'circle') out.push(`<circle cx="${x.toFixed(2)}" cy="${y.toFixed(2)}" r="3" fill="${color}">${title}</circle>`);
      else if (marker === 'square') out.push(`<rect x="${(x - 3).toFixed(2)}" y="${(y - 3).toFixed(2)}" width="6" height="6" fill="${color}">${title}</rect>`);
      else out.push(`<path d="M${x.toFixed(2)},${(y - 4).toFixed(2)} l4,4 l-4,4 l-4,-4 z" fill="${color}">${title}</path>`);
    });
  };

  if (hasTop) {
    const ys = rows.map((r) => (useDiff ? r.logitDiffAfter! : r.metricAfter!));
    const baseline = useDiff ? rows[0]!.logitDiffBefore : rows[0]!.metricBefore;
    const yt = niceTicks(Math.min(...ys, baseline ?? Infinity), Math.max(...ys, baseline ?? -Infinity));
    const py = yScale(topPanel, yt);
    const label = useDiff ? 'logit[answer] − logit[patch answer]' : `${rows[0]!.metricName ?? 'metric'} (steered)`;
    frame(topPanel, yt, py, label, COLORS.metric);
    if (baseline !== undefined) {
      out.push(`<line x1="${m.left}" y1="${py(baseline).toFixed(2)}" x2="${W - m.right}" y2="${py(baseline).toFixed(2)}" stroke="${COLORS.metric}" stroke-dasharray="4 4"><title>unsteered ${fmt(baseline)}</title></line>`);
    }
    if (useDiff && yt[0]! < 0 && yt[yt.length - 1]! > 0) out.push(`<line x1="${m.left}" y1="${py(0).toFixed(2)}" x2="${W - m.right}" y2="${py(0).toFixed(2)}" stroke="#999"/>`);
    series(ys, py, COLORS.metric, useDiff ? 'logit diff' : 'metric', 'circle');
  }

  // Lower panel: rates on the left (0–1), KL on the right.
  const rateTicks = [0, 0.25, 0.5, 0.75, 1];
  const pr = yScale(lowPanel, rateTicks);
  const kls = rows.map((r) => r.klMean);
  const kt = niceTicks(0, Math.max(...kls, 1e-3));
  const pk = yScale(lowPanel, kt);
  frame(lowPanel, rateTicks, pr, 'rate', '#444');
  for (const t of kt) out.push(`<text x="${W - m.right + 6}" y="${(pk(t) + 4).toFixed(2)}" fill="${COLORS.kl}">${fmt(t)}</text>`);
  out.push(`<text transform="translate(${W - 14} ${(lowPanel.top + lowPanel.bottom) / 2}) rotate(90)" text-anchor="middle" fill="${COLORS.kl}">mean KL(before ‖ after), nats</text>`);
  const legend: [string, string][] = [];
  if (rows.every((r) => r.flipRate !== undefined)) { series(rows.map((r) => r.flipRate!), pr, COLORS.flip, 'flip rate', 'square', '6 3'); legend.push(['flip rate', COLORS.flip]); }
  if (rows.every((r) => r.onTargetRate !== undefined)) { series(rows.map((r) => r.onTargetRate!), pr, COLORS.onTarget, 'on-target rate', 'square'); legend.push(['on-target rate', COLORS.onTarget]); }
  series(kls, pk, COLORS.kl, 'KL', 'diamond', '2 2');
  legend.push(['KL(before ‖ after)', COLORS.kl]);
  out.push(`<text x="${(m.left + W - m.right) / 2}" y="${H - m.bottom + 32}" text-anchor="middle">strength</text>`);
  legend.forEach(([name, color], i) => out.push(`<text x="${m.left + i * 150}" y="${H - 8}" fill="${color}">■ ${escapeXml(name)}</text>`));
  for (const t of xt) out.push(`<text x="${px(t).toFixed(2)}" y="${H - m.bottom + 16}" text-anchor="middle">${fmt(t)}</text>`);

  if (options.chosen) {
    const x = px(options.chosen.strength).toFixed(2);
    const what = `calibrated ${fmt(options.chosen.strength)}: smallest KL with on-target rate ≥ ${fmt(options.chosen.targetRate)}`;
    out.push(`<line x1="${x}" y1="${m.top}" x2="${x}" y2="${H - m.bottom}" stroke="#e67e22" stroke-width="2"><title>${escapeXml(what)}</title></line>`);
    out.push(`<text x="${x}" y="${m.top - 4}" text-anchor="middle" fill="#e67e22">${escapeXml(what)}</text>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
