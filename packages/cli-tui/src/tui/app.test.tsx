// The TUI against the fake session: every pane and every key, at 80×24 unless a test resizes.
// The fake's steering numbers follow fakeMetricShift (after = metricClean + Σ effect × pull), so
// the expected values on screen are computed here from the circuit fixture.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { InputError } from '@sfc/core';
import { parseAnnotations } from '../annotations.js';
import { App, type AppProps } from './app.js';
import { signed } from './format.js';
import { KEYMAP } from './keymap.js';
import { outcomeText } from './panes/result-pane.js';
import { FakeSession, type FakeSessionOptions } from './testing/fake-session.js';
import { KEY, press, resize, screen, sleep, waitFor, type RenderedApp } from './testing/terminal.js';

const DATA = fileURLToPath(new URL('./test-data/', import.meta.url));
const CIRCUIT = join(DATA, 'small-a-circuit.json');
const SMALLER = join(DATA, 'small-a-circuit-2.json');
const PROMPT = { text: 'The parents that the guards know', answer: ' have', patchAnswer: ' has' };
const ANNOTATIONS = parseAnnotations(readFileSync(join(DATA, 'annotations.jsonl'), 'utf8'));
const METRIC_CLEAN = -0.3416;

interface Started { readonly app: RenderedApp & { frames: string[] }; readonly session: FakeSession }

async function start(options: { session?: FakeSessionOptions; props?: Partial<AppProps>; size?: readonly [number, number]; waitFor?: string } = {}): Promise<Started> {
  const session = new FakeSession({ prompt: PROMPT, discoveredPath: SMALLER, ...options.session });
  const app = render(<App session={session} circuitPath={CIRCUIT} annotations={ANNOTATIONS} liveDelayMs={0} {...options.props} />);
  const [columns, rows] = options.size ?? [80, 24];
  await resize(app, columns, rows);
  await waitFor(app, options.waitFor ?? '› embed/err');
  return { app, session };
}

/** The lines of the screen that contain `text`. */
const linesWith = (s: string, text: string) => s.split('\n').filter((l) => l.includes(text));

/** The words of the text, joined across wrapped lines: the first column of each line (left pane). */
const left = (s: string) => s.split('\n').map((l) => l.split('│')[0]!.trim()).join(' ').replace(/\s+/g, ' ');

/** The right column (node, steering, prompt, result panes) at 80 columns. */
const right = (s: string) => s.split('\n').map((l) => l.split('│').slice(1).join('│')).join('\n');

afterEach(() => cleanup());

describe('layout', () => {
  it('fits every pane into 80×24', async () => {
    const { app } = await start();
    const s = screen(app);
    const lines = s.split('\n');
    expect(lines).toHaveLength(24);
    for (const l of lines) expect([...l].length, l).toBeLessThanOrEqual(80);
    for (const pane of ['sfc tui', 'Circuit 17 nodes', 'Effects by submodule', 'Node embed/err', 'Steering scale ×2', 'Prompt', 'Result', '? keys']) expect(s).toContain(pane);
    expect(lines[0]).toContain(' sfc tui  fake session · ');
    expect(lines[0]).toContain('small-a-circuit.json · 17 nodes · 34 edges');
  });

  it('lays itself out again when the terminal is resized', async () => {
    const { app } = await start();
    expect(screen(app)).not.toContain('resid_1/97');
    await resize(app, 120, 40);
    let s = await waitFor(app, (x) => x.split('\n').length === 40);
    for (const l of s.split('\n')) expect([...l].length).toBeLessThanOrEqual(120);
    expect(s).toContain('resid_1/97'); // the taller list shows the last layer too
    expect(s).toContain('mlp_1'); // and the chart every submodule
    await resize(app, 50, 15);
    s = await waitFor(app, 'terminal too small');
    expect(s).toContain('50×15');
    expect(s.replace(/\s+/g, ' ')).toContain('needs at least 60×18 (q quits)'); // wrapped, never cut
    for (const l of s.split('\n')) expect([...l].length).toBeLessThanOrEqual(50);
    await resize(app, 80, 24);
    s = await waitFor(app, 'Circuit 17 nodes');
    expect(s.split('\n')).toHaveLength(24);
  });

  it('says what is happening when there is no circuit', async () => {
    const session = new FakeSession({ prompt: PROMPT });
    const app = render(<App session={session} liveDelayMs={0} />);
    await resize(app, 80, 24);
    expect(await waitFor(app, 'No circuit yet: press D')).toContain('sfc tui  fake session · no circuit');
  });

  it('shows why a circuit file could not be opened', async () => {
    const session = new FakeSession({ prompt: PROMPT });
    const app = render(<App session={session} circuitPath={join(DATA, 'missing.json')} liveDelayMs={0} />);
    await resize(app, 80, 24);
    const s = await waitFor(app, 'could not open');
    expect(left(s)).toContain('circuit file');
    expect(left(s)).toContain('does not exist');
  });
});

