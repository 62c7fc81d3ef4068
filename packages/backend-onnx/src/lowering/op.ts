// The op contract of the ONNX lowering and the tape that turns a list of ops into graphs.
// Every op supplies its forward lowering and its VJP lowering side by side (tfjs-core style:
// gradients registered next to their op). A segment is a Program — a straight-line list of op
// applications over named values — compiled either to a forward graph or, by reverse-mode over
// the same list, to a VJP graph (forward recomputed in the same graph, then the cotangents).
// VJPs are taken with respect to activations only: weights, token ids and positions are constants.

import { GraphBuilder, type Dim, type ElemType } from '../onnx-graph.js';

export interface ForwardLowering {
  readonly outputs: readonly string[];
  /** Intermediates the VJP reuses (names in the same graph). */
  readonly saved?: Readonly<Record<string, string>>;
}

export interface VjpContext<A> {
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly saved: Readonly<Record<string, string>>;
  readonly attrs: A;
  /** Which inputs want a cotangent (the others may be left undefined). */
  readonly needs: readonly boolean[];
}

export interface OpLowering<A> {
  readonly name: string;
  /** Outputs carry no gradient (tables computed from positions, …). */
  readonly constantOutputs?: boolean;
  forward(g: GraphBuilder, inputs: readonly string[], attrs: A): ForwardLowering;
  /**
   * Input cotangents from output cotangents (`undefined`: no cotangent reaches that output).
   * Must return a value for every input with `needs[i]`.
   */
  vjp(g: GraphBuilder, ctx: VjpContext<A>, dOutputs: readonly (string | undefined)[]): (string | undefined)[];
}

/** A value of a program: an input or an op output. */
export interface Value {
  readonly id: number;
  /** Depends on a differentiable program input. */
  readonly differentiable: boolean;
}

export interface ProgramInput {
  readonly value: Value;
  /** Graph input name (the feed key). */
  readonly name: string;
  readonly elem: ElemType;
  readonly dims: readonly Dim[];
}

interface Step {
  readonly op: OpLowering<unknown>;
  readonly label: string;
  readonly inputs: readonly Value[];
  readonly attrs: unknown;
  readonly outputs: readonly Value[];
}

export class Program {
  readonly inputs: ProgramInput[] = [];
  private readonly steps: Step[] = [];
  private nextId = 0;
  private result?: { value: Value; elem: ElemType; dims: readonly Dim[] };
  private readonly extras: { value: Value; name: string; elem: ElemType; dims: readonly Dim[] }[] = [];
  private readonly kept: { value: Value; dims: readonly Dim[] }[] = [];

  /** `name` labels the graph and prefixes node names (`<name>:<label>:…`) for error reports. */
  constructor(readonly name: string) {}

  input(name: string, elem: ElemType, dims: readonly Dim[], differentiable: boolean): Value {
    const value: Value = { id: this.nextId++, differentiable };
    this.inputs.push({ value, name, elem, dims });
    return value;
  }

  /** Applies `op`; `label` names the op instance in error messages (e.g. `ln`, `qkv`). */
  apply<A>(op: OpLowering<A>, inputs: readonly Value[], attrs: A, nOutputs = 1, label: string = op.name): Value[] {
    const differentiable = !op.constantOutputs && inputs.some((v) => v.differentiable);
    const outputs = Array.from({ length: nOutputs }, (): Value => ({ id: this.nextId++, differentiable }));
    this.steps.push({ op: op as OpLowering<unknown>, label, inputs, attrs, outputs });
    return outputs;
  }

  /** Single-output `apply`. */
  apply1<A>(op: OpLowering<A>, inputs: readonly Value[], attrs: A, label?: string): Value {
    return this.apply(op, inputs, attrs, 1, label)[0]!;
  }

  setOutput(value: Value, elem: ElemType, dims: readonly Dim[]): void {
    this.result = { value, elem, dims };
  }

  /**
   * A further output of the forward graph, after `y` (e.g. the keys a KV cache keeps). The VJP
   * graph ignores it: cotangents flow from `y` only.
   */
  addOutput(value: Value, name: string, elem: ElemType, dims: readonly Dim[]): void {
    if (name === 'y' || this.extras.some((e) => e.name === name)) throw new Error(`internal: duplicate output '${name}'`);
    this.extras.push({ value, name, elem, dims });
  }

  /**
   * Marks an op output (float32, `dims`) as kept: a forward graph compiled with `kept` also outputs
   * it as `kept{k}`, and a VJP graph compiled with `kept` takes it as input `kept{k}` instead of
   * recomputing the op — the caller feeds back what that forward gave for the same inputs.
   */
  keep(value: Value, dims: readonly Dim[]): void {
    if (!this.steps.some((s) => s.outputs.length === 1 && s.outputs[0] === value)) throw new Error('internal: only a single-output op result can be kept');
    this.kept.push({ value, dims });
  }

  /** How many values are kept (`kept0…`). */
  get keptCount(): number {
    return this.kept.length;
  }

