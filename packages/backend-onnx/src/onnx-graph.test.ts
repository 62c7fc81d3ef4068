// The graph builder: what it encodes (opset, attributes, constants, dynamic dims), dead-node
// pruning, and that onnxruntime runs what it writes.

import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { decodeModel, float, GraphBuilder, IR_VERSION, OPSET } from './onnx-graph.js';

describe('GraphBuilder', () => {
  it('writes a ModelProto with opset, typed attributes, deduplicated constants and symbolic dims', () => {
    const g = new GraphBuilder('t');
    const x = g.input('x', 'float32', ['batch', 3]);
    const c1 = g.constF([1, 2, 3]);
    expect(g.constF([1, 2, 3])).toBe(c1);
    expect(g.constI64([1, 2, 3])).not.toBe(c1);
    const y = g.within('seg:op', () => g.node('LayerNormalization', [g.node('Add', [x, c1]), c1, c1], { axis: -1, epsilon: float(1e-5) }));
    g.output(y, 'y', 'float32', ['batch', 3]);
    const m = decodeModel(g.encode());
    const graph = m.graph!;
    expect(Number(m.irVersion)).toBe(IR_VERSION);
    expect(Number(m.opsetImport[0]!.version)).toBe(OPSET);
    expect(graph.input![0]!.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue))).toEqual(['batch', 3]);
    const ln = graph.node!.find((n) => n.opType === 'LayerNormalization')!;
    expect(ln.name).toMatch(/^seg:op:LayerNormalization:\d+$/);
    const eps = ln.attribute!.find((a) => a.name === 'epsilon')!;
    expect(eps.f).toBeCloseTo(1e-5, 10);
    expect(Number(ln.attribute!.find((a) => a.name === 'axis')!.i)).toBe(-1);
    expect(graph.initializer!.length).toBe(1); // the unused int64 constant is pruned
    expect(() => g.node('Add', [x, x], { alpha: 0.5 })).toThrow(/float\(\)/);
  });

  it('prunes nodes no output depends on', () => {
    const g = new GraphBuilder('t');
    const x = g.input('x', 'float32', [2]);
    const used = g.node('Neg', [x]);
    g.node('MatMul', [g.node('Exp', [x]), x]); // dead
    g.output(used, 'y', 'float32', [2]);
    const m = decodeModel(g.encode());
    expect(m.graph!.node!.map((n) => n.opType)).toEqual(['Neg', 'Identity']);
    expect(g.nodeCount).toBe(4);
  });

  it('builds graphs onnxruntime runs, with dynamic dims and multiple outputs', async () => {
    const g = new GraphBuilder('t');
    const x = g.input('x', 'float32', ['n', 4]);
    const [values, indices] = g.nodeN('TopK', [x, g.constI64([2])], { axis: -1 }, 2);
    g.output(values!, 'v', 'float32', ['n', 2]);
    g.output(g.node('Cast', [indices!], { to: 6 }), 'i', 'int32', ['n', 2]);
    g.output(g.node('Gelu', [x], { approximate: 'tanh' }), 'gelu', 'float32', ['n', 4]);
    const s = await ort.InferenceSession.create(g.encode(), { logSeverityLevel: 3 });
    for (const n of [1, 3]) {
      const data = Float32Array.from({ length: n * 4 }, (_, i) => (i * 7) % 5);
      const out = await s.run({ x: new ort.Tensor('float32', data, [n, 4]) });
      expect(out.v!.dims).toEqual([n, 2]);
      expect(Array.from(out.v!.data as Float32Array).slice(0, 2)).toEqual([4, 2]);
      expect(Array.from(out.i!.data as Int32Array).slice(0, 2)).toEqual([2, 1]); // row 0 is [0, 2, 4, 1]
      const v = data[1]!;
      expect((out.gelu!.data as Float32Array)[1]).toBeCloseTo(0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))), 5);
    }
    await s.release();
  });
});
