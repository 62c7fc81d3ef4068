// A set of interventions compiled against a model and its dictionaries: validated once, grouped
// by submodule, with the reference means (for ablate mean) captured up front. It hands out the
// per-forward edits core's Model applies in forward order, so a downstream submodule's features
// are read from activations that already carry every upstream edit.
//
// The edit at submodule M adds a decoder-space delta and holds the SAE error fixed:
//   x' = x + Σ_i (f'_i − f_i)·W_dec[i]            (features)
//      + (r' − r)                                  (the error node, r = x − dec(enc(x)))
// so TopK reselection, JumpReLU thresholds or re-encoding can never undo an edit.

import { InputError, ShapeError, type Dictionary, type Edit, type EditCall, type Model, type Tensor } from '@sfc/core';
import { composeSteps, type AffineCoefficients, type AffineStep } from './affine.js';
import { describeIntervention, opStrength, withStrength, type Intervention, type Positions, type SteerOp } from './intervention.js';
import { dictionaryTable, resolveNode } from './features.js';
import { featureRef } from './feature-ref.js';
import { f32 } from './host-data.js';
import { checkPositions } from './positions.js';
import { tidySync as tidy } from '@sfc/core';

/** Token ids [batch, seq], row-major (what Model.encodeBatch returns). */
export interface TokenBatch {
  readonly ids: Int32Array;
  readonly batch: number;
  readonly seq: number;
}

export interface SteeringOptions {
  /** Prompts over which `ablate(mean)` averages each feature (all tokens of all prompts). */
  readonly reference?: readonly TokenBatch[];
  /** Called after each reference batch. */
  readonly onProgress?: (progress: { readonly phase: 'reference'; readonly done: number; readonly total: number }) => void;
}

/** Activations of the targeted features on a patch prompt (unmodified forward), host-side. */
export interface PatchState {
  readonly batch: number;
  readonly seq: number;
  /** Per submodule: [batch, seq, columns] values of its targeted features. */
  readonly features: ReadonlyMap<string, Float32Array>;
  /** Per submodule with an error-node patch: [batch, seq, dIn] error vectors. */
  readonly errors: ReadonlyMap<string, Float32Array>;
}

export interface EditContext {
  /** Tokens of the prompt; positions past it are generated ones. */
  readonly promptLength: number;
  /** Values for `patch` ops (from capturePatch). */
  readonly patch?: PatchState;
}

interface Step { readonly op: Intervention['op']; readonly positions: Positions }

interface SubmodulePlan {
  readonly name: string;
  readonly dict: Dictionary;
  /** Targeted feature indices, in first-mention order. */
  readonly columns: Int32Array;
  readonly featureSteps: readonly AffineStep[];
  readonly errorSteps: readonly Step[];
  /** μ of every column (ablate mean), when some column is mean-ablated. */
  mean?: Float32Array;
  /** μ of the error vector [dIn]. */
  errorMean?: Float32Array;
}

const ERROR_OPS = new Set(['scale', 'ablate', 'patch']);

export class Steering {
  private constructor(
    readonly model: Model,
    readonly interventions: readonly Intervention[],
    private readonly plans: readonly SubmodulePlan[],
  ) {}

  /**
   * Validates every intervention against the model and dictionaries (typed errors listing what
   * is valid) and captures reference means when some op is `ablate(mean)`.
   */
  static async create(model: Model, dictionaries: ReadonlyMap<string, Dictionary>, interventions: readonly Intervention[],
    options: SteeringOptions = {}): Promise<Steering> {
    if (interventions.length === 0) throw new InputError('no interventions given', 'select at least one feature to steer');
    const table = dictionaryTable(model, dictionaries);
    const bySub = new Map<string, { dict: Dictionary; columns: number[]; colOf: Map<number, number>; featureSteps: AffineStep[]; errorSteps: Step[] }>();
    const canonical: Intervention[] = [];
    for (const iv of interventions) {
      const what = describeIntervention(iv);
      const { node, dict } = resolveNode(model, table, featureRef(iv.submodule, iv.feature), what);
      const sub = node.submodule;
      checkOp(iv, what);
      let entry = bySub.get(sub);
      if (!entry) { entry = { dict, columns: [], colOf: new Map(), featureSteps: [], errorSteps: [] }; bySub.set(sub, entry); }
      if (iv.feature === 'err') {
        if (!ERROR_OPS.has(iv.op.kind)) {
          throw new InputError(`${what}: the error node has no decoder row, so ${iv.op.kind} does not apply to it`, 'on error nodes use scale, ablate or patch');
        }
        entry.errorSteps.push({ op: iv.op, positions: iv.positions });
      } else {
        const i = iv.feature;
        let col = entry.colOf.get(i);
        if (col === undefined) { col = entry.columns.length; entry.columns.push(i); entry.colOf.set(i, col); }
        entry.featureSteps.push({ column: col, op: iv.op, positions: iv.positions });
      }
      canonical.push({ ...iv, submodule: sub });
    }
    const order = new Map(model.submodules.map((s) => [s.name, s.order]));
    const plans: SubmodulePlan[] = [...bySub.entries()]
      .sort((x, y) => order.get(x[0])! - order.get(y[0])!)
      .map(([name, e]) => ({ name, dict: e.dict, columns: Int32Array.from(e.columns), featureSteps: e.featureSteps, errorSteps: e.errorSteps }));
    const steering = new Steering(model, canonical, plans);
    if (canonical.some((iv) => iv.op.kind === 'ablate' && iv.op.mode === 'mean')) await steering.captureMeans(options);
    return steering;
  }

