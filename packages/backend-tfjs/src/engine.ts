// The process-wide TensorFlow.js engine: which flavor (tfjs backend) is active and who uses it.
//
// tfjs keeps one global engine per process (on globalThis), so every sfc backend object made by
// tfjsBackend() shares it. Policy: one flavor at a time. Backends of the same flavor share the
// engine freely; asking for another flavor while a backend of the first is alive is an error
// (switching would silently move every live tensor, weights included, between tfjs backends).
// Dispose the first backend, then create the other.

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { BackendError, CapabilityError } from '@sfc/core';

export type TfjsFlavor = 'tensorflow' | 'wasm' | 'cpu';
export type TfjsFlavorOption = 'auto' | TfjsFlavor;

/** sfc backend name → tfjs backend name. */
const TF_BACKEND: Record<TfjsFlavor, string> = { tensorflow: 'tensorflow', wasm: 'wasm', cpu: 'cpu' };

// Silence the "looks like you are running TensorFlow.js in Node.js" banner: library code never prints.
tf.env().set('PROD', true);

interface EngineState { flavor: TfjsFlavor | undefined; users: number; native: string | undefined }
const state: EngineState = { flavor: undefined, users: 0, native: undefined };

const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

/**
 * Loads tfjs-node-gpu or tfjs-node when installed (optional peer dependencies; their install
 * downloads libtensorflow). Returns the package name, or the reasons neither could be used.
 */
async function loadNative(): Promise<{ name: string } | { problems: string[] }> {
  if (state.native) return { name: state.native };
  const problems: string[] = [];
  for (const name of NATIVE_PACKAGES) {
    try {
      // A variable specifier: bundlers and vite must not try to resolve an optional package.
      const spec: string = name;
      await import(/* @vite-ignore */ spec);
    } catch (e) {
      // Node says ERR_MODULE_NOT_FOUND; vite's runner (tests) says "Could not resolve" without a code.
      const code = (e as { code?: unknown }).code, message = String((e as Error).message);
      const missing = message.includes(name) && (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
        || /cannot find (package|module)|could not resolve|failed to (resolve|load url)/i.test(message));
      if (!missing) problems.push(`${name} is installed but failed to load: ${(e as Error).message}`);
      continue;
    }
    if (tf.findBackendFactory('tensorflow') === null) {
      problems.push(`${name} loaded but registered no 'tensorflow' backend (a second copy of @tensorflow/tfjs?)`);
      continue;
    }
    state.native = name;
    return { name };
  }
  return { problems };
}

async function activate(flavor: TfjsFlavor): Promise<boolean> {
  try {
    const ok = await tf.setBackend(TF_BACKEND[flavor]);
    if (ok) await tf.ready();
    return ok && tf.getBackend() === TF_BACKEND[flavor];
  } catch {
    return false;
  }
}

const NATIVE_HINT = 'install the native TensorFlow backend next to sfc: `npm install @tensorflow/tfjs-node@4.22.0` '
  + '(or `@tensorflow/tfjs-node-gpu@4.22.0` with CUDA); its install downloads libtensorflow, so it needs network access once. '
  + 'Or use --backend tfjs-wasm';

let queue: Promise<unknown> = Promise.resolve();

/** Picks and activates a flavor and registers one more user of the engine (one request at a time). */
export function acquireEngine(option: TfjsFlavorOption): Promise<TfjsFlavor> {
  const run = queue.then(() => acquire(option));
  queue = run.catch(() => undefined);
  return run;
}

async function acquire(option: TfjsFlavorOption): Promise<TfjsFlavor> {
  const failures: string[] = [];
  const candidates: TfjsFlavor[] = option === 'auto'
    ? (state.users > 0 && state.flavor ? [state.flavor] : ['tensorflow', 'wasm', 'cpu'])
    : [option];
  for (const flavor of candidates) {
    if (state.users > 0 && state.flavor !== flavor) {
      throw new BackendError(`tfjs is already running with the '${state.flavor}' flavor in this process; it cannot also run '${flavor}'`,
        `TensorFlow.js has one engine per process: dispose the tfjs-${state.flavor} backend first (await backend.dispose()), or use tfjs-${state.flavor}`);
    }
    if (flavor === 'tensorflow') {
      const native = await loadNative();
      if ('problems' in native) {
        const why = native.problems.length ? native.problems.join('; ') : 'neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed';
        failures.push(`tensorflow: ${why}`);
        if (option === 'tensorflow') throw new CapabilityError(`the tfjs-tensorflow backend needs @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu: ${why}`, NATIVE_HINT);
        continue;
      }
    }
    if ((state.users > 0 && tf.getBackend() === TF_BACKEND[flavor]) || await activate(flavor)) {
      state.flavor = flavor;
      state.users++;
      return flavor;
    }
    failures.push(`${flavor}: tf.setBackend('${TF_BACKEND[flavor]}') failed`);
    if (option !== 'auto') break;
  }
  throw new BackendError(`no TensorFlow.js flavor could be started (${failures.join('; ')})`,
    option === 'auto' ? 'check the @tensorflow/tfjs and @tensorflow/tfjs-backend-wasm installation' : 'try --backend tfjs (auto) or tfjs-cpu');
}

export function releaseEngine(): void {
  if (state.users > 0) state.users--;
}

/** One line for `sfc info`, e.g. "tfjs 4.22.0 wasm (SIMD, 1 thread)". */
export async function describeEngine(flavor: TfjsFlavor): Promise<string> {
  const version = `tfjs ${tf.version.tfjs}`;
  switch (flavor) {
    case 'wasm': {
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      const threads = getThreadsCount();
      return `${version} wasm (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'})`;
    }
    case 'cpu':
      return `${version} cpu (plain JavaScript, 1 thread)`;
    case 'tensorflow':
      return `${version} tensorflow (${state.native ?? 'tfjs-node'}, ${state.native?.endsWith('-gpu') ? 'GPU' : 'CPU'})`;
  }
}
