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
    c.advance(1000); p.onProgress({ stage: 'examples', done: 4, total: 4 });
    const frames = s.text.split('\r').filter(Boolean);
    expect(frames).toHaveLength(3);
    expect(frames[0]).toContain('ETA --:--');
    expect(frames[1]).toMatch(/^\x1b\[2Kexamples \[█{6}░{18}\] 1\/4 25% ETA 0:03$/);
    expect(frames[2]).toMatch(/4\/4 100% in 0:02$/);
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
    p.onProgress({ stage: 'batches', done: 1, total: 2 });
    s.text = '';
    c.advance(500); p.onProgress({ stage: 'submodules', done: 1, total: 2 }); // next batch: restarts
    // Cursor up one line, then both lines rewritten. The restarted stage's clock starts at the
    // previous event (its first unit began then): 1 of 2 done in 0.5 s → ETA 0:01 (rounded);
    // the outer stage, first seen at done 1, began with the work: 1 of 2 in 1.5 s → ETA 0:02.
    expect(s.text).toMatch(/^\x1b\[1A\r\x1b\[2Ksubmodules .* 1\/2 50% ETA 0:01\n\r\x1b\[2Kbatches .* 1\/2 50% ETA 0:02$/);
    c.advance(3000); p.onProgress({ stage: 'submodules', done: 2, total: 2 });
    expect(s.text).toMatch(/submodules .* 2\/2 100% in 0:04\n\r\x1b\[2Kbatches .* 1\/2 50% ETA 0:05$/);
    p.finish();
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
    expect(lines[0]).toBe('submodules: 1/7 (14%) ETA 0:00');
    expect(lines[1]).toMatch(/^batches: 1\/20/);
    expect(lines.length).toBeLessThanOrEqual(4); // 2.8 s of work: first lines + one periodic + the long stage's end
    expect(lines.at(-1)).toMatch(/^batches: 20\/20 \(100%\) in 0:03$/);
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