  /** Names of the forward graph's outputs in order: `y`, then the added ones (then the kept ones with `kept`). */
  forwardOutputs(kept = false): string[] {
    return ['y', ...this.extras.map((e) => e.name), ...(kept ? this.kept.map((_, k) => `kept${k}`) : [])];
  }

  get output(): { value: Value; elem: ElemType; dims: readonly Dim[] } {
    if (!this.result) throw new Error(`internal: program ${this.name} has no output`);
    return this.result;
  }

  /** Op labels in order (for tests and error messages). */
  get opLabels(): string[] {
    return this.steps.map((s) => s.label);
  }

  private emitForward(g: GraphBuilder, fedKept = false): { names: Map<number, string>; saved: Map<Step, ForwardLowering> } {
    const names = new Map<number, string>();
    for (const inp of this.inputs) names.set(inp.value.id, g.input(inp.name, inp.elem, inp.dims));
    const saved = new Map<Step, ForwardLowering>();
    const fed = new Map(fedKept ? this.kept.map((k, i) => [k.value.id, { name: `kept${i}`, dims: k.dims }]) : []);
    for (const step of this.steps) {
      const given = step.outputs.length === 1 ? fed.get(step.outputs[0]!.id) : undefined;
      if (given) {
        // A kept result: read, not recomputed (its VJP takes inputs and cotangents only).
        const name = g.input(given.name, 'float32', given.dims);
        names.set(step.outputs[0]!.id, name);
        saved.set(step, { outputs: [name] });
        continue;
      }
      const ins = step.inputs.map((v) => names.get(v.id)!);
      const res = g.within(`${this.name}:${step.label}`, () => step.op.forward(g, ins, step.attrs));
      if (res.outputs.length !== step.outputs.length) throw new Error(`internal: op ${step.op.name} gave ${res.outputs.length} outputs, expected ${step.outputs.length}`);
      step.outputs.forEach((v, i) => names.set(v.id, res.outputs[i]!));
      saved.set(step, res);
    }
    return { names, saved };
  }

  /** The forward graph: program inputs → `y` (and the added outputs; with `kept`, then `kept{k}`). */
  compileForward(kept = false): GraphBuilder {
    const g = new GraphBuilder(`${this.name}.forward`);
    const { names } = this.emitForward(g);
    const out = this.output;
    g.output(names.get(out.value.id)!, 'y', out.elem, out.dims);
    for (const e of this.extras) g.output(names.get(e.value.id)!, e.name, e.elem, e.dims);
    if (kept) this.kept.forEach((k, i) => g.output(names.get(k.value.id)!, `kept${i}`, 'float32', k.dims));
    return g;
  }

  /**
   * The VJP graph: program inputs + cotangent `dy` → the cotangent of each differentiable input.
   * Returns the graph and, per differentiable input in order, the name of its graph output
   * (inputs with the same cotangent share a name).
   */
  compileVjp(kept = false): { graph: GraphBuilder; outputs: string[] } {
    const g = new GraphBuilder(`${this.name}.vjp`);
    const { names, saved } = this.emitForward(g, kept);
    const out = this.output;
    if (!out.value.differentiable) throw new Error(`internal: program ${this.name} has no differentiable output`);
    const cot = new Map<number, string>();
    cot.set(out.value.id, g.input('dy', out.elem, out.dims));
    for (let i = this.steps.length - 1; i >= 0; i--) {
      const step = this.steps[i]!;
      const dOut = step.outputs.map((v) => cot.get(v.id));
      if (dOut.every((d) => d === undefined)) continue;
      const needs = step.inputs.map((v) => v.differentiable);
      if (!needs.some(Boolean)) continue;
      const fwd = saved.get(step)!;
      const ctx: VjpContext<unknown> = {
        inputs: step.inputs.map((v) => names.get(v.id)!), outputs: fwd.outputs, saved: fwd.saved ?? {}, attrs: step.attrs, needs,
      };
      const dIn = g.within(`${this.name}:${step.label}.vjp`, () => step.op.vjp(g, ctx, dOut));
      step.inputs.forEach((v, k) => {
        if (!needs[k]) return;
        const d = dIn[k];
        if (d === undefined) throw new Error(`internal: op ${step.op.name} gave no cotangent for input ${k}`);
        const prev = cot.get(v.id);
        cot.set(v.id, prev === undefined ? d : g.within(`${this.name}:${step.label}.vjp`, () => g.node('Add', [prev, d])));
      });
    }
    // Inputs that receive the very same cotangent (summed inputs) share one graph output.
    const outputs: string[] = [];
    const byValue = new Map<string, string>();
    let k = 0;
    this.inputs.forEach((inp) => {
      if (!inp.value.differentiable) return;
      const d = cot.get(inp.value.id) ?? zerosLike(g, names.get(inp.value.id)!);
      let name = byValue.get(d);
      if (!name) {
        name = `dx${k++}`;
        g.output(d, name, inp.elem, inp.dims);
        byValue.set(d, name);
      }
      outputs.push(name);
    });
    return { graph: g, outputs };
  }
}

/** Zeros with the shape of `x` (float32). */
export function zerosLike(g: GraphBuilder, x: string): string {
  return g.node('ConstantOfShape', [g.node('Shape', [x])]);
}
