// A small ONNX graph builder over the published protobuf definitions (onnx-proto): graph inputs,
// initializers, nodes with typed attributes, outputs; encodes a ModelProto for onnxruntime.
// Opset 20 (irVersion 9): LayerNormalization, Gelu with `approximate`, Reduce* with an axes input.
// Every node gets a name `<scope>:<n>` so a runtime error can be traced back to the op that made it.

import onnxProto from 'onnx-proto';
import type { onnx as P } from 'onnx-proto';

const { onnx } = onnxProto;

export const OPSET = 20;
export const IR_VERSION = 9;

export type ElemType = 'float32' | 'float16' | 'int32' | 'int64' | 'bool';
/** A fixed size, or a symbolic name (dynamic dimension). */
export type Dim = number | string;

const ELEM: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
};

/** ONNX TensorProto data type number, for Cast's `to` attribute. */
export function onnxElemType(t: ElemType): number {
  return ELEM[t];
}

/** Attribute values: integers as plain numbers, floats wrapped with `float()`, strings as strings. */
export type AttrValue = number | readonly number[] | string | { readonly float: number };
export const float = (x: number): { readonly float: number } => ({ float: x });

const AT = onnx.AttributeProto.AttributeType;

function attribute(name: string, v: AttrValue): P.IAttributeProto {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`internal: attribute ${name}=${v} is not an integer; wrap floats with float()`);
    return { name, type: AT.INT, i: v };
  }
  if (typeof v === 'string') return { name, type: AT.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AT.INTS, ints: [...(v as readonly number[])] };
  return { name, type: AT.FLOAT, f: (v as { float: number }).float };
}

function valueInfo(name: string, elem: ElemType, dims: readonly Dim[]): P.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: ELEM[elem], shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}

function bytesOf(data: Float32Array | Int32Array | BigInt64Array | Uint8Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export class GraphBuilder {
  private readonly nodes: P.INodeProto[] = [];
  private readonly inputs: P.IValueInfoProto[] = [];
  private readonly outputs: P.IValueInfoProto[] = [];
  private readonly initializers: P.ITensorProto[] = [];
  private readonly constCache = new Map<string, string>();
  private readonly names = new Set<string>();
  private counter = 0;
  /** Prefix of node names; set by `within`. */
  private scope = 'graph';

  constructor(readonly name: string) {}

  /** A fresh value name. */
  fresh(hint = 'v'): string {
    let n: string;
    do { n = `${hint}_${this.counter++}`; } while (this.names.has(n));
    this.names.add(n);
    return n;
  }

  /** Runs `fn` with node names prefixed by `scope` (restored afterwards). */
  within<T>(scope: string, fn: () => T): T {
    const prev = this.scope;
    this.scope = scope;
    try { return fn(); } finally { this.scope = prev; }
  }

  input(name: string, elem: ElemType, dims: readonly Dim[]): string {
    if (this.names.has(name)) throw new Error(`internal: duplicate graph value '${name}'`);
    this.names.add(name);
    this.inputs.push(valueInfo(name, elem, dims));
    return name;
  }

  /** Declares `value` as a graph output called `name` (an Identity node renames when they differ). */
  output(value: string, name: string, elem: ElemType, dims: readonly Dim[]): void {
    if (value !== name) {
      if (this.names.has(name)) throw new Error(`internal: duplicate graph value '${name}'`);
      this.names.add(name);
      this.nodes.push({ opType: 'Identity', input: [value], output: [name], name: `${this.scope}:out:${this.nodes.length}` });
    }
    this.outputs.push(valueInfo(name, elem, dims));
  }

  initializer(name: string, elem: ElemType, dims: readonly number[], data: Float32Array | Int32Array | BigInt64Array | Uint8Array): string {
    if (this.names.has(name)) throw new Error(`internal: duplicate graph value '${name}'`);
    this.names.add(name);
    return this.pushInitializer(name, elem, dims, data);
  }

  private pushInitializer(name: string, elem: ElemType, dims: readonly number[], data: Float32Array | Int32Array | BigInt64Array | Uint8Array): string {
    this.initializers.push({ name, dims: [...dims], dataType: ELEM[elem], rawData: bytesOf(data) });
    return name;
  }

  /** A float32 constant (deduplicated by value); a scalar when `dims` is omitted and one value is given. */
  constF(values: number | readonly number[], dims?: readonly number[]): string {
    const arr = typeof values === 'number' ? [values] : values;
    const shape = dims ?? (typeof values === 'number' ? [] : [arr.length]);
    return this.cached(`f${shape.join('x')}:${arr.join(',')}`, () => this.pushInitializer(this.fresh('cf'), 'float32', shape, Float32Array.from(arr)));
  }

  /** An int64 constant (shapes, axes, indices). */
  constI64(values: number | readonly number[], dims?: readonly number[]): string {
    const arr = typeof values === 'number' ? [values] : values;
    const shape = dims ?? (typeof values === 'number' ? [] : [arr.length]);
    return this.cached(`i${shape.join('x')}:${arr.join(',')}`, () => this.pushInitializer(this.fresh('ci'), 'int64', shape, BigInt64Array.from(arr.map((x) => BigInt(x)))));
  }

  /** An int32 constant. */
  constI32(values: number | readonly number[], dims?: readonly number[]): string {
    const arr = typeof values === 'number' ? [values] : values;
    const shape = dims ?? (typeof values === 'number' ? [] : [arr.length]);
    return this.cached(`n${shape.join('x')}:${arr.join(',')}`, () => this.pushInitializer(this.fresh('cn'), 'int32', shape, Int32Array.from(arr)));
  }

  private cached(key: string, make: () => string): string {
    let v = this.constCache.get(key);
    if (!v) { v = make(); this.constCache.set(key, v); }
    return v;
  }

  /** Adds a node with `nOutputs` outputs and returns their names. Empty strings mark omitted optional inputs. */
  nodeN(opType: string, inputs: readonly string[], attrs: Readonly<Record<string, AttrValue>> = {}, nOutputs = 1, domain = ''): string[] {
    const outs = Array.from({ length: nOutputs }, () => this.fresh(opType.toLowerCase()));
    this.nodes.push({
      opType, domain, input: [...inputs], output: outs,
      name: `${this.scope}:${opType}:${this.nodes.length}`,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** Adds a single-output node and returns the output name. */
  node(opType: string, inputs: readonly string[], attrs: Readonly<Record<string, AttrValue>> = {}): string {
    return this.nodeN(opType, inputs, attrs, 1)[0]!;
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  /**
   * The ModelProto, without nodes and constants that no output depends on (a VJP graph recomputes
   * the forward, whose last ops are often not needed; onnxruntime would run them anyway).
   */
  toModelProto(): P.IModelProto {
    const needed = new Set(this.outputs.map((o) => o.name!));
    const kept: P.INodeProto[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i]!;
      if (!n.output!.some((o) => needed.has(o))) continue;
      kept.push(n);
      for (const x of n.input!) if (x) needed.add(x);
    }
    kept.reverse();
    return {
      irVersion: IR_VERSION,
      producerName: 'sfc',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: {
        name: this.name, node: kept, input: this.inputs, output: this.outputs,
        initializer: this.initializers.filter((t) => needed.has(t.name!)),
      },
    };
  }

  /** The serialized ModelProto. */
  encode(): Uint8Array {
    return onnx.ModelProto.encode(onnx.ModelProto.create(this.toModelProto())).finish();
  }
}

/** Parses serialized ModelProto bytes back (tests and cache inspection). */
export function decodeModel(bytes: Uint8Array): P.ModelProto {
  return onnx.ModelProto.decode(bytes);
}
