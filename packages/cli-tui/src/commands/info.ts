// `sfc info`: what a model folder contains, as sfc sees it — architecture, sizes, the submodules
// circuits are made of (with TransformerLens hook names) and the backend that would run it.

import type { Model } from '@sfc/core';
import { Session } from '../session.js';
import type { SfcCommand } from './command.js';

export interface ModelInfo {
  readonly schema: 'sfc.info/v1';
  readonly model: string;
  readonly architecture: string;
  readonly parallelResidual: boolean;
  readonly dims: Model['spec']['dims'];
  readonly rotaryDims: number;
  readonly parameters: number;
  readonly tokenizerVocab: number;
  /** Every submodule with its width (Gemma's attn_l: heads × head_dim) and hook name. */
  readonly submodules: { name: string; role: string; layer: number; width: number; hook: string }[];
  readonly backend: { name: string; description: string; grad: boolean; devices: readonly string[] };
}

export function modelInfo(model: Model): ModelInfo {
  const { spec, backend } = model;
  let parameters = 0;
  // A tied decoder's unembedding copy (unembed.w, the transposed embedding) is not a parameter of its own.
  for (const [name, shape] of spec.weightShapes) if (!(spec.tiedEmbeddings && name === 'unembed.w')) parameters += shape.reduce((a, b) => a * b, 1);
  const attn = spec.segments.find((s) => s.kind === 'attention');
  return {
    schema: 'sfc.info/v1',
    model: model.dir,
    architecture: spec.architecture,
    parallelResidual: spec.parallelResidual,
    dims: spec.dims,
    rotaryDims: attn && attn.kind === 'attention' ? attn.rotaryDims : 0,
    parameters,
    tokenizerVocab: model.tokenizer.vocabSize,
    submodules: model.submodules.map((s) => ({ name: s.name, role: s.role, layer: s.layer, width: s.width ?? spec.dims.dModel, hook: s.hook })),
    backend: { name: backend.name, description: backend.describe(), grad: backend.capabilities.grad, devices: backend.capabilities.devices },
  };
}

export function formatInfo(i: ModelInfo): string {
  const d = i.dims;
  const width = Math.max(...i.submodules.map((s) => s.name.length));
  const digits = Math.max(...i.submodules.map((s) => String(s.width).length));
  const kv = d.nKvHeads !== undefined && d.nKvHeads !== d.nHeads ? `, ${d.nKvHeads} key/value heads` : '';
  const lines = [
    `model         ${i.model}`,
    `architecture  ${i.architecture} (${i.parallelResidual ? 'parallel' : 'sequential'} residual${i.rotaryDims ? `, rotary on ${i.rotaryDims} of ${d.headDim} head dims` : ''})`,
    `layers        ${d.nLayers}`,
    `d_model       ${d.dModel}  (${d.nHeads} heads × ${d.headDim}${kv})`,
    `d_mlp         ${d.dMlp}`,
    `vocabulary    ${d.vocabSize} (tokenizer: ${i.tokenizerVocab})`,
    `positions     ${d.maxPositions}`,
    `parameters    ${i.parameters.toLocaleString('en-US')}`,
    `backend       ${i.backend.name}: ${i.backend.description}${i.backend.grad ? '' : ' (no gradients)'}`,
    `submodules    ${i.submodules.length} (name, width → TransformerLens hook)`,
    ...i.submodules.map((s) => `  ${s.name.padEnd(width)}  ${String(s.width).padStart(digits)}  ${s.hook}`),
  ];
  return lines.join('\n') + '\n';
}

export const infoCommand: SfcCommand = {
  command: 'info',
  describe: 'Show a model\'s architecture, sizes, submodules (with widths and hook names) and the backend in use',
  options: ['model', 'backend', 'json'],
  examples: [
    ['$0 info --model fixtures/small-a', 'Describe the bundled test model'],
    ['$0 info --model ./pythia-70m --backend tfjs-wasm --json', 'Machine-readable, on the wasm backend'],
  ],
  run: (argv, io) => Session.with(io, argv, ['model', 'backend'], async (s) => {
    const info = modelInfo(await s.model());
    io.stdout.write(argv.json ? `${JSON.stringify(info, null, 2)}\n` : formatInfo(info));
  }),
};
