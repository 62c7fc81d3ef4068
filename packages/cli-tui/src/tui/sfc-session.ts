// The real TuiSession: the CLI's config → backend → model chain (Session), dictionaries loaded
// per submodule on first use and kept, @sfc/steering for steered scoring and generation, and
// core's discover for jobs. Operations run one at a time (they share one backend, whose tensor
// scopes must not interleave). Nothing here prints: status lines and progress go to the
// callbacks of each operation, which the UI shows.

import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import {
  buildCircuit, contentHash, detectData, dictionaryFolder, discover, InputError, modelDisplayName, serializeCircuit, splitLines,
  type Circuit, type Dictionary, type Model, type ProgressEvent,
} from '@sfc/core';
import {
  ALL_POSITIONS, calibrate, checkCircuitDictionaries, featureId, compareBatch, continuationLogProbs, generate, interventionsFor, parseFeatureId,
  readCircuitFile, Steering, type NextTokenView, type ScoreBatch,
} from '@sfc/steering';
import type { EffectiveConfig } from '../config/config.js';
import { loadModelDictionaries } from '../dictionaries.js';
import type { CliIO, OutStream } from '../io.js';
import type { OptionId } from '../options.js';
import type { ProgressReporter } from '../progress.js';
import { withRunInputs } from '../run-inputs.js';
import { resolveCommandConfig, Session } from '../session.js';
import type { GlobalArgs } from '../commands/command.js';
import { readTopContextsFor, topContextsDir } from '../top-contexts.js';
import { checkOutputPath, writeFileAtomic } from '../write-atomic.js';
import {
  EMPTY_PROMPT, throwIfAborted,
  type CalibrationResult, type DiscoveryOutcome, type PromptInput, type RunContext, type SteerRequest, type SteerResult, type SteerSide, type TopContextsView, type TuiSession,
} from './session.js';

/**
 * Strengths the TUI's calibration scores first (then bisects): scale factors, and clamp values /
 * added α on a symmetric log grid (their useful range depends on the features' activations).
 */
const TUI_GRIDS = {
  scale: [-8, -4, -2, -1, -0.5, 0, 0.5, 2, 4, 8],
  clamp: [-64, -32, -16, -8, -4, -2, -1, 0, 1, 2, 4, 8, 16, 32, 64],
  add: [-64, -32, -16, -8, -4, -2, -1, 0, 1, 2, 4, 8, 16, 32, 64],
} as const;

/** Config-backed flags of `sfc tui` (the model and dictionaries for steering, the rest for discovery). */
export const TUI_OPTIONS: readonly OptionId[] = [
  'model', 'dictionaries', 'submodules', 'data', 'annotations', 'topContexts', 'backend', 'steps', 'aggregation', 'nodeThreshold', 'edgeThreshold', 'numExamples', 'batchSize', 'seed', 'minLengthOnly',
];

export const DEFAULT_DISCOVERY_OUT = 'tui-circuit.json';

export interface SfcSessionOptions {
  /** Prompt to start with (else the first example of the data file). */
  readonly prompt?: string;
  readonly answer?: string;
  readonly patchAnswer?: string;
  /** Where discovery writes its circuit (default tui-circuit.json in the working folder). */
  readonly out?: string;
}

/** The CLI session with its status lines and progress routed to the operation that runs. */
class RoutedSession extends Session {
  onStatus: (line: string) => void = () => undefined;
  onProgress: (event: ProgressEvent) => void = () => undefined;
  private loaded: Promise<Model> | undefined;

  override progress(): ProgressReporter {
    return { onProgress: (e) => this.onProgress(e), finish: () => undefined };
  }

  /** One model for the whole session (discovery reuses the one steering loaded). */
  override model(needs: readonly string[] = []): Promise<Model> {
    if (!this.loaded) {
      const p = super.model(needs);
      this.loaded = p;
      p.catch(() => { if (this.loaded === p) this.loaded = undefined; });
    }
    return this.loaded;
  }

  get modelLoaded(): boolean {
    return this.loaded !== undefined;
  }
}

function lineStream(sink: (line: string) => void): OutStream {
  return { write: (text) => { for (const l of text.split('\n')) if (l.trim()) sink(l.trim()); }, isTTY: false };
}

function oneToken(model: Model, text: string, what: string): Int32Array {
  const ids = model.tokenizer.encode(text);
  if (ids.length !== 1) {
    throw new InputError(`the ${what} ${JSON.stringify(text)} is ${ids.length} tokens, not one`, 'answers are single tokens, usually with their leading space (e.g. " are")');
  }
  return Int32Array.of(ids[0]!);
}