  /**
   * The same steering with every scale factor, clamp value, added α and patch strength replaced
   * by `strength` (ablate ops unchanged; reference means are shared, not recomputed). For sweeps.
   */
  withStrength(strength: number): Steering {
    if (!this.interventions.some((iv) => opStrength(iv.op) !== undefined)) {
      throw new InputError('nothing to sweep: no scale, clamp, add or patch op among the interventions', 'sweep with --op scale, clamp, add or patch');
    }
    if (!Number.isFinite(strength)) throw new InputError(`sweep strength must be finite, got ${strength}`);
    const swap = <T extends { readonly op: SteerOp }>(x: T): T => (opStrength(x.op) === undefined ? x : { ...x, op: withStrength(x.op, strength) });
    return new Steering(this.model, this.interventions.map(swap),
      this.plans.map((p) => ({ ...p, featureSteps: p.featureSteps.map(swap), errorSteps: p.errorSteps.map(swap) })));
  }

  /** Submodules touched, in forward order. */
  get submodules(): readonly string[] {
    return this.plans.map((p) => p.name);
  }

  /** Whether some op is `patch` (then every run needs a patch prompt). */
  get needsPatch(): boolean {
    return this.interventions.some((iv) => iv.op.kind === 'patch');
  }

  /**
   * Whether the edits depend on where the prompt ends: positions counted from the prompt's end
   * (negative list entries or starts), or patch ops (copied up to the patch prompt's length). Such
   * edits resolve against one prompt length per forward, so prompts of different lengths cannot
   * share a right-padded forward (scoring then runs each length separately).
   */
  get dependsOnPromptLength(): boolean {
    return this.interventions.some((iv) => iv.op.kind === 'patch'
      || (iv.positions.kind === 'list' && iv.positions.positions.some((q) => q < 0))
      || (iv.positions.kind === 'from' && iv.positions.start < 0));
  }

  /**
   * Fails before any compute when some requested position can never be reached, or when a
   * patch prompt is missing, too short or of the wrong batch size.
   */
  validate(promptLength: number, finalLength: number, patch?: { readonly batch: number; readonly seq: number }, batch = 1): void {
    for (const iv of this.interventions) checkPositions(iv.positions, promptLength, finalLength, describeIntervention(iv));
    if (!this.needsPatch) return;
    if (!patch) throw new InputError('a patch op needs a patch prompt', 'give --patch-prompt TEXT, or --data with patch_prefix');
    if (patch.batch !== 1 && patch.batch !== batch) {
      throw new ShapeError(`${patch.batch} patch prompts for ${batch} prompts`, 'give one patch prompt, or one per prompt');
    }
    for (const plan of this.plans) {
      const last = Math.max(featureCoefficients(plan, finalLength, promptLength).lastPatchedPosition,
        errorCoefficients(plan, finalLength, promptLength).lastPatchedPosition);
      if (last >= patch.seq) {
        throw new InputError(`${plan.name}: patching position ${last}, but the patch prompt has only ${patch.seq} tokens`,
          'restrict patch ops to positions inside the patch prompt (e.g. --positions prompt with prompts of equal length)');
      }
    }
  }

