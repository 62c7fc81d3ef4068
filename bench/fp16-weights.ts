// Measures what keeping weights 16-bit costs on onnxruntime (issue 13: "bf16 kept 16-bit with
// compute upcast per segment — measure and choose"): one Gemma-2-2B MLP projection, x [rows, 2304]
// · W [2304, 9216], with W fed as float32, or as float16 and widened in the graph (Cast → MatMul).
// bf16 weights become fp16 exactly where fp16 holds them (core's bf16ToF16Exact); ORT's JS API
// has no bf16 tensor. Median wall and CPU time of `--runs` calls, 1 intra-op thread.
//
//   npx tsx --conditions=@sfc/source bench/fp16-weights.ts [--rows 32,320] [--runs 20]

import { parseArgs } from 'node:util';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { bf16ToF16Exact, f32ToBf16 } from '@sfc/core';

const P = onnxProto.onnx;
const D = 2304, M = 9216;
const FLOAT = 1, FLOAT16 = 10;

function model(weightType: number): Uint8Array {
  const vi = (name: string, type: number, dims: (number | string)[]) => P.ValueInfoProto.create({
    name, type: P.TypeProto.create({ tensorType: P.TypeProto.Tensor.create({ elemType: type,
      shape: P.TensorShapeProto.create({ dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) }) }) }),
  });
  const nodes = weightType === FLOAT
    ? [P.NodeProto.create({ opType: 'MatMul', input: ['x', 'w'], output: ['y'] })]
    : [P.NodeProto.create({ opType: 'Cast', input: ['w'], output: ['w32'], attribute: [P.AttributeProto.create({ name: 'to', type: P.AttributeProto.AttributeType.INT, i: FLOAT })] }),
      P.NodeProto.create({ opType: 'MatMul', input: ['x', 'w32'], output: ['y'] })];
  const graph = P.GraphProto.create({ name: 'g', node: nodes, input: [vi('x', FLOAT, ['n', D]), vi('w', weightType, [D, M])], output: [vi('y', FLOAT, ['n', M])] });
  return P.ModelProto.encode(P.ModelProto.create({ irVersion: 9, opsetImport: [{ domain: '', version: 20 }], graph })).finish();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const { values } = parseArgs({ options: { rows: { type: 'string', default: '32,320' }, runs: { type: 'string', default: '20' } } });
const runs = Number(values.runs);
const w32 = Float32Array.from({ length: D * M }, (_, i) => Math.sin(i * 0.618) / Math.sqrt(D));
const bf = f32ToBf16(w32);
const { f16, inexact } = bf16ToF16Exact(bf);
console.log(`W [${D}, ${M}]: ${inexact} of ${bf.length} bf16 values not exact in fp16; f32 ${(w32.byteLength / 2 ** 20).toFixed(0)} MiB, fp16 ${(f16.byteLength / 2 ** 20).toFixed(0)} MiB`);
const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 };
const f32Session = await ort.InferenceSession.create(model(FLOAT), opts);
const f16Session = await ort.InferenceSession.create(model(FLOAT16), opts);
const wF32 = new ort.Tensor('float32', Float32Array.from(bf16ToF32Words(bf)), [D, M]);
const wF16 = new ort.Tensor('float16', f16, [D, M]);
for (const rows of values.rows!.split(',').map(Number)) {
  const x = new ort.Tensor('float32', Float32Array.from({ length: rows * D }, (_, i) => Math.cos(i * 0.37)), [rows, D]);
  const time = async (s: ort.InferenceSession, w: ort.Tensor) => {
    const wall: number[] = [], cpu: number[] = [];
    let y: Float32Array | undefined;
    for (let r = 0; r < runs + 2; r++) {
      const t = performance.now(), c = process.cpuUsage();
      const out = await s.run({ x, w });
      const u = process.cpuUsage(c);
      if (r >= 2) { wall.push(performance.now() - t); cpu.push((u.user + u.system) / 1000); }
      y = out.y!.data as Float32Array;
    }
    return { wall: median(wall), cpu: median(cpu), y: y! };
  };
  const a = await time(f32Session, wF32);
  const b = await time(f16Session, wF16);
  let maxDiff = 0;
  for (let i = 0; i < a.y.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.y[i]! - b.y[i]!));
  console.log(`rows ${rows}: f32 weights ${a.wall.toFixed(1)} ms (CPU ${a.cpu.toFixed(1)}), fp16 weights + Cast ${b.wall.toFixed(1)} ms (CPU ${b.cpu.toFixed(1)}); ratio ${(b.cpu / a.cpu).toFixed(2)}; max |Δy| ${maxDiff}`);
}

function bf16ToF32Words(words: Uint16Array): Float32Array {
  const u = new Uint32Array(words.length);
  for (let i = 0; i < words.length; i++) u[i] = words[i]! << 16;
  return new Float32Array(u.buffer);
}