describe('circuit pane', () => {
  it('groups nodes by submodule in forward order and sorts them by |effect|', async () => {
    const { app } = await start({ size: [100, 40] });
    const s = screen(app).split('\n').map((l) => l.split('│')[0]).join('\n');
    const at = (t: string) => s.indexOf(t);
    const order = ['embed 4', 'embed/err', 'embed/105', 'embed/54', 'embed/104', 'attn_0 2', 'attn_0/73', 'attn_0/24',
      'resid_0 4', 'resid_0/err', 'resid_0/21', 'resid_0/116', 'resid_0/74', 'attn_1 3', 'resid_1 4', 'resid_1/err', 'resid_1/8', 'y (metric)'];
    for (const t of order) expect(at(t), t).toBeGreaterThan(-1);
    expect(order.map(at)).toEqual([...order.map(at)].sort((a, b) => a - b));
    expect(linesWith(s, 'embed/54')[0]).toContain('-0.287');
    expect(linesWith(s, 'embed/54')[0]).toContain('singular noun');
    expect(linesWith(s, 'resid_1/err')[0]).toContain('SAE error');
    // Bars are scaled to the largest node (resid_1/err), not to y's total effect, which has none.
    expect(linesWith(s, 'resid_1/err')[0]).toMatch(/█{8}/);
    const y = s.split('\n').find((l) => /^ {2}y /.test(l))!;
    expect(y).toContain('+2.500');
    expect(y).not.toMatch(/[█▉▊▋▌▍▎▏]/);
  });

  it('moves the cursor with j/k, the arrows, PgDn/PgUp and g/G', async () => {
    const { app } = await start();
    await press(app, 'j');
    await waitFor(app, '› embed/105');
    await press(app, KEY.down);
    await waitFor(app, '› embed/54');
    await press(app, 'k');
    await waitFor(app, '› embed/105');
    await press(app, KEY.up);
    await waitFor(app, '› embed/err');
    await press(app, KEY.up); // stays on the first node
    await waitFor(app, '› embed/err');
    await press(app, KEY.pageDown); // a page is the list height − 3 = 12 nodes
    await waitFor(app, '› attn_1/56');
    await press(app, KEY.pageUp);
    await waitFor(app, '› embed/err');
    await press(app, 'G');
    let s = await waitFor(app, '› y');
    expect(s).toContain('y (metric)');
    expect(s).not.toContain('embed/err'); // scrolled
    await press(app, 'g');
    s = await waitFor(app, '› embed/err');
    await press(app, KEY.end);
    await waitFor(app, '› y');
    await press(app, KEY.home);
    await waitFor(app, '› embed/err');
  });

  it('filters by id and annotation with /, keeps the filter with Enter and clears it with Esc', async () => {
    const { app } = await start();
    await press(app, '/', 'plural');
    let s = await waitFor(app, (x) => x.includes('/plural▏') && x.includes('› resid_0/116'));
    expect(s).toContain('Enter keep');
    for (const id of ['resid_0/116', 'resid_1/8', 'resid_1/97']) expect(s).toContain(id);
    expect(s).not.toContain('embed/err');
    expect(s).toContain('› resid_0/116'); // the cursor moved to the first match
    expect(s).toContain('resid_1 2/4');
    await press(app, KEY.down); // arrows move while typing
    await waitFor(app, '› resid_1/8');
    await press(app, KEY.enter);
    s = await waitFor(app, (x) => x.includes('/plural') && !x.includes('/plural▏'));
    await press(app, 'j'); // normal keys again, over the filtered list
    await waitFor(app, '› resid_1/97');
    await press(app, '/', KEY.backspace, KEY.backspace, KEY.backspace, KEY.backspace, KEY.backspace, KEY.backspace, 'resid_1 subject', KEY.enter);
    s = await waitFor(app, 'Circuit 17 nodes /resid_1 subject ');
    expect(s).toContain('resid_1/8');
    expect(s).not.toContain('resid_1/97');
    await press(app, '/', KEY.escape, '/', 'zzz');
    await waitFor(app, 'no node matches "zzz"');
    await press(app, KEY.escape);
    s = await waitFor(app, 'embed/err');
    expect(s).not.toContain('/resid');
    expect(s).toContain('Circuit 17 nodes  / filter');
  });
});

