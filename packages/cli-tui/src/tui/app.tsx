// The terminal UI: lays the panes out for the terminal size, maps keys to state changes, and
// runs the session's async work — loading the circuit, steering (rerun live on every change,
// older runs cancelled) and discovery jobs with progress. All work goes through the injected
// TuiSession, so the same component runs against a model or against a test fake.
/* @jsxRuntime automatic */ // for tsx runs from source: the root tsconfig has no "jsx" setting

import { basename, relative } from 'node:path';
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import { Box, Text, useApp, useInput, type Key } from 'ink';
import { METRIC_NODE, type Circuit, type ProgressEvent } from '@sfc/core';
import { circuitRows, nodeRows, annotationOf, type Annotations, type NeuronpediaOptions } from './circuit-view.js';
import { describeError } from './format.js';
import { computeLayout } from './layout.js';
import { CancelledError, type SteerRequest, type SteerResult, type TuiSession } from './session.js';
import { describeSettings, toSteerOp, type TuiOp } from './steer-settings.js';
import { INITIAL_STATE, reduce, type Action, type UiState } from './ui-state.js';
import { useTerminalSize } from './use-terminal-size.js';
import { useCalibration } from './use-calibration.js';
import { CircuitPane } from './panes/circuit-pane.js';
import { EffectsChart } from './panes/effects-chart.js';
import { HelpOverlay } from './panes/help-overlay.js';
import { addProgress, JobPane, type Job } from './panes/job-pane.js';
import { Line } from './panes/line.js';
import { NodePane } from './panes/node-pane.js';
import { splitKeys } from './key-chunks.js';
import { useTopContexts } from './use-top-contexts.js';
import { PromptPane } from './panes/prompt-pane.js';
import { ResultPane } from './panes/result-pane.js';
import { SteeringPane, type SteerStatus } from './panes/steering-pane.js';

export interface AppProps {
  readonly session: TuiSession;
  /** Circuit file to open at start (through the session). */
  readonly circuitPath?: string;
  readonly annotations?: Annotations;
  readonly neuronpedia?: NeuronpediaOptions;
  /** Next tokens listed per side (default 5). */
  readonly topK?: number;
  /** Continuation tokens per side (default 8; 0 skips generation). */
  readonly generate?: number;
  /** Live mode waits this long after the last change before running (default 250 ms). */
  readonly liveDelayMs?: number;
  /** Clock in ms (tests inject one). */
  readonly now?: () => number;
}

interface CircuitState {
  readonly circuit?: Circuit;
  readonly label: string;
  readonly loading: boolean;
  readonly error?: string;
}

interface SteerState {
  readonly running: boolean;
  /** What the run in flight steers (the settings may have moved on since). */
  readonly runningSummary?: string;
  readonly result?: SteerResult;
  /** What the shown result was for. */
  readonly summary?: string;
  readonly error?: string;
}

interface Message {
  readonly text: string;
  readonly kind: 'info' | 'error';
  /** A session status line ("loading the model…"): cleared when the operation ends. */
  readonly transient?: boolean;
}

const OP_KEYS: Record<string, TuiOp> = { s: 'scale', c: 'clamp', x: 'ablate', a: 'add' };

function isPrintable(input: string, key: Key): boolean {
  return input.length > 0 && !key.ctrl && !key.meta && !key.return && !key.escape && !key.tab && !/[\u0000-\u001f\u007f]/.test(input);
}

/** Why the current state cannot be steered, or undefined when it can. */
function steerBlocker(session: TuiSession, ui: UiState): string | undefined {
  if (session.unavailable.steer) return session.unavailable.steer;
  if (ui.picks.length === 0) return 'space picks the node under the cursor for steering';
  if (!ui.prompt.text) return 'p: type a prompt to steer on';
  return undefined;
}

