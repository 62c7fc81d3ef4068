// The factory: flavor selection, names, describe(), capabilities, and the one-flavor-per-process rule.

import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { BackendError, CapabilityError, ConfigError, InputError, parseModelConfig } from '@sfc/core';
import { tfjsBackend } from './index.js';

const nativeInstalled = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'].some((p) => {
  try { createRequire(import.meta.url).resolve(p); return true; } catch { return false; }
});

describe('tfjsBackend', () => {
  it('cpu and wasm: names, describe(), capabilities', async () => {
    const cpu = await tfjsBackend({ flavor: 'cpu' });
    expect(cpu.name).toBe('tfjs-cpu');
    expect(cpu.describe()).toMatch(/^tfjs 4\.22\.0 cpu /);
    expect(cpu.capabilities).toEqual({ grad: true, kvCache: true, paddedKvCache: true, devices: ['cpu'], dtypes: ['float32', 'int32'], copiesWeights: true, transposedUnembed: true });
    await cpu.dispose();
    const wasm = await tfjsBackend({ flavor: 'wasm' });
    expect(wasm.name).toBe('tfjs-wasm');
    expect(wasm.describe()).toMatch(/^tfjs 4\.22\.0 wasm \((SIMD|no SIMD), \d+ threads?\)$/);
    expect(wasm.capabilities.grad).toBe(true);
    await wasm.dispose();
  });

  it.skipIf(nativeInstalled)('auto picks wasm when tfjs-node is not installed', async () => {
    const b = await tfjsBackend();
    expect(b.name).toBe('tfjs-wasm');
    await b.dispose();
  });

  it.skipIf(nativeInstalled)('forcing tensorflow without tfjs-node is a CapabilityError saying how to install it', async () => {
    const err = await tfjsBackend({ flavor: 'tensorflow' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CapabilityError);
    expect((err as CapabilityError).message).toMatch(/neither .* is installed/);
    expect((err as CapabilityError).hint).toMatch(/npm install @tensorflow\/tfjs-node/);
    expect((err as CapabilityError).hint).toMatch(/tfjs-node-gpu/);
    // nothing was acquired: another flavor still starts
    const b = await tfjsBackend({ flavor: 'cpu' });
    await b.dispose();
  });

  it('one flavor per process: a second flavor waits until the first is disposed', async () => {
    const a = await tfjsBackend({ flavor: 'cpu' });
    const a2 = await tfjsBackend({ flavor: 'cpu' });
    const auto = await tfjsBackend({ flavor: 'auto' });
    expect(auto.name).toBe('tfjs-cpu'); // auto joins the running flavor
    const err = await tfjsBackend({ flavor: 'wasm' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).hint).toMatch(/dispose the tfjs-cpu backend first/);
    await a.dispose();
    await a.dispose(); // idempotent
    // the other cpu backends keep working
    const x = a2.ops.tensor([1, 2], [2]);
    expect(Array.from(await a2.ops.add(x, x).data())).toEqual([2, 4]);
    await expect(tfjsBackend({ flavor: 'wasm' })).rejects.toThrow(BackendError);
    await a2.dispose();
    await auto.dispose();
    const w = await tfjsBackend({ flavor: 'wasm' });
    expect(w.name).toBe('tfjs-wasm');
    await w.dispose();
  });

  it('refuses unknown flavors and loading into a disposed backend', async () => {
    await expect(tfjsBackend({ flavor: 'gpu' as 'cpu' })).rejects.toThrow(ConfigError);
    const b = await tfjsBackend({ flavor: 'cpu' });
    await b.dispose();
    const spec = parseModelConfig({ model_type: 'gpt2', n_embd: 8, n_head: 2, n_layer: 1, vocab_size: 10, n_positions: 4 });
    await expect(b.loadModel(spec, new Map())).rejects.toThrow(InputError);
  });
});