/** A side's logit diff and answer logit as SteerSide defines them (`sfc steer`'s sign), not discovery's metric. */
function answerLogits(v: NextTokenView): Pick<SteerSide, 'logitDiff' | 'answerLogit'> {
  return { ...(v.logitDiff !== undefined ? { logitDiff: v.logitDiff } : {}), ...(v.cleanLogit !== undefined ? { answerLogit: v.cleanLogit } : {}) };
}

export class SfcTuiSession implements TuiSession {
  readonly description: string;
  readonly unavailable: TuiSession['unavailable'];
  private readonly dictionaries = new Map<string, Dictionary>();
  /** Content hashes of SAE folders, computed once per folder. */
  private readonly saeHashes = new Map<string, Promise<string>>();
  private circuit: Circuit | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** The unsteered continuation of the last prompt (it does not depend on the steering). */
  private baseline: { readonly key: string; readonly text: string; readonly ids: readonly number[] } | undefined;

  private constructor(private readonly cli: RoutedSession, private readonly config: EffectiveConfig, private readonly options: SfcSessionOptions, modelName: string | undefined) {
    const model = config.get<string>('model');
    const hasDictionaries = config.get('dictionaries.folder') !== undefined || Object.keys(config.get<Record<string, string>>('dictionaries.submodules') ?? {}).length > 0;
    const steer = model === undefined ? 'steering needs a model: start with --model DIR --dictionaries DIR (or set them in sfc.config.json)'
      : !hasDictionaries ? 'steering needs SAEs: start with --dictionaries DIR (or set dictionaries.folder in sfc.config.json)'
      : undefined;
    const discover = steer ?? (config.get('data') === undefined ? 'discovery needs prompt pairs: start with --data FILE (or set data in sfc.config.json)' : undefined);
    this.unavailable = { ...(steer ? { steer } : {}), ...(discover ? { discover } : {}) };
    const backend = config.get<string | string[]>('backend');
    this.description = model === undefined ? 'no model (browsing only)'
      : `${modelName ?? basename(model)} · backend ${Array.isArray(backend) ? backend.join(',') : String(backend)}`;
  }

  static async open(io: CliIO, argv: GlobalArgs, options: SfcSessionOptions = {}): Promise<SfcTuiSession> {
    const config = await resolveCommandConfig(io, argv, TUI_OPTIONS);
    let session: SfcTuiSession | undefined;
    const sink = (line: string) => session?.cli.onStatus(line);
    const routed: CliIO = { stdout: lineStream(sink), stderr: lineStream(sink), cwd: io.cwd, env: io.env };
    const model = config.get<string>('model');
    session = new SfcTuiSession(new RoutedSession(routed, argv, config), config, options, model !== undefined ? await modelDisplayName(model) : undefined);
    return session;
  }

  /** A value of the effective config (flags, circuit, file), e.g. `annotations`. */
  setting<T>(key: string): T | undefined {
    return this.config.get<T>(key);
  }

