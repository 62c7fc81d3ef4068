import { describe, expect, it } from 'vitest';
import type { OutStream } from './io.js';
import { barLine, createProgress, duration, plainLine } from './progress.js';

function stream(isTTY: boolean, columns = 80): OutStream & { text: string } {
  const s = { text: '', isTTY, columns, write(t: string) { s.text += t; } };
  return s;
}

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => { t += ms; } };
}

describe('progress on a terminal', () => {
  it('redraws a bar with ETA in place, throttled, and ends the line on finish()', () => {
    const s = stream(true);
    const c = clock();
    const p = createProgress({ stream: s, now: c.now, redrawMs: 100 });
    p.onProgress({ stage: 'examples', done: 0, total: 4 });
    c.advance(1000); p.onProgress({ stage: 'examples', done: 1, total: 4 });
    c.advance(10); p.onProgress({ stage: 'examples', done: 1, total: 4 }); // throttled
    c.advance(1000); p.onProgress({ stage: 'examples', done: 2, total: 4 });
    c.advance(1000); p.onProgress({ stage: 'examples', done: 4, total: 4 });
    const frames = s.text.split('\r').filter(Boolean);
    expect(frames).toHaveLength(4);
    expect(frames[0]).toContain('ETA --:--');
    // No ETA from the first unit alone (it carries the warm-up); from the second on, the rate after it.
    expect(frames[1]).toMatch(/^\x1b\[2Kexamples \[█{6}░{18}\] 1\/4 25% ETA --:--$/);
    expect(frames[2]).toMatch(/2\/4 50% ETA 0:02$/);
    expect(frames[3]).toMatch(/4\/4 100% in 0:03$/);
    expect(s.text).not.toContain('\n');
    p.finish();
    expect(s.text.endsWith('\n')).toBe(true);
    p.finish();
    expect(s.text.match(/\n/g)).toHaveLength(1);
  });

  it('shows nested stages as a block of lines, rewritten in place, each with its own clock', () => {
    const s = stream(true);
    const c = clock();
    const p = createProgress({ stream: s, now: c.now, redrawMs: 0 });
    p.onProgress({ stage: 'submodules', done: 1, total: 2 });
    c.advance(1000); p.onProgress({ stage: 'submodules', done: 2, total: 2 });
    p.onProgress({ stage: 'batches', done: 1, total: 3 });
    s.text = '';
    c.advance(500); p.onProgress({ stage: 'submodules', done: 1, total: 2 }); // next batch: restarts
    // Cursor up one line, then both lines rewritten. The restarted stage's clock starts at the
    // previous event; the outer stage, first seen after its inner one, is recognised as outer by
    // the restart and timed from the work's start. One unit each: no ETA yet.
    expect(s.text).toMatch(/^\x1b\[1A\r\x1b\[2Ksubmodules .* 1\/2 50% ETA --:--\n\r\x1b\[2Kbatches .* 1\/3 33% ETA --:--$/);
    c.advance(3000); p.onProgress({ stage: 'submodules', done: 2, total: 2 });
    expect(s.text).toMatch(/submodules .* 2\/2 100% in 0:04\n\r\x1b\[2Kbatches .* 1\/3 33% ETA --:--$/);
    p.onProgress({ stage: 'batches', done: 2, total: 3 });
    expect(s.text).toMatch(/batches .* 2\/3 66% ETA 0:04$/); // the second batch took 3.5 s
    c.advance(2000); p.onProgress({ stage: 'submodules', done: 1, total: 2 });
    c.advance(2000); p.onProgress({ stage: 'submodules', done: 2, total: 2 });
    p.onProgress({ stage: 'batches', done: 3, total: 3 });
    expect(s.text).toMatch(/submodules .* 2\/2 100% in 0:04\n\r\x1b\[2Kbatches .* 3\/3 100% in 0:09$/);
    p.finish();
  });

  it('times stages that follow each other separately (not the time since the run began)', () => {
    const s = stream(true);
    const c = clock();
    const p = createProgress({ stream: s, now: c.now, redrawMs: 0 });
    c.advance(7000); // loading, before the first stage
    for (let i = 1; i <= 3; i++) { c.advance(1000); p.onProgress({ stage: 'submodules', done: i, total: 3 }); }
    for (let i = 1; i <= 2; i++) { c.advance(500); p.onProgress({ stage: 'edges', done: i, total: 2 }); }
    p.onProgress({ stage: 'ablation', done: 0, total: 2 });
    c.advance(2000); p.onProgress({ stage: 'ablation', done: 2, total: 2 });
    c.advance(300); p.onProgress({ stage: 'steering', done: 1, total: 1 });
    const last = s.text.split('\r\x1b[2K').slice(-4).join('');
    expect(last).toMatch(/submodules .* 3\/3 100% in 0:10\n/); // the first stage began with the work
    expect(last).toMatch(/edges .* 2\/2 100% in 0:01\n/);
    expect(last).toMatch(/ablation .* 2\/2 100% in 0:02\n/);
    expect(last).toMatch(/steering .* 1\/1 100% done$/); // complete when first seen: its start is unknown
    p.finish();
  });

  it('leaves the first unit out of the ETA', () => {
    const s = stream(false);
    const c = clock();
    const p = createProgress({ stream: s, now: c.now, intervalMs: 0 });
    p.onProgress({ stage: 'batches', done: 0, total: 10 });
    c.advance(20_000); p.onProgress({ stage: 'batches', done: 1, total: 10 }); // warm-up
    c.advance(1000); p.onProgress({ stage: 'batches', done: 2, total: 10 });
    const lines = s.text.trimEnd().split('\n');
    expect(lines).toEqual(['batches: 0/10 (0%) ETA --:--', 'batches: 1/10 (10%) ETA --:--', 'batches: 2/10 (20%) ETA 0:08']);
  });

  it('fits narrow terminals by shortening the stage label', () => {
    const line = barLine({ stage: 'a very long stage name that cannot fit', done: 1, total: 2 }, 1000, 60);
    expect(line.length).toBeLessThanOrEqual(60);
    expect(line).toContain('…');
  });
});

describe('progress in logs (not a terminal)', () => {
  it('does not flood logs with short nested stages', () => {
    const s = stream(false);
    const c = clock();
    const p = createProgress({ stream: s, now: c.now, intervalMs: 2000 });
    for (let b = 1; b <= 20; b++) {
      for (let i = 1; i <= 7; i++) { c.advance(20); p.onProgress({ stage: 'submodules', done: i, total: 7 }); }
      p.onProgress({ stage: 'batches', done: b, total: 20 });
    }
    const lines = s.text.trimEnd().split('\n');
    expect(lines[0]).toBe('submodules: 1/7 (14%) ETA --:--');
    expect(lines[1]).toMatch(/^batches: 1\/20/);
    expect(lines.length).toBeLessThanOrEqual(4); // 2.8 s of work: first lines + one periodic + the long stage's end
    expect(lines.at(-1)).toMatch(/^batches: 20\/20 \(100%\) in 0:03$/);
  });

  it('names the outer stages on every line, outermost first, so nested stages read in order', () => {
    const s = stream(false);
    const c = clock();
    const p = createProgress({ stream: s, now: c.now, intervalMs: 0 });
    for (let b = 1; b <= 3; b++) {
      for (let i = 1; i <= 2; i++) { c.advance(100); p.onProgress({ stage: 'submodules', done: i, total: 2, detail: `resid_${i}` }); }
      for (let i = 1; i <= 2; i++) { c.advance(100); p.onProgress({ stage: 'edges', done: i, total: 2 }); }
      p.onProgress({ stage: 'batches', done: b * 8, total: 24 });
    }
    const lines = s.text.trimEnd().split('\n');
    const second = lines.slice(lines.indexOf('batches: 8/24 (33%) ETA --:--') + 1);
    expect(second[0]).toBe('batches: 8/24 (33%) ETA --:-- › submodules: 1/2 (50%) ETA --:-- — resid_1');
    expect(second.filter((l) => /^(submodules|edges)/.test(l))).toEqual([]); // inner lines always carry the batch
    expect(new Set(lines).size).toBe(lines.length); // no line twice
    expect(lines.at(-1)).toBe('batches: 24/24 (100%) in 0:01');
  });

  it('prints the first, periodic and last lines, no control characters', () => {
    const s = stream(false);
    const c = clock();
    const p = createProgress({ stream: s, now: c.now, intervalMs: 2000 });
    for (let i = 0; i <= 10; i++) { p.onProgress({ stage: 'examples', done: i, total: 10 }); c.advance(500); }
    const lines = s.text.trimEnd().split('\n');
    expect(lines[0]).toBe('examples: 0/10 (0%) ETA --:--');
    expect(lines.at(-1)).toBe('examples: 10/10 (100%) in 0:05');
    expect(lines.length).toBe(4); // t=0, t=2000, t=4000, and the last at t=5000
    expect(s.text).not.toMatch(/[\r\x1b]/);
    p.finish();
    expect(s.text.trimEnd().split('\n')).toHaveLength(4);
  });

  it('prints nothing with --quiet', () => {
    for (const isTTY of [true, false]) {
      const s = stream(isTTY);
      const p = createProgress({ stream: s, quiet: true });
      p.onProgress({ stage: 'x', done: 1, total: 1 });
      p.finish();
      expect(s.text).toBe('');
    }
  });
});

describe('formatting', () => {
  it('durations', () => {
    expect(duration(0)).toBe('0:00');
    expect(duration(61_000)).toBe('1:01');
    expect(duration(3_725_000)).toBe('1:02:05');
  });
  it('plain line with ETA from the average rate', () => {
    expect(plainLine({ stage: 's', done: 2, total: 8 }, 4000)).toBe('s: 2/8 (25%) ETA 0:12');
    expect(plainLine({ stage: 'edges', done: 1, total: 2, detail: 'resid_0 → attn_1' }, 1000)).toBe('edges: 1/2 (50%) ETA 0:01 — resid_0 → attn_1');
    expect(barLine({ stage: 'edges', done: 1, total: 2, detail: 'mlp_0' }, 1000, 80)).toMatch(/^edges \(mlp_0\) \[/);
  });
});