describe('node pane', () => {
  it('shows the effect, annotation, strongest edges and the Neuronpedia link', async () => {
    const { app } = await start({ props: { neuronpedia: { modelId: 'pythia-70m-deduped' } } });
    await press(app, '/', 'resid_1/8', KEY.enter);
    const s = right(await waitFor(app, 'Node resid_1/8'));
    expect(s).toContain('Node resid_1/8  +0.2582  feature 8');
    expect(s).toContain('“plural subject noun”');
    // Incoming edges |weight| descending: resid_0/err 0.0752, attn_1/err 0.0623 (then resid_0/116 0.0508).
    const inLine = linesWith(s, 'in  ←')[0]!;
    expect(inLine).toContain('resid_0/err');
    expect(inLine).toContain('+0.075');
    expect(s.indexOf('attn_1/err')).toBeGreaterThan(s.indexOf('in  ←'));
    expect(linesWith(s, 'out →')[0]).toMatch(/out → y\s+\+0\.258/);
    // The link is wider than the pane: wrapped, never cut.
    expect(s).toContain('https://www.neuronpedia.org/pythia-70m-dedup');
    expect(s).toContain('ed/1-res-sm/8');
  });

  it('puts the link on one line and lists more edges in a larger terminal', async () => {
    const { app } = await start({ size: [120, 40], props: { neuronpedia: { modelId: 'pythia-70m-deduped', saeSet: 'att' } } });
    await press(app, '/', 'resid_1/8', KEY.enter);
    const s = await waitFor(app, 'https://www.neuronpedia.org/pythia-70m-deduped/1-res-att/8');
    expect(s).toContain('resid_0/116'); // the third incoming edge has room now
  });

  it('shows the top-activating contexts of the selected feature, the activating token whole', async () => {
    const topContexts = {
      'resid_1/8': [
        { value: 7.25, tokens: ['The', ' old', ' author', ' that', ' the', ' busy', ' pilots', ' like', ' are', '\n'], at: 6 },
        { value: 3.5, tokens: ['Some', ' parents'], at: 1 },
      ],
    };
    const { app } = await start({ session: { topContexts } });
    await press(app, '/', 'resid_1/8', KEY.enter);
    const s = right(await waitFor(app, '7.25'));
    expect(linesWith(s, '7.25')[0]).toContain(' pilots like');
    expect(linesWith(s, '3.50')[0]).toContain('Some parents');
    await press(app, '/', KEY.escape);
    await press(app, '/', 'resid_0/116', KEY.enter);
    await waitFor(app, 'resid_0/116 has no top contexts yet');
  });

  it('explains missing links: error nodes, the metric node, no model id', async () => {
    const { app } = await start();
    await waitFor(app, 'SAE error nodes have no Neuronpedia page');
    await press(app, 'j');
    await waitFor(app, 'give --model-id');
    await waitFor(app, 'no annotation');
    await press(app, 'G');
    const s = await waitFor(app, 'Node y  +2.5000  metric');
    expect(s).toContain('the metric node has no feature page');
    expect(linesWith(s, 'in  ←')[0]).toContain('resid_1/err');
    expect(linesWith(s, 'out →')[0]).toContain('(none)');
  });
});

describe('effects chart', () => {
  it('draws one bar per submodule with the summed effect, the selected node\'s submodule marked', async () => {
    const { app } = await start({ size: [100, 40] });
    const s = screen(app);
    // resid_1: 0.9406 + 0.2582 + 0.2356 − 0.1146 = 1.3198; mlp_0 has no node.
    const resid1 = linesWith(s, 'resid_1 ').find((l) => l.includes('█'))!;
    expect(resid1).toContain('+1.320');
    expect(linesWith(s, 'embed ').find((l) => l.includes('█'))).toContain('+0.699');
    expect(linesWith(s, 'mlp_0').find((l) => l.includes('·'))).toBeDefined();
    // The longest bar is the largest |effect| sum.
    const barLen = (l: string) => (l.match(/[█▉▊▋▌▍▎▏]/g) ?? []).length;
    const bars = s.split('\n').filter((l) => /^(embed|attn_\d|mlp_\d|resid_\d)\s+[█▉▊▋▌▍▎▏]/.test(l));
    expect(Math.max(...bars.map(barLen))).toBe(barLen(resid1));
  });
});