  /** One unmodified forward on the patch prompt(s); reads the targeted features (and errors). */
  async capturePatch(tokens: TokenBatch): Promise<PatchState> {
    const features = new Map<string, Float32Array>();
    const errors = new Map<string, Float32Array>();
    const wanted = this.plans.filter((p) => p.featureSteps.some((s) => s.op.kind === 'patch') || p.errorSteps.some((s) => s.op.kind === 'patch'));
    const ops = this.model.ops;
    await ops.scope(async () => {
      const { values } = await this.model.forward(this.model.tokens(tokens.ids, tokens.batch, tokens.seq), { logits: false });
      for (const plan of wanted) {
        const x = values.get(plan.name)!;
        const f = plan.dict.encode(x);
        if (plan.columns.length) features.set(plan.name, await f32(ops.gather(f, ops.intTensor(plan.columns, [plan.columns.length]), 2)));
        if (plan.errorSteps.some((s) => s.op.kind === 'patch')) errors.set(plan.name, await f32(ops.sub(x, plan.dict.decode(f))));
      }
    });
    return { batch: tokens.batch, seq: tokens.seq, features, errors };
  }

  /**
   * The edits for forwards over one prompt (any sequence length, and any window of it: positions
   * resolve per call from the call's positionOffset, so KV-cached steps are steered correctly).
   */
  edits(context: EditContext): Map<string, Edit> {
    const edits = new Map<string, Edit>();
    for (const plan of this.plans) edits.set(plan.name, (x, call) => this.apply(plan, x, context, call));
    return edits;
  }

  private apply(plan: SubmodulePlan, x: Tensor, ctx: EditContext, call: EditCall | undefined): Tensor {
    const ops = this.model.ops;
    if (call?.padding) {
      // One EditContext is one prompt length: rows of a padded batch need their own edits.
      throw new InputError(`${plan.name}: steering edits for one prompt length ran on a left-padded batch`,
        'run mixed-length prompts through generateBatch, which steers every row at its own positions');
    }
    const [b, s, d] = x.shape as [number, number, number];
    const offset = call?.positionOffset ?? 0;
    const k = plan.columns.length;
    const fc = featureCoefficients(plan, s, ctx.promptLength, offset);
    const ec = errorCoefficients(plan, s, ctx.promptLength, offset);
    return tidy((tmp) => {
      let f: Tensor | undefined;
      const features = () => (f ??= tmp(plan.dict.encode(x)));
      let delta: Tensor | undefined;
      const accumulate = (t: Tensor) => { delta = delta ? tmp(ops.add(delta, t)) : t; };
      if (k > 0 && (fc.usesA || fc.usesB || fc.usesM || fc.usesC)) {
        // Δf = (a − 1)·f + b + m·μ + c·p over the targeted columns; add-only steering never encodes.
        const cols = tmp(ops.intTensor(plan.columns, [k]));
        let df: Tensor | undefined;
        const term = (t: Tensor) => { df = df ? tmp(ops.add(df, t)) : t; };
        if (fc.usesA) term(tmp(ops.mul(tmp(ops.gather(features(), cols, 2)), tmp(ops.tensor(minusOne(fc.a), [s, k])))));
        if (fc.usesB) term(tmp(ops.tensor(fc.b, [s, k])));
        if (fc.usesM) term(tmp(ops.mul(tmp(ops.tensor(fc.m, [s, k])), tmp(ops.tensor(plan.mean!, [k])))));
        if (fc.usesC) term(tmp(ops.mul(tmp(ops.tensor(fc.c, [s, k])), tmp(this.patchTensor(plan, ctx, 'features', b, s, k, fc)))));
        accumulate(tmp(ops.matMul(df!, tmp(ops.gather(plan.dict.decoderRows(), cols, 0)))));
      }
      // Δr = (a − 1)·r + m·μ_r + c·r_patch, r = x − dec(enc(x)) read before this submodule's edit.
      if (ec.usesA) accumulate(tmp(ops.mul(tmp(ops.sub(x, tmp(plan.dict.decode(features())))), tmp(ops.tensor(minusOne(ec.a), [s, 1])))));
      if (ec.usesM) accumulate(tmp(ops.mul(tmp(ops.tensor(ec.m, [s, 1])), tmp(ops.tensor(plan.errorMean!, [d])))));
      if (ec.usesC) accumulate(tmp(ops.mul(tmp(ops.tensor(ec.c, [s, 1])), tmp(this.patchTensor(plan, ctx, 'errors', b, s, d, ec)))));
      return delta ? ops.add(x, delta) : x;
    }, [x, plan.dict.decoderRows(), plan.dict.decoderBias()]);
  }