export function App(props: AppProps) {
  const { session, annotations } = props;
  const topK = props.topK ?? 5;
  const generate = props.generate ?? 8;
  const liveDelay = props.liveDelayMs ?? 250;
  const clock = props.now ?? Date.now;
  const { exit } = useApp();
  const size = useTerminalSize();
  const [ui, dispatch] = useReducer(reduce, INITIAL_STATE);
  const uiRef = useRef(ui);
  uiRef.current = ui;
  const [cs, setCs] = useState<CircuitState>({ label: props.circuitPath !== undefined ? displayPath(props.circuitPath) : 'no circuit', loading: props.circuitPath !== undefined });
  const [steer, setSteer] = useState<SteerState>({ running: false });
  const [job, setJob] = useState<Job | undefined>();
  const [message, setMessage] = useState<Message | undefined>();
  const [now, setNow] = useState(() => clock());
  const steerRun = useRef<AbortController | undefined>(undefined);
  const jobRun = useRef<AbortController | undefined>(undefined);
  const jobRunning = job?.status === 'running';

  const info = useCallback((text: string) => setMessage({ text, kind: 'info' }), []);
  // Session status lines; warnings stay until the next key, progress notes go when the work ends.
  const status = useCallback((text: string) => setMessage({ text, kind: 'info', transient: !/^warning\b/i.test(text) }), []);
  const clearStatus = useCallback(() => setMessage((m) => (m?.transient ? undefined : m)), []);

  const showCircuit = useCallback((circuit: Circuit, label: string) => {
    session.setCircuit(circuit);
    setCs({ circuit, label, loading: false });
    dispatch({ type: 'keepPicks', ids: new Set(circuit.nodes.map((n) => n.id)) });
  }, [session]);

  // Start: open the circuit and fetch the default prompt.
  useEffect(() => {
    const controller = new AbortController();
    if (props.circuitPath !== undefined) {
      const path = props.circuitPath;
      session.loadCircuit(path, { signal: controller.signal, onStatus: status }).then(
        (c) => { if (!controller.signal.aborted) { clearStatus(); showCircuit(c, displayPath(path)); } },
        (e: unknown) => { if (!controller.signal.aborted) setCs({ label: displayPath(path), loading: false, error: describeError(e) }); },
      );
    }
    session.defaultPrompt().then(
      (prompt) => { if (!controller.signal.aborted && !uiRef.current.prompt.text && uiRef.current.mode !== 'prompt') dispatch({ type: 'setPrompt', prompt }); },
      (e: unknown) => { if (!controller.signal.aborted) setMessage({ text: describeError(e), kind: 'error' }); },
    );
    return () => controller.abort();
    // Once per session: a new circuit path means a new App.
  }, [session]);

  // Cancel whatever runs when the UI goes away.
  useEffect(() => () => { steerRun.current?.abort(); jobRun.current?.abort(); }, []);

  const circuit = cs.circuit;
  const rows = useMemo(() => (circuit ? circuitRows(circuit, annotations, ui.filter) : []), [circuit, annotations, ui.filter]);
  const ids = useMemo(() => nodeRows(rows).map((r) => r.node.id), [rows]);
  useEffect(() => { dispatch({ type: 'sync', ids }); }, [ids]);
  const selectedNode = circuit?.nodes.find((n) => n.id === ui.selected);
  const topContexts = useTopContexts(session, circuit, selectedNode);

  const runSteer = useCallback(() => {
    const s = uiRef.current;
    if (steerBlocker(session, s)) return;
    steerRun.current?.abort();
    const controller = new AbortController();
    steerRun.current = controller;
    const request: SteerRequest = { prompt: s.prompt, nodes: s.picks, op: toSteerOp(s.settings), topK, generate };
    const summary = `${s.picks.length} node${s.picks.length === 1 ? '' : 's'} ${describeSettings(s.settings)}`;
    setSteer((prev) => ({ ...prev, running: true, runningSummary: summary, error: undefined }));
    session.steer(request, { signal: controller.signal, onStatus: status }).then(
      (result) => {
        if (steerRun.current !== controller) return;
        steerRun.current = undefined;
        clearStatus();
        setSteer({ running: false, result, summary });
      },
      (e: unknown) => {
        if (steerRun.current !== controller) return; // superseded by a newer run
        steerRun.current = undefined;
        clearStatus();
        setSteer((prev) => ({ ...prev, running: false, error: e instanceof CancelledError ? undefined : describeError(e) }));
      },
    );
  }, [session, topK, generate, status, clearStatus]);

  // Live mode: rerun shortly after the picks, op, strength or prompt change.
  const requestKey = JSON.stringify([ui.picks, ui.settings, ui.prompt]);
  useEffect(() => {
    if (!ui.live || jobRunning || steerBlocker(session, uiRef.current)) return;
    const t = setTimeout(runSteer, liveDelay);
    return () => clearTimeout(t);
  }, [requestKey, ui.live, jobRunning, runSteer, liveDelay, session]);

  const calibrateNow = useCalibration({
    session, state: () => uiRef.current, send: (a) => send(a), blocked: () => (jobRunning ? 'calibration waits for the discovery job to finish' : steerBlocker(session, uiRef.current)),
    say: (text, kind) => setMessage({ text, kind }), status, topK,
  });

  const startDiscovery = useCallback(() => {
    if (session.unavailable.discover) { setMessage({ text: session.unavailable.discover, kind: 'error' }); return; }
    if (jobRun.current) { info(jobRun.current.signal.aborted ? 'the cancelled discovery is still stopping' : 'discovery is already running (Esc cancels it)'); return; }
    steerRun.current?.abort();
    steerRun.current = undefined;
    setSteer((prev) => ({ ...prev, running: false }));
    const controller = new AbortController();
    jobRun.current = controller;
    const start = clock();
    setNow(start);
    setJob({ status: 'running', start, stages: [] });
    const update = (f: (j: Extract<Job, { status: 'running' }>) => Job) =>
      setJob((j) => (j && j.status === 'running' && jobRun.current === controller ? f(j) : j));
    session.discover({
      signal: controller.signal,
      onStatus: (note) => update((j) => ({ ...j, note })),
      onProgress: (event: ProgressEvent) => update((j) => ({ ...j, stages: addProgress(j.stages, event, clock()) })),
    }).then(
      (outcome) => {
        const end = clock();
        jobRun.current = undefined;
        const nodes = outcome.circuit.nodes.filter((n) => n.submodule !== METRIC_NODE).length;
        const summary = `${nodes} nodes, ${outcome.circuit.edges.length} edges${outcome.path ? ` → ${outcome.path}` : ''}`;
        setJob((j) => (j ? { status: 'done', start: j.start, end, stages: j.stages, summary } : j));
        showCircuit(outcome.circuit, outcome.path ? displayPath(outcome.path) : 'discovered circuit');
        info(`discovered ${summary}`);
      },
      (e: unknown) => {
        const end = clock();
        jobRun.current = undefined;
        setJob((j) => (j ? (e instanceof CancelledError || controller.signal.aborted
          ? { status: 'cancelled', start: j.start, end, stages: j.stages }
          : { status: 'failed', start: j.start, end, stages: j.stages, error: describeError(e) }) : j));
      },
    );
  }, [session, clock, info, showCircuit]);

  // Esc: the signal reaches core's discover, which stops at its next unit of work (a batch, a chunk
  // of IG steps, an edge chunk); until the session's promise settles the job says it is cancelling.
  const cancelJob = useCallback(() => {
    const controller = jobRun.current;
    if (!controller || controller.signal.aborted) return;
    controller.abort();
    setNow(clock());
    setJob((j) => (j && j.status === 'running' ? { ...j, cancelling: true } : j));
  }, [clock]);

  // The job view's clock ticks while the job runs.
  useEffect(() => {
    if (!jobRunning) return;
    const t = setInterval(() => setNow(clock()), 1000);
    return () => clearInterval(t);
  }, [jobRunning, clock]);

  const layout = computeLayout(size.columns, size.rows, circuit?.submodules.length ?? 0);
  const page = Math.max(1, layout.circuitRows - 3);

  // Keys update uiRef at once (and React's state through dispatch), so every key of a chunk
  // — a fast typist, a paste, tmux send-keys — sees the state the keys before it left.
  const send = (action: Action) => {
    uiRef.current = reduce(uiRef.current, action);
    dispatch(action);
  };

  const handleKey = (input: string, key: Key) => {
    const s = uiRef.current;
    if (s.mode === 'help') { send({ type: 'help', open: false }); return; }
    if (s.mode === 'filter') {
      if (key.escape) send({ type: 'filterClear' });
      else if (key.return) send({ type: 'filterKeep' });
      else if (key.backspace || key.delete) send({ type: 'filterBackspace' });
      else if (key.downArrow) send({ type: 'move', ids, delta: 1 });
      else if (key.upArrow) send({ type: 'move', ids, delta: -1 });
      else if (isPrintable(input, key)) send({ type: 'filterType', text: input });
      return;
    }
    if (s.mode === 'prompt') {
      if (key.escape) send({ type: 'promptCancel' });
      else if (key.return) send({ type: 'promptDone' });
      else if (key.tab) send({ type: 'promptNextField' });
      else if (key.backspace || key.delete) send({ type: 'promptBackspace' });
      else if (key.ctrl && input === 'u') send({ type: 'promptClearField' });
      else if (isPrintable(input, key)) send({ type: 'promptType', text: input });
      return;
    }
    setMessage(undefined);
    if (input === 'q' || (key.ctrl && input === 'c')) {
      steerRun.current?.abort();
      jobRun.current?.abort();
      exit();
    } else if (input === '?') send({ type: 'help', open: true });
    else if (input === 'j' || key.downArrow) send({ type: 'move', ids, delta: 1 });
    else if (input === 'k' || key.upArrow) send({ type: 'move', ids, delta: -1 });
    else if (key.pageDown) send({ type: 'move', ids, delta: page });
    else if (key.pageUp) send({ type: 'move', ids, delta: -page });
    else if (input === 'g' || key.home) send({ type: 'moveTo', ids, where: 'first' });
    else if (input === 'G' || key.end) send({ type: 'moveTo', ids, where: 'last' });
    else if (input === '/') send({ type: 'filterStart' });
    else if (input === ' ') {
      if (s.selected === undefined) info('no node to pick');
      else if (s.selected === METRIC_NODE) info('y is the metric node: pick features or error nodes');
      else send({ type: 'togglePick', id: s.selected });
    } else if (input === 'u') send({ type: 'clearPicks' });
    else if (input === 'o') send({ type: 'nextOp' });
    else if (OP_KEYS[input]) send({ type: 'setOp', op: OP_KEYS[input]! });
    else if (input === '+' || input === '=') send({ type: 'bump', steps: 1 });
    else if (input === '-' || input === '_') send({ type: 'bump', steps: -1 });
    else if (input === 'l') send({ type: 'toggleLive' });
    else if (input === 'p') send({ type: 'promptEdit' });
    else if (input === 'r' || key.return) {
      const why = jobRunning ? 'steering waits for the discovery job to finish' : steerBlocker(session, s);
      if (why) info(why);
      else runSteer();
    } else if (input === 'C') calibrateNow();
    else if (input === 'D') startDiscovery();
    else if (key.escape) {
      if (jobRun.current) cancelJob();
      else if (job) setJob(undefined);
    }
  };

  useInput((input, key) => {
    // Ink hands over several plain characters as one input: handle them one by one.
    if ([...input].length > 1 && !key.ctrl && !key.meta && !key.escape) {
      for (const [ch, k] of splitKeys(input)) handleKey(ch, k);
    } else {
      handleKey(input, key);
    }
  });

  if (layout.tooSmall) {
    // Wrapped, not cut: the message must be readable in the terminal it complains about.
    return <Box width={size.columns} flexDirection="column"><Text color="redBright" wrap="wrap">{`terminal too small: ${size.columns}×${size.rows}; sfc tui needs at least 60×18 (q quits)`}</Text></Box>;
  }

  const body = size.rows - 2;
  const editing = ui.mode === 'prompt';
  const promptRows = editing ? layout.promptRows + 2 : layout.promptRows;
  const resultRows = Math.max(0, layout.resultRows - (promptRows - layout.promptRows));
  const steerStatus: SteerStatus = session.unavailable.steer ? { kind: 'hint', text: session.unavailable.steer }
    : jobRunning ? { kind: 'hint', text: 'steering waits for the discovery job' }
    : steer.running ? { kind: 'running', text: `running ${steer.runningSummary ?? ''}…` }
    : steer.error ? { kind: 'error', text: steer.error }
    : steerBlocker(session, ui) ? { kind: 'hint', text: steerBlocker(session, ui)! }
    : steer.summary ? { kind: 'ok', text: `showing ${steer.summary}${ui.live ? '' : ' · r reruns'}` }
    : { kind: 'hint', text: ui.live ? 'starting…' : 'r runs steering' };
  const circuitEmpty = cs.loading ? `loading ${cs.label}…`
    : cs.error ? `could not open ${cs.label}: ${cs.error}`
    : session.unavailable.discover ? `No circuit. Start with \`sfc tui circuit.json\`. (${session.unavailable.discover})`
    : 'No circuit yet: press D to discover one.';
  const resultEmpty = session.unavailable.steer ?? 'Pick nodes (space), set the op (o) and strength (+/-): the next-token picture before and after steering appears here.';

  return (
    <Box flexDirection="column" width={size.columns} height={size.rows} overflow="hidden">
      <Line width={size.columns}>
        <Text bold inverse>{' sfc tui '}</Text>
        {/* The model first: a long circuit path must not push it off an 80-column header. */}
        <Text>{` ${session.description} ·`}</Text>
        <Text>{` ${basename(cs.label)}`}</Text>
        {circuit ? <Text dimColor>{` · ${circuit.nodes.filter((n) => n.submodule !== METRIC_NODE).length} nodes · ${circuit.edges.length} edges · ${circuit.method} ${circuit.aggregation}`}</Text> : null}
      </Line>
      {ui.mode === 'help' ? <HelpOverlay width={size.columns} height={body} /> : (
        <Box flexDirection="row" width={size.columns} height={body} overflow="hidden">
          <Box flexDirection="column" width={layout.leftWidth - 1} height={body} overflow="hidden">
            <CircuitPane width={layout.leftWidth - 1} height={layout.circuitRows} circuit={circuit} empty={circuitEmpty} rows={rows}
              selected={ui.selected} picks={new Set(ui.picks)} filter={ui.filter} filtering={ui.mode === 'filter'} />
            <EffectsChart width={layout.leftWidth - 1} height={layout.chartRows} circuit={circuit} selectedSubmodule={selectedNode?.submodule} />
          </Box>
          <Box width={1} height={body} borderStyle="single" borderTop={false} borderBottom={false} borderRight={false} borderDimColor />
          <Box flexDirection="column" width={layout.rightWidth} height={body} overflow="hidden">
            <NodePane width={layout.rightWidth} height={layout.nodeRows} circuit={circuit} node={selectedNode}
              annotation={selectedNode ? annotationOf(annotations, selectedNode.id) : undefined}
              picked={selectedNode !== undefined && ui.picks.includes(selectedNode.id)} neuronpedia={props.neuronpedia ?? {}}
              contexts={topContexts} showContexts={session.topContexts !== undefined && topContexts !== undefined} />
            <SteeringPane width={layout.rightWidth} height={layout.steerRows} settings={ui.settings} live={ui.live} picks={ui.picks} status={steerStatus} />
            <PromptPane width={layout.rightWidth} height={promptRows} prompt={ui.prompt} editing={editing} draft={ui.draft} field={ui.field} />
            {job
              ? <JobPane width={layout.rightWidth} height={resultRows} job={job} now={now} />
              : <ResultPane width={layout.rightWidth} height={resultRows} result={steer.result} running={steer.running} empty={resultEmpty}
                  {...(steer.error !== undefined ? { error: steer.error } : {})} />}
          </Box>
        </Box>
      )}
      <Line width={size.columns}>
        {message
          ? <Text color={message.kind === 'error' ? 'redBright' : 'cyan'}>{message.text}</Text>
          : <Text dimColor>{hints(ui)}</Text>}
      </Line>
    </Box>
  );
}

/** A path as short as possible: relative to the working folder when that is shorter. */
function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && rel.length < path.length ? rel : path;
}

function hints(ui: UiState): string {
  switch (ui.mode) {
    case 'filter': return 'type to filter · ↑/↓ move · Enter keep · Esc clear';
    case 'prompt': return 'type · Tab next field · Ctrl+U clear field · Enter done · Esc cancel';
    case 'help': return 'any key closes the help';
    case 'normal': return '? keys · / filter · space pick · o op · +/- · p prompt · D discover · q quit';
  }
}
