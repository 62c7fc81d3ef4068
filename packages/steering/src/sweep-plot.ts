// The sweep curve as a standalone SVG string (no dependency): the steered metric versus
// strength on the left axis with the unsteered value as a dashed line, and the flip rate
// (paired data) on a right axis from 0 to 1. Without answers the curve is KL(before ‖ after).

import { InputError } from '@sfc/core';
import type { SweepRow } from './sweep.js';

export interface SweepPlotOptions {
  readonly title?: string;
  readonly width?: number;
  readonly height?: number;
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

export function sweepPlotSvg(rows: readonly SweepRow[], options: SweepPlotOptions = {}): string {
  if (rows.length === 0) throw new InputError('nothing to plot: the sweep has no rows');
  const W = options.width ?? 640, H = options.height ?? 400;
  const m = { left: 64, right: 64, top: 40, bottom: 48 };
  const hasMetric = rows.every((r) => r.metricAfter !== undefined);
  const label = hasMetric ? `${rows[0]!.metricName ?? 'metric'} (steered)` : 'KL(before ‖ after)';
  const ys = rows.map((r) => (hasMetric ? r.metricAfter! : r.klMean));
  const baseline = hasMetric ? rows[0]!.metricBefore : undefined;
  const flip = rows.every((r) => r.flipRate !== undefined) ? rows.map((r) => r.flipRate!) : undefined;
  const xs = rows.map((r) => r.strength);
  const xt = niceTicks(Math.min(...xs), Math.max(...xs));
  const yt = niceTicks(Math.min(...ys, baseline ?? Infinity), Math.max(...ys, baseline ?? -Infinity));
  const [x0, x1, y0, y1] = [xt[0]!, xt[xt.length - 1]!, yt[0]!, yt[yt.length - 1]!];
  const px = (x: number) => m.left + ((x - x0) / (x1 - x0)) * (W - m.left - m.right);
  const py = (y: number) => H - m.bottom - ((y - y0) / (y1 - y0)) * (H - m.top - m.bottom);
  const pr = (f: number) => H - m.bottom - f * (H - m.top - m.bottom);
  const path = (pts: readonly [number, number][]) => pts.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(2)},${y.toFixed(2)}`).join(' ');
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  if (options.title) out.push(`<text x="${W / 2}" y="${m.top / 2 + 4}" text-anchor="middle" font-size="14">${escapeXml(options.title)}</text>`);
  for (const t of xt) {
    out.push(`<line x1="${px(t).toFixed(2)}" y1="${m.top}" x2="${px(t).toFixed(2)}" y2="${H - m.bottom}" stroke="#eee"/>`);
    out.push(`<text x="${px(t).toFixed(2)}" y="${H - m.bottom + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of yt) {
    out.push(`<line x1="${m.left}" y1="${py(t).toFixed(2)}" x2="${W - m.right}" y2="${py(t).toFixed(2)}" stroke="#eee"/>`);
    out.push(`<text x="${m.left - 6}" y="${(py(t) + 4).toFixed(2)}" text-anchor="end">${fmt(t)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${W - m.left - m.right}" height="${H - m.top - m.bottom}" fill="none" stroke="#444"/>`);
  out.push(`<text x="${(m.left + W - m.right) / 2}" y="${H - 10}" text-anchor="middle">strength</text>`);
  out.push(`<text transform="translate(16 ${(m.top + H - m.bottom) / 2}) rotate(-90)" text-anchor="middle" fill="#1f5fbf">${escapeXml(label)}</text>`);
  if (baseline !== undefined) {
    out.push(`<line x1="${m.left}" y1="${py(baseline).toFixed(2)}" x2="${W - m.right}" y2="${py(baseline).toFixed(2)}" stroke="#1f5fbf" stroke-dasharray="4 4"><title>unsteered ${fmt(baseline)}</title></line>`);
  }
  out.push(`<path d="${path(rows.map((r, i) => [px(r.strength), py(ys[i]!)]))}" fill="none" stroke="#1f5fbf" stroke-width="2"/>`);
  rows.forEach((r, i) => out.push(`<circle cx="${px(r.strength).toFixed(2)}" cy="${py(ys[i]!).toFixed(2)}" r="3" fill="#1f5fbf"><title>${fmt(r.strength)}: ${fmt(ys[i]!)}</title></circle>`));
  if (flip) {
    for (const f of [0, 0.25, 0.5, 0.75, 1]) out.push(`<text x="${W - m.right + 6}" y="${(pr(f) + 4).toFixed(2)}" fill="#c0392b">${f}</text>`);
    out.push(`<text transform="translate(${W - 14} ${(m.top + H - m.bottom) / 2}) rotate(90)" text-anchor="middle" fill="#c0392b">flip rate</text>`);
    out.push(`<path d="${path(rows.map((r, i) => [px(r.strength), pr(flip[i]!)]))}" fill="none" stroke="#c0392b" stroke-width="2" stroke-dasharray="6 3"/>`);
    rows.forEach((r, i) => out.push(`<rect x="${(px(r.strength) - 3).toFixed(2)}" y="${(pr(flip[i]!) - 3).toFixed(2)}" width="6" height="6" fill="#c0392b"><title>${fmt(r.strength)}: flip rate ${fmt(flip[i]!)}</title></rect>`));
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