describe('steering panel and live result', () => {
  it('picks nodes with space, clears them with u', async () => {
    const { app } = await start();
    await press(app, ' ');
    let s = await waitFor(app, '›●embed/err');
    expect(s).toContain('picks (1) embed/err');
    expect(s).toContain('● picked');
    await press(app, 'j', ' ');
    await waitFor(app, 'picks (2) embed/err embed/105');
    await press(app, ' ');
    await waitFor(app, 'picks (1) embed/err');
    await press(app, 'u');
    s = await waitFor(app, 'picks (0)');
    expect(s).not.toContain('●');
  });

  it('runs live: metric before → after, top-5 next tokens and continuations', async () => {
    const { app, session } = await start();
    await press(app, 'j', ' ');
    const s = await waitFor(app, 'Δ');
    const after = METRIC_CLEAN + 0.2976; // embed/105 scaled ×2: pull 1
    expect(s).toContain(`logit-diff ${signed(METRIC_CLEAN)} → ${signed(after)}`);
    expect(s).toContain('showing 1 node scale ×2');
    for (const t of ['1 ·have', '2 ·has', '3 ·are', '4 ·is', '5 ·the']) expect(s).toContain(t);
    expect(s).toContain('before … the guards know have');
    expect(s).toContain('after  … scale 2 has');
    expect(s).toContain('KL(before‖after)');
    expect(session.steerRequests.at(-1)).toEqual({ prompt: PROMPT, nodes: ['embed/105'], op: { kind: 'scale', factor: 2 }, topK: 5, generate: 8 });
  });

  it('C calibrates the op’s strength on the prompt; the outcome row says on/off target and the fluency', async () => {
    const { app, session } = await start({ size: [120, 40] });
    await press(app, 'j', ' ');
    await waitFor(app, 'Δ');
    const result = await session.steer(session.steerRequests.at(-1)!, { signal: new AbortController().signal, onStatus: () => undefined });
    expect(outcomeText(result)).toMatch(/^KL\(before‖after\) [\d.]+ nats · off target · fluency -1\.25 → -1\.\d\d nats\/token$/);
    await press(app, 'C');
    await waitFor(app, 'calibrated: scale -1.5 is the smallest KL (2.25 nats) that puts " has" on top (16 strengths tried)');
    await waitFor(app, (x) => linesWith(x, 'Steering')[0]!.includes('scale ×-1.5'));
    expect(session.calibrateRequests.at(-1)).toMatchObject({ prompt: PROMPT, nodes: ['embed/105'], op: { kind: 'scale', factor: 2 } });
    await press(app, 'c', 'C');
    await waitFor(app, 'no clamp strength tried (21) puts " has" on top; strength unchanged');
    expect(linesWith(screen(app), 'Steering')[0]).toContain('clamp =0');
    await press(app, 'x', 'C');
    await waitFor(app, 'ablate has no strength to calibrate');
    expect(session.calibrateRequests).toHaveLength(2);
  });

  it('says when steering changed nothing (e.g. scaling a feature that is off)', async () => {
    const { app } = await start();
    await press(app, ' ', '-', '-'); // scale ×1: the fake's pull is 0
    const s = await waitFor(app, /showing 1 node scale ×1$/m);
    expect(s).toContain('no change: inactive here? try clamp or add');
    expect(s).toContain('Δ+0.000');
  });

  it('sets the op with o and s/c/x/a, and the strength with +/-', async () => {
    const { app, session } = await start();
    await waitFor(app, (x) => linesWith(x, 'Steering')[0]!.includes('scale ×2'));
    await press(app, 'o');
    await waitFor(app, (x) => linesWith(x, 'Steering')[0]!.includes('clamp =0'));
    await press(app, 'o');
    await waitFor(app, (x) => linesWith(x, 'Steering')[0]!.includes('ablate →0'));
    await press(app, '+'); // ablate has no strength
    await waitFor(app, (x) => linesWith(x, 'Steering')[0]!.includes('ablate →0'));
    await press(app, 'o');
    await waitFor(app, (x) => linesWith(x, 'Steering')[0]!.includes('add +2·dec'));
    await press(app, 'o');
    await waitFor(app, (x) => linesWith(x, 'Steering')[0]!.includes('scale ×2'));
    await press(app, '+');
    await waitFor(app, (x) => linesWith(x, 'Steering')[0]!.includes('scale ×2.5'));
    await press(app, '=');
    await waitFor(app, (x) => linesWith(x, 'Steering')[0]!.includes('scale ×3'));
    await press(app, '-', '-', '-');
    await waitFor(app, (x) => linesWith(x, 'Steering')[0]!.includes('scale ×1.5'));
    await press(app, 'c', '-');
    await waitFor(app, (x) => linesWith(x, 'Steering')[0]!.includes('clamp =-0.5'));
    await press(app, 'a', '_');
    await waitFor(app, (x) => linesWith(x, 'Steering')[0]!.includes('add +1.5·dec'));
    await press(app, 'x');
    await waitFor(app, (x) => linesWith(x, 'Steering')[0]!.includes('ablate →0'));
    await press(app, 's');
    await waitFor(app, (x) => linesWith(x, 'Steering')[0]!.includes('scale ×1.5')); // each op keeps its strength
    expect(session.steerRequests).toHaveLength(0); // nothing picked: nothing ran
  });

  it('reruns on every change while live, flips the answer, and stops with l', async () => {
    const { app, session } = await start();
    await press(app, 'j', ' ');
    await waitFor(app, 'Δ');
    await press(app, '+', '+'); // scale ×3: after = −0.3416 + 2 × 0.2976 > 0
    let s = await waitFor(app, 'showing 1 node scale ×3');
    expect(s).toContain(`→ ${signed(METRIC_CLEAN + 2 * 0.2976)}`);
    expect(right(s)).toMatch(/1 ·have .*│ 1 ·has/); // the preferred answer flipped after steering
    expect(session.steerRequests.at(-1)!.op).toEqual({ kind: 'scale', factor: 3 });
    await press(app, 'l');
    await waitFor(app, 'live off');
    const n = session.steerRequests.length;
    await press(app, '+');
    await sleep(50);
    expect(session.steerRequests).toHaveLength(n);
    await waitFor(app, 'r reruns');
    await press(app, 'r');
    await waitFor(app, 'showing 1 node scale ×3.5');
    expect(session.steerRequests).toHaveLength(n + 1);
    await press(app, '-', KEY.enter);
    await waitFor(app, 'showing 1 node scale ×3 ');
    expect(session.steerRequests).toHaveLength(n + 2);
  });

  it('shows a run in progress, cancels it when a newer one starts, and shows failures', async () => {
    const { app, session } = await start({ session: { manualSteer: true } });
    await press(app, 'j', ' ');
    let s = await waitFor(app, 'running 1 node scale ×2…');
    expect(s).toContain('Result running…');
    await press(app, '+'); // supersedes the waiting run
    await waitFor(app, 'running 1 node scale ×2.5…');
    expect(session.steerRequests).toHaveLength(2);
    session.finishSteer(); // the first, already cancelled
    session.finishSteer();
    s = await waitFor(app, 'showing 1 node scale ×2.5');
    expect(s).toContain(`→ ${signed(METRIC_CLEAN + 1.5 * 0.2976)}`);
    await press(app, '+');
    await waitFor(app, 'running');
    session.failSteer(new InputError('the answer " hav" is 2 tokens, not one', 'answers are single tokens'));
    s = await waitFor(app, 'steering failed');
    expect(linesWith(s, 'is 2 tokens')[0]).toContain('— an…'); // the status line is cut
    const rightWords = right(s).replace(/\s+/g, ' ');
    expect(rightWords).toContain('the answer " hav" is 2 tokens, not one — answers are single tokens'); // the result pane is not
    await press(app, '-');
    await waitFor(app, 'running 1 node scale ×2.5');
    session.finishSteer();
    s = await waitFor(app, 'showing 1 node scale ×2.5');
    expect(s).not.toContain('steering failed');
  });

  it('says why it cannot steer: no session support, no picks, no prompt, the metric node', async () => {
    let started = await start({ session: { unavailable: { steer: 'steering needs a model: start with --model DIR' } } });
    await press(started.app, ' ', 'r');
    await waitFor(started.app, 'steering needs a model');
    expect(started.session.steerRequests).toHaveLength(0);
    cleanup();
    started = await start({ session: { prompt: { text: '', answer: '', patchAnswer: '' } } });
    await waitFor(started.app, 'space picks the node under the cursor');
    await press(started.app, ' ');
    await waitFor(started.app, 'p: type a prompt to steer on');
    await press(started.app, 'r');
    await waitFor(started.app, 'p: type a prompt');
    await press(started.app, 'G', ' ');
    await waitFor(started.app, 'y is the metric node');
    expect(started.session.steerRequests).toHaveLength(0);
  });
});