  /** Runs `fn` after every earlier operation has finished, with this operation's callbacks. */
  private exclusive<T>(operation: string, context: RunContext, onProgress: (e: ProgressEvent) => void, fn: () => Promise<T>): Promise<T> {
    const run = async () => {
      throwIfAborted(context.signal, operation);
      this.cli.onStatus = context.onStatus;
      this.cli.onProgress = onProgress;
      return fn();
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async model(context: RunContext): Promise<Model> {
    if (this.cli.modelLoaded) return this.cli.model();
    const start = Date.now();
    context.onStatus(`loading the model ${this.config.get<string>('model')}…`);
    const model = await this.cli.model();
    context.onStatus(`model loaded in ${((Date.now() - start) / 1000).toFixed(1)} s: ${model.spec.architecture}, ${model.submodules.length} submodules, backend ${model.backend.name}`);
    return model;
  }

  /** The dictionaries of `submodules`, loading the ones not loaded yet. */
  private async dictionariesFor(model: Model, submodules: readonly string[], context: RunContext): Promise<Map<string, Dictionary>> {
    const missing = submodules.filter((s) => !this.dictionaries.has(s));
    if (missing.length) {
      context.onStatus(`loading SAEs for ${missing.join(', ')}…`);
      for (const [name, d] of await loadModelDictionaries(this.cli, model, { only: missing })) {
        // Build lazily made decoder tensors now, outside any tensor scope, so a scope that ends
        // (a discovery, a steering run) cannot dispose them (see notes/steering-api.md, known limits).
        d.decoderRows();
        d.decoderBias();
        this.dictionaries.set(name, d);
      }
    }
    return new Map(submodules.map((s) => [s, this.dictionaries.get(s)!]));
  }

  loadCircuit(path: string, context: RunContext): Promise<Circuit> {
    throwIfAborted(context.signal, 'opening the circuit');
    return readCircuitFile(resolve(this.cli.io.cwd, path));
  }

  /**
   * Top contexts from the `topContexts` folder, found by the content hash of the feature's SAE:
   * its folder from the config (a circuit's record sets it) or from the loaded dictionary.
   */
  async topContexts(submodule: string, feature: number): Promise<TopContextsView> {
    const dir = this.config.get<Record<string, string>>('dictionaries.submodules')?.[submodule]
      ?? (this.dictionaries.has(submodule) ? dictionaryFolder(this.dictionaries.get(submodule)!) : undefined);
    if (dir === undefined) return { none: `top contexts: the SAE of ${submodule} is not known yet (steer once, or open a circuit that records its SAEs)` };
    this.saeHashes.set(dir, this.saeHashes.get(dir) ?? contentHash(dir));
    const hash = await this.saeHashes.get(dir)!;
    const file = await readTopContextsFor(topContextsDir(this.config, this.cli.io.env, this.cli.io.cwd), hash);
    if (!file) return { none: `no top contexts for this SAE: sfc dict top --circuit FILE --corpus TEXT` };
    const contexts = file.features[String(feature)];
    return contexts ? { contexts } : { none: `${submodule}/${feature} has no top contexts yet: sfc dict top --features ${submodule}/${feature} --corpus TEXT` };
  }

  setCircuit(circuit: Circuit): void {
    this.circuit = circuit;
  }

  async defaultPrompt(): Promise<PromptInput> {
    const o = this.options;
    if (o.prompt !== undefined) return { text: o.prompt, answer: o.answer ?? '', patchAnswer: o.patchAnswer ?? '' };
    const dataPath = this.config.get<string>('data');
    if (dataPath === undefined) return EMPTY_PROMPT;
    let text: string;
    try { text = await readFile(dataPath, 'utf8'); } catch { return EMPTY_PROMPT; } // discovery reports a missing data file
    // The first example of the file: a pair, a single prompt (JSON lines) or a cluster JSON entry.
    let data: ReturnType<typeof detectData>;
    try { data = detectData(text, basename(dataPath)); } catch { return EMPTY_PROMPT; } // discovery reports a malformed file
    if (data.kind === 'single') {
      const first = data.entries.find((e) => e !== undefined);
      return first ? { text: first.prefix, answer: first.answer, patchAnswer: '' } : EMPTY_PROMPT;
    }
    for (const line of splitLines(text)) {
      try {
        const r = JSON.parse(line) as Record<string, unknown>;
        if (typeof r.clean_prefix === 'string') {
          return { text: r.clean_prefix, answer: typeof r.clean_answer === 'string' ? r.clean_answer : '', patchAnswer: typeof r.patch_answer === 'string' ? r.patch_answer : '' };
        }
      } catch { /* not an example line: try the next */ }
    }
    return EMPTY_PROMPT;
  }

  /** The request's steering and its prompt as a one-row batch (answers when given). */
  private async prepare(request: SteerRequest, context: RunContext, what: string): Promise<{ model: Model; steering: Steering; ids: number[]; batch: ScoreBatch }> {
    const model = await this.model(context);
    throwIfAborted(context.signal, what);
    const refs = request.nodes.map(parseFeatureId);
    // Said here in the TUI's terms (its ops and keys), before anything is built.
    const errorNode = refs.find((r) => r.kind === 'error');
    if (errorNode && (request.op.kind === 'clamp' || request.op.kind === 'add')) {
      throw new InputError(`${featureId(errorNode)} is an SAE error node: it has no decoder row, so ${request.op.kind} does not apply to it`, 'on error nodes use scale (s) or ablate (x), or unpick it (Space)');
    }
    const subs = [...new Set(refs.map((r) => model.submodule(r.submodule).name))];
    const dictionaries = await this.dictionariesFor(model, subs, context);
    if (this.circuit) checkCircuitDictionaries(this.circuit, model, dictionaries);
    const steering = await Steering.create(model, dictionaries, interventionsFor(refs, request.op, ALL_POSITIONS));
    const { prompt } = request;
    const ids = model.encode(prompt.text);
    const batch: ScoreBatch = {
      size: 1, seq: ids.length, clean: Int32Array.from(ids),
      ...(prompt.answer ? { cleanAnswer: oneToken(model, prompt.answer, 'answer') } : {}),
      ...(prompt.answer && prompt.patchAnswer ? { patchAnswer: oneToken(model, prompt.patchAnswer, 'contrasting answer') } : {}),
    };
    throwIfAborted(context.signal, what);
    return { model, steering, ids, batch };
  }

  steer(request: SteerRequest, context: RunContext): Promise<SteerResult> {
    return this.exclusive('steering', context, () => undefined, async () => {
      const { model, steering, ids, batch } = await this.prepare(request, context, 'steering');
      const score = (await compareBatch(model, [steering], batch, { topK: request.topK }))[0]![0]!;
      // Generation stops at the model's last position.
      const n = Math.min(request.generate, model.spec.dims.maxPositions - ids.length + 1);
      let before: { text: string; ids: readonly number[] } | undefined;
      let after: { text: string; ids: readonly number[] } | undefined;
      let fluency: SteerResult['fluency'];
      if (n >= 1) {
        const key = `${n}\u0000${request.prompt.text}`;
        if (this.baseline?.key !== key) {
          throwIfAborted(context.signal, 'steering');
          const g = await generate(model, ids, undefined, { maxNewTokens: n });
          this.baseline = { key, text: g.text, ids: g.ids };
        }
        before = this.baseline;
        throwIfAborted(context.signal, 'steering');
        after = await generate(model, ids, steering, { maxNewTokens: n });
        const [fb, fa] = await continuationLogProbs(model, [{ promptIds: ids, ids: before.ids }, { promptIds: ids, ids: after.ids }]);
        fluency = { before: fb!, after: fa! };
      }
      return {
        before: { ...answerLogits(score.before), top: score.before.top, ...(before !== undefined ? { continuation: before.text } : {}) },
        after: { ...answerLogits(score.after), top: score.after.top, ...(after !== undefined ? { continuation: after.text } : {}) },
        kl: score.kl,
        ...(score.onTarget !== undefined ? { onTarget: score.onTarget } : {}),
        ...(fluency ? { fluency } : {}),
      };
    });
  }

  calibrate(request: SteerRequest, context: RunContext): Promise<CalibrationResult> {
    return this.exclusive('calibration', context, () => undefined, async () => {
      if (!request.prompt.answer || !request.prompt.patchAnswer) {
        throw new InputError('calibration needs a target: the prompt\'s contrasting answer', 'p edits the prompt: Tab to the answer and the contrasting answer');
      }
      const kind = request.op.kind;
      if (kind !== 'scale' && kind !== 'clamp' && kind !== 'add') throw new InputError(`${kind} has no strength to calibrate`, 'choose scale, clamp or add (s, c, a)');
      const { model, steering, batch } = await this.prepare(request, context, 'calibration');
      const c = await calibrate(model, steering, [batch], { targetRate: 1, strengths: TUI_GRIDS[kind], topK: 1 });
      return { strength: c.best.strength, reached: c.reached, kl: c.best.klMean, tried: c.tried.length };
    });
  }

  discover(context: RunContext & { readonly onProgress: (event: ProgressEvent) => void }): Promise<DiscoveryOutcome> {
    // Cancelling: core's discover takes the signal and stops at its next unit of work (a batch, a
    // chunk of IG steps, an edge chunk), disposing its tensors, with CancelledError.
    return this.exclusive('discovery', context, context.onProgress, async () => {
      const out = resolve(this.cli.io.cwd, this.options.out ?? DEFAULT_DISCOVERY_OUT);
      checkOutputPath(out);
      await this.model(context);
      throwIfAborted(context.signal, 'discovery');
      const c = this.config;
      const circuit = await withRunInputs(this.cli, { numExamplesKey: 'circuit.numExamples', batchSizeKey: 'circuit.batchSize' }, async (inputs, report) => {
        const result = await discover(inputs.model, inputs.dictionaries, inputs.batches, {
          ...inputs.selection,
          nodeThreshold: c.get<number>('circuit.nodeThreshold')!,
          aggregation: c.get<'sum' | 'none'>('circuit.aggregation')!,
          steps: c.get<number>('circuit.steps')!,
          onProgress: report,
          signal: context.signal,
        });
        return buildCircuit(result, { edgeThreshold: c.get<number>('circuit.edgeThreshold')!, meta: inputs.meta });
      });
      throwIfAborted(context.signal, 'discovery'); // cancelled after the last unit: nothing is written
      await writeFileAtomic(out, serializeCircuit(circuit));
      return { circuit, path: out };
    });
  }

  async close(): Promise<void> {
    await this.queue;
    for (const d of this.dictionaries.values()) d.dispose();
    this.dictionaries.clear();
    await this.cli.close();
  }
}