  /** The patch values at the call's positions: [patchBatch, s, width], zero past the patch prompt. */
  private patchTensor(plan: SubmodulePlan, ctx: EditContext, kind: 'features' | 'errors', b: number, s: number, width: number,
    coef: AffineCoefficients): Tensor {
    const p = ctx.patch;
    if (!p) throw new InputError(`${plan.name}: a patch op ran without a patch prompt`, 'give --patch-prompt TEXT, or --data with patch_prefix');
    if (p.batch !== 1 && p.batch !== b) throw new ShapeError(`${p.batch} patch prompts for a batch of ${b}`, 'give one patch prompt, or one per prompt');
    if (coef.lastPatchedPosition >= p.seq) {
      throw new InputError(`${plan.name}: patching position ${coef.lastPatchedPosition}, but the patch prompt has only ${p.seq} tokens`,
        'restrict patch ops to positions inside the patch prompt');
    }
    const src = p[kind].get(plan.name);
    if (!src) throw new Error(`internal: no patch ${kind} captured for ${plan.name}`);
    // Positions coef.offset … coef.offset+s−1; those inside the patch prompt are copied.
    const from = coef.offset, n = Math.max(0, Math.min(s, p.seq - from));
    const out = new Float32Array(p.batch * s * width);
    for (let r = 0; r < p.batch; r++) out.set(src.subarray((r * p.seq + from) * width, (r * p.seq + from + n) * width), r * s * width);
    return this.model.ops.tensor(out, [p.batch, s, width]);
  }

  private async captureMeans(options: SteeringOptions): Promise<void> {
    const ref = options.reference ?? [];
    if (ref.length === 0 || ref.every((r) => r.batch * r.seq === 0)) {
      throw new InputError('ablate mean needs reference prompts to average over', 'give --data FILE (its clean prefixes are the reference), or use --value zero');
    }
    const ops = this.model.ops;
    const wanted = this.plans.filter((p) => p.featureSteps.some(isMean) || p.errorSteps.some(isMean));
    const sums = new Map<string, { f?: Float64Array; r?: Float64Array }>();
    let tokens = 0;
    for (const [n, batch] of ref.entries()) {
      await ops.scope(async () => {
        const { values } = await this.model.forward(this.model.tokens(batch.ids, batch.batch, batch.seq), { logits: false });
        for (const plan of wanted) {
          const x = values.get(plan.name)!;
          const f = plan.dict.encode(x);
          const acc = sums.get(plan.name) ?? {};
          sums.set(plan.name, acc);
          if (plan.featureSteps.some(isMean)) {
            const part = await f32(ops.sum(ops.gather(f, ops.intTensor(plan.columns, [plan.columns.length]), 2), [0, 1]));
            acc.f = addInto(acc.f, part);
          }
          if (plan.errorSteps.some(isMean)) acc.r = addInto(acc.r, await f32(ops.sum(ops.sub(x, plan.dict.decode(f)), [0, 1])));
        }
      });
      tokens += batch.batch * batch.seq;
      options.onProgress?.({ phase: 'reference', done: n + 1, total: ref.length });
    }
    for (const plan of wanted) {
      const acc = sums.get(plan.name)!;
      if (acc.f) plan.mean = Float32Array.from(acc.f, (v) => v / tokens);
      if (acc.r) plan.errorMean = Float32Array.from(acc.r, (v) => v / tokens);
    }
  }
}

function featureCoefficients(plan: SubmodulePlan, seq: number, promptLength: number, offset = 0): AffineCoefficients {
  return composeSteps(plan.featureSteps, seq, plan.columns.length, promptLength, offset);
}

/** The error node as one column whose value is a vector (coefficients broadcast over d). */
function errorCoefficients(plan: SubmodulePlan, seq: number, promptLength: number, offset = 0): AffineCoefficients {
  return composeSteps(plan.errorSteps.map((st) => ({ ...st, column: 0 })), seq, 1, promptLength, offset);
}

function isMean(s: Step): boolean {
  return s.op.kind === 'ablate' && s.op.mode === 'mean';
}

function checkOp(iv: Intervention, what: string): void {
  const v = iv.op.kind === 'scale' ? iv.op.factor : iv.op.kind === 'clamp' ? iv.op.value : iv.op.kind === 'add' ? iv.op.alpha : 0;
  if (!Number.isFinite(v)) throw new InputError(`${what}: the value must be a finite number`);
  const p = iv.positions;
  if ((p.kind === 'list' && (p.positions.length === 0 || !p.positions.every(Number.isSafeInteger)))
    || (p.kind === 'from' && !Number.isSafeInteger(p.start))) {
    throw new InputError(`${what}: positions must be integers`, 'e.g. positions 3,5,-1 or from -1 on');
  }
}

function minusOne(a: Float32Array): Float32Array {
  return Float32Array.from(a, (v) => v - 1);
}

function addInto(acc: Float64Array | undefined, part: Float32Array): Float64Array {
  const out = acc ?? new Float64Array(part.length);
  for (let i = 0; i < part.length; i++) out[i]! += part[i]!;
  return out;
}
