// Esc on a real discovery (SfcTuiSession on fixtures/small-a, tfjs, 40 examples): the key reaches
// the app while core computes (core's cancel checks give the event loop turns), the signal stops
// core's discover at its next unit of work, and the job view says "cancelled" within a fraction
// of the run's length; no circuit file is written and the session still works afterwards.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { memoryIO } from '../io.js';
import { App } from './app.js';
import { SfcTuiSession } from './sfc-session.js';
import { KEY, press, resize, waitFor } from './testing/terminal.js';

const SMALL_A = fileURLToPath(new URL('../../../../fixtures/small-a/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sfc-tui-cancel-'));
let session: SfcTuiSession | undefined;

afterAll(async () => {
  cleanup();
  await session?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('Esc during a real discovery shows "cancelled" promptly and writes nothing', async () => {
  session = await SfcTuiSession.open(memoryIO({ cwd: dir }), {
    model: SMALL_A, dictionaries: join(SMALL_A, 'dictionaries'), data: join(SMALL_A, 'data.jsonl'), 'num-examples': 40, 'batch-size': 4, backend: 'tfjs',
  }, { out: 'found.json', prompt: 'The parents that the guards know', answer: ' have', patchAnswer: ' has' });
  const app = render(<App session={session} liveDelayMs={0} />);
  await resize(app, 80, 24);
  await waitFor(app, 'No circuit yet');
  await press(app, 'D');
  await waitFor(app, /batches|submodules|edges/, 30_000); // the model is loaded and core is computing
  const start = Date.now();
  await press(app, KEY.escape);
  const s = await waitFor(app, 'Discovery cancelled after', 5_000);
  const took = Date.now() - start;
  expect(s).not.toContain('40/40'); // stopped part-way
  expect(existsSync(join(dir, 'found.json'))).toBe(false);
  // The next discovery runs normally (the session's queue was released).
  await press(app, KEY.escape, 'D');
  const t1 = Date.now();
  await waitFor(app, 'Discovery done in', 60_000);
  // Cancelling took one unit of work (tens of ms here), not the rest of the run.
  expect(took).toBeLessThan((Date.now() - t1) / 3);
  expect(existsSync(join(dir, 'found.json'))).toBe(true);
}, 120_000);