describe('prompt pane', () => {
  it('shows the prompt and its answers', async () => {
    const { app } = await start();
    const s = screen(app);
    expect(s).toContain('Prompt "·have" vs "·has"');
    expect(s).toContain('The parents that the guards know');
  });

  it('edits the prompt and answers with p, Tab, Backspace, Ctrl+U and Enter; reruns', async () => {
    const { app, session } = await start();
    await press(app, ' ', 'p');
    let s = await waitFor(app, 'Prompt editing');
    expect(s).toContain('prompt The parents that the guards know');
    expect(s).toContain('answer  have'); // the label, then the answer with its leading space
    await press(app, KEY.backspace, KEY.backspace, KEY.backspace, KEY.backspace, 'like');
    await press(app, KEY.tab, KEY.ctrlU, ' are', KEY.tab, KEY.ctrlU, ' is', KEY.enter);
    s = await waitFor(app, 'Prompt "·are" vs "·is"');
    expect(s).toContain('The parents that the guards like');
    await waitFor(app, () => session.steerRequests.some((r) => r.prompt.text.endsWith('like')));
    expect(session.steerRequests.at(-1)!.prompt).toEqual({ text: 'The parents that the guards like', answer: ' are', patchAnswer: ' is' });
  });

  it('keeps every key of a chunk: Tab at once followed by Ctrl+U clears the next field', async () => {
    const { app, session } = await start();
    await press(app, 'p');
    await waitFor(app, 'Prompt editing');
    app.stdin.write(`${KEY.tab}${KEY.ctrlU} are${KEY.tab}${KEY.ctrlU} is`); // one chunk, as tmux send-keys or a paste delivers it
    await press(app, KEY.enter);
    await waitFor(app, 'Prompt "·are" vs "·is"');
    await press(app, ' ');
    await waitFor(app, () => session.steerRequests.some((r) => r.prompt.answer === ' are' && r.prompt.patchAnswer === ' is'));
  });

  it('cancels edits with Esc; keys typed while editing are text', async () => {
    const { app } = await start();
    await press(app, 'p', ' qjD?', KEY.escape);
    const s = await waitFor(app, 'Prompt "·have"');
    expect(s).toContain('The parents that the guards know');
    expect(s).not.toContain('qjD');
    expect(s).not.toContain('Discovery');
  });

  it('shows a missing answer as no metric', async () => {
    const { app } = await start({ session: { prompt: { text: 'The parents', answer: '', patchAnswer: '' } } });
    await press(app, ' ');
    const s = await waitFor(app, 'no metric (give an answer)');
    expect(s).toContain('no answer: no metric');
  });
});

