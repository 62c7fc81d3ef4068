// Which onnxruntime execution providers this machine can use. `cpu` always; `cuda` only when the
// user installed ORT's CUDA provider library next to onnxruntime-node (its installer does that
// with ONNXRUNTIME_NODE_INSTALL=cuda12; sfc installs with the download skipped). A requested
// provider that is missing is dropped and reported by describe(), never a failure.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { GraphBuilder } from './onnx-graph.js';
import { ort } from './ort-session.js';

export interface ProviderStatus {
  /** Providers sessions will use, in order. */
  readonly active: readonly string[];
  /** One line per requested-but-unavailable provider and per detected-but-unused one. */
  readonly notes: readonly string[];
}

const KNOWN = ['cpu', 'cuda'] as const;

/** The folder with onnxruntime-node's native libraries. */
function ortBinaryDir(): string | undefined {
  try {
    const main = createRequire(import.meta.url).resolve('onnxruntime-node');
    return join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

/** Whether ORT's CUDA provider library is installed (without loading it). */
export function cudaLibraryPresent(): boolean {
  const dir = ortBinaryDir();
  if (!dir) return false;
  const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  return existsSync(join(dir, lib));
}

async function providerWorks(name: string): Promise<string | undefined> {
  const g = new GraphBuilder('probe');
  const x = g.input('x', 'float32', [2]);
  g.output(g.node('Add', [x, x]), 'y', 'float32', [2]);
  try {
    const s = await ort.InferenceSession.create(g.encode(), { executionProviders: [name], logSeverityLevel: 3 });
    await s.release();
    return undefined;
  } catch (e) {
    return (e instanceof Error ? e.message : String(e)).split('\n')[0];
  }
}

export async function resolveProviders(requested: readonly string[]): Promise<ProviderStatus> {
  const active: string[] = [];
  const notes: string[] = [];
  const supported = new Set(ort.listSupportedBackends().map((b) => b.name));
  for (const raw of requested) {
    const name = raw.toLowerCase();
    if (!(KNOWN as readonly string[]).includes(name)) {
      notes.push(`${raw}: unknown execution provider (sfc knows ${KNOWN.join(', ')})`);
      continue;
    }
    if (name === 'cpu') { active.push('cpu'); continue; }
    if (!supported.has(name) || !cudaLibraryPresent()) {
      notes.push('cuda requested but not installed (install its binaries with: ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install); using cpu');
      continue;
    }
    const why = await providerWorks(name);
    if (why) notes.push(`cuda requested but unusable: ${why}; using cpu`);
    else active.push(name);
  }
  if (!active.includes('cpu')) active.push('cpu');
  if (!requested.some((r) => r.toLowerCase() === 'cuda') && cudaLibraryPresent()) {
    notes.push("cuda available (set onnx.providers [\"cuda\", \"cpu\"] in sfc.config.json, or pass executionProviders: ['cuda', 'cpu'] to onnxBackend())");
  }
  return { active, notes };
}