describe('discovery job view', () => {
  it('shows progress per stage, then the new circuit', async () => {
    let t = 1_000;
    const { app, session } = await start({ props: { now: () => t } });
    await press(app, 'j', ' ', 'D');
    let s = await waitFor(app, 'Discovery running 0:00');
    expect(s).toContain('loading the model');
    expect(s).toContain('Esc cancel');
    expect(s).toContain('steering waits for the discovery job');
    session.progress({ stage: 'batches', done: 1, total: 2 });
    t += 4_000;
    session.progress({ stage: 'edges', done: 3, total: 10, detail: 'resid_0→resid_1' });
    s = await waitFor(app, 'edges resid_0→resid_1');
    // At 80 columns the bar shrinks to the pane, so the counts and the ETA are whole.
    expect(s).toMatch(/\[(█+)(░+)\] 1\/2 50% ETA (\d+:\d\d|--:--)/);
    expect(s).toMatch(/\[█+░+\] 3\/10 30% ETA (\d+:\d\d|--:--)/);
    const [, on, off] = /\[(█+)(░+)\] 1\/2/.exec(s)!;
    expect(Math.abs(on!.length - off!.length)).toBeLessThanOrEqual(1);
    await press(app, 'r');
    await waitFor(app, 'steering waits for the discovery job to finish');
    await press(app, 'D');
    await waitFor(app, 'discovery is already running');
    t += 71_000;
    session.finishDiscovery();
    s = await waitFor(app, 'Discovery done in 1:15');
    expect(s).toContain('5 nodes, 7 edges');
    expect(s).toContain('small-a-circuit-2.json');
    expect(s).toContain('Circuit 5 nodes');
    expect(s).toContain('picks (0)'); // embed/105 is not in the new circuit
    await press(app, KEY.escape);
    s = await waitFor(app, 'Result');
    expect(s).not.toContain('Discovery');
  });

  it('cancels with Esc and reports failures', async () => {
    const { app, session } = await start();
    await press(app, 'D');
    await waitFor(app, 'Discovery running');
    await press(app, KEY.escape);
    await waitFor(app, 'Discovery cancelled after');
    expect(session.discovering).toBe(false);
    await press(app, 'D');
    await waitFor(app, 'Discovery running');
    session.failDiscovery(new InputError('data file d.jsonl does not exist', 'pass --data FILE'));
    const s = await waitFor(app, 'Discovery failed after');
    expect(left(s.split('\n').map((l) => l.split('│')[1] ?? '').join('\n'))).toContain('data file d.jsonl does not exist — pass --data FILE');
    expect(s).toContain('Circuit 17 nodes'); // the old circuit stays
  });

  it('says it is cancelling at once, and cancelled as soon as the work stops at its next unit', async () => {
    let t = 1_000;
    const { app, session } = await start({ session: { cancelBetweenUnits: true }, props: { now: () => t } });
    await press(app, 'D');
    session.progress({ stage: 'batches', done: 1, total: 4 });
    await waitFor(app, '1/4');
    t += 2_000;
    await press(app, KEY.escape);
    let s = await waitFor(app, 'Discovery cancelling… 0:02', 200);
    expect(s).not.toContain('Esc cancel');
    expect(session.discovering).toBe(true); // the unit in flight runs on
    await press(app, 'D');
    await waitFor(app, 'the cancelled discovery is still stopping');
    t += 1_000;
    session.progress({ stage: 'batches', done: 2, total: 4 }); // the next unit: core's check throws instead
    s = await waitFor(app, 'Discovery cancelled after 0:03', 200);
    expect(s).not.toContain('2/4');
    expect(session.discovering).toBe(false);
    await press(app, 'D');
    await waitFor(app, 'Discovery running');
  });

  it('says why discovery cannot run', async () => {
    const { app, session } = await start({ session: { unavailable: { discover: 'discovery needs prompt pairs: start with --data FILE' } } });
    await press(app, 'D');
    await waitFor(app, 'discovery needs prompt pairs');
    expect(session.discovering).toBe(false);
  });
});

describe('help and quitting', () => {
  it('? shows every key at 80×24; the next key only closes it', async () => {
    const { app } = await start();
    await press(app, '?');
    const s = await waitFor(app, 'Keys  any key closes');
    expect(s.split('\n')).toHaveLength(24);
    for (const g of KEYMAP) {
      expect(s).toContain(g.title);
      for (const k of g.keys) expect(s, k.keys).toContain(k.keys);
    }
    await press(app, 'j');
    const after = await waitFor(app, (x) => !x.includes('any key closes'));
    expect(after).toContain('› embed/err'); // j closed the help without moving
  });

  it('q quits', async () => {
    const { app } = await start();
    await press(app, 'q');
    const frames = app.frames.length;
    await press(app, 'j', '?');
    expect(app.frames.length).toBe(frames);
  });

  it('Ctrl+C quits and cancels a running job', async () => {
    const { app, session } = await start();
    await press(app, 'D');
    await waitFor(app, 'Discovery running');
    expect(session.discovering).toBe(true);
    await press(app, '\u0003');
    await sleep(20);
    expect(session.discovering).toBe(false);
    const frames = app.frames.length;
    await press(app, 'j');
    expect(app.frames.length).toBe(frames);
  });

  it('handles keys that arrive in one chunk one by one', async () => {
    const { app } = await start();
    app.stdin.write('jj ');
    await sleep(50);
    const s = await waitFor(app, 'picks (1)');
    expect(s).toContain('›●embed/54');
  });
});
