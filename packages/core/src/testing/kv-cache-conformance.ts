// The conformance suite for a backend's KV cache (capabilities.kvCache). Test-runner agnostic,
// like the TensorOps suite. On every model folder given (use at least one rotary GPT-NeoX and one
// learned-position GPT-2): a cached forward fed in pieces (prefill, single tokens, a chunk) gives
// the logits of one full forward at every position, also with position-dependent edits (at
// prompt positions and from a position inside the generated part on) — which holds only if edits
// see the right positionOffset; no tensor outlives the cache; misuse gives typed errors before any
// compute and leaves the cache usable; prompts of different lengths left-padded in one cache
// (capabilities.paddedKvCache) decode greedily as each prompt alone, edits included.

import { CapabilityError, InputError, ShapeError } from '../errors.js';
import type { KvCache } from '../backend.js';
import type { Edit, Model } from '../model/model.js';
import type { Tensor } from '../tensor.js';
import type { ConformanceRunner } from './tensor-ops-conformance.js';

export interface KvCacheConformanceOptions {
  /** Loads a model folder on the backend under test (called while the tests run). */
  readonly load: (dir: string) => Promise<Model>;
  /** Model folders (Hugging Face layout), e.g. fixtures/models/neox-par-r25 and gpt2-a. */
  readonly models: readonly string[];
  /** Largest allowed |cached − full| logit difference (default 1e-5). */
  readonly tolerance?: number;
  /**
   * Largest allowed relative logit difference between a row decoded in a batch and alone
   * (default 2e-5): batching alone, without padding, already moves onnxruntime's logits by up to
   * 1.3e-5 relative (llama-a, batch of 3 equal-length prompts vs each alone; tfjs: 0).
   */
  readonly batchTolerance?: number;
}

/** Token ids [batch][seq] from a fixed pattern (every id < vocab). */
function tokenRows(batch: number, seq: number, vocab: number): number[][] {
  return Array.from({ length: batch }, (_, b) => Array.from({ length: seq }, (_, s) => (7 * s + 13 * b + 3) % vocab));
}

/**
 * Adds (p + 1)·0.05·u to the rows at absolute positions p with `selected(p)`; u is a fixed
 * direction. The amount grows with p, so an edit that saw the wrong offset changes the result.
 */
function positionEdit(model: Model, sub: string, selected: (p: number) => boolean, seed: number): Edit {
  const d = model.submodule(sub).width ?? model.spec.dims.dModel; // Gemma's attn_l: the concatenated heads
  const u = Float32Array.from({ length: d }, (_, i) => Math.sin(seed * 31 + i * 1.7));
  return (x: Tensor, call) => {
    const ops = model.ops;
    const [b, s] = x.shape as [number, number];
    // Left-padded cache: row r's element i is at position positionOffset + i − padding[r] (< 0: a pad).
    const pads = call.padding ?? [0];
    const amount = Float32Array.from({ length: pads.length * s }, (_, k) => {
      const p = call.positionOffset + (k % s) - pads[Math.floor(k / s)]!;
      return p >= 0 && selected(p) ? (p + 1) * 0.05 : 0;
    });
    return ops.add(x, ops.mul(ops.tensor(amount, call.padding ? [b, s, 1] : [s, 1]), ops.tensor(u, [d])));
  };
}

/** Argmax of each row of [rows, V] logits. */
function argmaxRows(logits: Float32Array, V: number): number[] {
  return Array.from({ length: logits.length / V }, (_, r) => {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[r * V + i]! > logits[r * V + best]!) best = i;
    return best;
  });
}

/**
 * Registers the suite. Each model is loaded once, on first use; with `runner.afterAll` it is
 * disposed after its tests (else when the backend is).
 */
/** The values of the tensor `fn` computes inside a scope (everything else it made is freed). */
async function read(m: Model, fn: () => Promise<Tensor>): Promise<Float32Array> {
  let out: Float32Array | undefined;
  await m.ops.scope(async () => { out = Float32Array.from(await (await fn()).data()); });
  return out!;
}

export function runKvCacheConformance(options: KvCacheConformanceOptions,
  runner: ConformanceRunner & { readonly afterAll?: (fn: () => void) => void }, name = 'KV cache conformance'): void {
  const { describe, it, expect } = runner;
  const tolerance = options.tolerance ?? 1e-5;
  const batchTolerance = options.batchTolerance ?? 2e-5;
  const B = 2, PROMPT = 5;

  for (const dir of options.models) {
    const label = dir.split(/[\\/]/).filter(Boolean).pop() ?? dir;
    describe(`${name}: ${label}`, () => {
      let model: Model | undefined;
      const get = async (): Promise<Model> => (model ??= await options.load(dir));

      /** Logits [B][seq][V] of one full forward, and of the same tokens fed in `pieces` through a cache. */
      async function compare(pieces: readonly number[], edits?: () => ReadonlyMap<string, Edit>): Promise<number> {
        const m = await get();
        const V = m.spec.dims.vocabSize;
        const seq = pieces.reduce((a, b) => a + b, 0);
        const rows = tokenRows(B, seq, V);
        const ids = (from: number, n: number) => Int32Array.from(rows.flatMap((r) => r.slice(from, from + n)));
        const full = await read(m, async () => (await m.forward(m.tokens(ids(0, seq), B, seq), { edits: edits?.() })).logits!);
        const cache = await m.createKvCache({ batch: B, maxLength: seq });
        let worst = 0;
        try {
          let at = 0;
          for (const n of pieces) {
            expect(cache.length).toBe(at);
            const part = await read(m, async () => {
              const { logits } = await m.forward(m.tokens(ids(at, n), B, n), { cache, edits: edits?.() });
              expect(logits!.shape).toEqual([B, n, V]);
              return logits!;
            });
            for (let b = 0; b < B; b++) {
              for (let i = 0; i < n * V; i++) {
                worst = Math.max(worst, Math.abs(part[b * n * V + i]! - full[(b * seq + at) * V + i]!));
              }
            }
            at += n;
          }
          expect(cache.length).toBe(seq);
        } finally {
          cache.dispose();
        }
        return worst;
      }

      it('prefill, single tokens and a chunk give the logits of one full forward', async () => {
        const m = await get();
        expect(m.supportsKvCache).toBe(true);
        const worst = await compare([PROMPT, 1, 1, 3, 1]);
        expect(worst, `max |cached − full| = ${worst}`).toBeLessThanOrEqual(tolerance);
      });

      it('edits at prompt positions and from a generated position on see the positionOffset', async () => {
        const m = await get();
        const subs = m.submodules.map((s) => s.name);
        // The first submodule (the embedding; Gemma: attn_0), an attention output and a late residual:
        // edits before, inside and after cached layers.
        const at = [subs[0]!, subs.find((s) => s.startsWith('attn_'))!, subs[subs.length - 1]!];
        const edits = () => new Map<string, Edit>([
          [at[0]!, positionEdit(m, at[0]!, (p) => p < PROMPT, 1)],
          [at[1]!, positionEdit(m, at[1]!, (p) => p >= PROMPT + 1, 2)],
          [at[2]!, positionEdit(m, at[2]!, (p) => p % 3 === 1, 3)],
        ]);
        const worst = await compare([PROMPT, 1, 1, 3, 1], edits);
        expect(worst, `max |cached − full| with edits = ${worst}`).toBeLessThanOrEqual(tolerance);
        // The edits matter: without them the logits differ (the comparison above can fail).
        const ops = m.ops;
        const seq = PROMPT + 6;
        const ids = Int32Array.from(tokenRows(B, seq, m.spec.dims.vocabSize).flat());
        const [change] = await read(m, async () => {
          const plain = await m.forward(m.tokens(ids, B, seq));
          const edited = await m.forward(m.tokens(ids, B, seq), { edits: edits() });
          return ops.max(ops.abs(ops.sub(plain.logits!, edited.logits!)));
        });
        expect(change! > 1e-3, `edits change the logits by ${change}`).toBe(true);
      });

      it('frees every tensor: a cached run leaves no tensor behind once the cache is disposed', async () => {
        const m = await get();
        const ops = m.ops;
        const before = ops.numTensors();
        const cache = await m.createKvCache({ batch: 1, maxLength: 6 });
        for (const n of [4, 1, 1]) {
          await ops.scope(async () => {
            await m.forward(m.tokens(Int32Array.from({ length: n }, (_, i) => (i + 2) % m.spec.dims.vocabSize), 1, n), { cache });
          });
        }
        expect(cache.length).toBe(6);
        cache.dispose();
        cache.dispose();
        expect(cache.isDisposed).toBe(true);
        expect(ops.numTensors()).toBe(before);
        // Disposing a model frees the caches still open on it.
        const other = await options.load(dir);
        const open = await other.createKvCache({ batch: 1, maxLength: 3 });
        await ops.scope(async () => { await other.forward(other.tokens(Int32Array.of(1, 2), 1, 2), { cache: open }); });
        other.dispose();
        expect(open.isDisposed).toBe(true);
        expect(ops.numTensors()).toBe(before);
      });

      it('misuse is a typed error raised before any compute, and the cache stays usable', async () => {
        const m = await get();
        const ops = m.ops;
        const tok = (n: number, batch = 1) => m.tokens(Int32Array.from({ length: n * batch }, (_, i) => i % m.spec.dims.vocabSize), batch, n);
        await expect(m.createKvCache({ batch: 1, maxLength: m.spec.dims.maxPositions + 1 })).rejects.toThrow(InputError);
        await expect(m.createKvCache({ batch: 0, maxLength: 4 })).rejects.toThrow(InputError);
        const cache: KvCache = await m.createKvCache({ batch: 1, maxLength: 4 });
        try {
          expect([cache.batch, cache.maxLength, cache.length, cache.isDisposed]).toEqual([1, 4, 0, false]);
          await ops.scope(async () => {
            await m.forward(tok(3), { cache });
            // Past the cache's maximum length.
            await expect(m.forward(tok(2), { cache })).rejects.toThrow(InputError);
            await expect(m.forward(tok(2), { cache })).rejects.toThrow(/at most 4 positions/);
            // Not continuing where the cache ends; another batch size.
            await expect(m.forward(tok(1), { cache, positionOffset: 1 })).rejects.toThrow(InputError);
            await expect(m.forward(tok(1, 2), { cache })).rejects.toThrow(ShapeError);
            // No cached VJPs, no cached forwardFrom.
            const x = ops.zeros([1, 1, m.spec.dims.dModel]);
            const attn = m.spec.segments.find((s) => s.kind === 'attention')!;
            await expect(m.runtime.vjp(attn.name, attn.inputs.map(() => x), x, { cache })).rejects.toThrow(InputError);
            await expect(m.forwardFrom('embed', x, new Map(), { cache })).rejects.toThrow(InputError);
            expect(cache.length).toBe(3);
            // Still usable: the last position fits.
            await m.forward(tok(1), { cache });
            expect(cache.length).toBe(4);
            await expect(m.forward(tok(1), { cache })).rejects.toThrow(/at most 4 positions/);
          });
        } finally {
          cache.dispose();
        }
        await ops.scope(async () => {
          await expect(m.forward(tok(1), { cache })).rejects.toThrow(InputError);
        });
        // A cache made for another loaded copy of the model is refused by the runtime.
        const other = await options.load(dir);
        const foreign = await other.createKvCache({ batch: 1, maxLength: 4 });
        try {
          await ops.scope(async () => {
            await expect(m.forward(tok(2), { cache: foreign })).rejects.toThrow(InputError);
          });
        } finally {
          foreign.dispose();
          other.dispose();
        }
      });

      /**
       * Greedy decoding of `prompts` (token rows) for `steps` tokens through one cache of rows
       * left-padded to the longest: the last-position logits [rows][V] of the prefill and every step.
       */
      async function decode(m: Model, prompts: readonly number[][], steps: number, edits?: () => ReadonlyMap<string, Edit>): Promise<Float32Array[]> {
        const V = m.spec.dims.vocabSize;
        const longest = Math.max(...prompts.map((p) => p.length));
        const padding = prompts.map((p) => longest - p.length);
        const cache = await m.createKvCache({ batch: prompts.length, maxLength: longest + steps, ...(padding.some((p) => p > 0) ? { padding } : {}) });
        const out: Float32Array[] = [];
        try {
          // Pad slots hold token 0: what they hold must not matter.
          let ids = Int32Array.from(prompts.flatMap((p, r) => [...Array<number>(padding[r]!).fill(0), ...p]));
          let n = longest;
          for (let step = 0; step <= steps; step++) {
            const last = await read(m, async () => (await m.forward(m.tokens(ids, prompts.length, n), { cache, edits: edits?.(), logits: { lastOnly: true } })).logits!);
            out.push(last);
            ids = Int32Array.from(argmaxRows(last, V));
            n = 1;
          }
        } finally {
          cache.dispose();
        }
        return out;
      }

      it('prompts of different lengths, left-padded in one cache, decode as each alone', async () => {
        const m = await get();
        const V = m.spec.dims.vocabSize;
        const prompts = [3, 7, 5].map((n, r) => Array.from({ length: n }, (_, s) => (5 * s + 11 * r + 2) % V));
        if (!m.supportsPaddedKvCache) {
          await expect(m.createKvCache({ batch: 3, maxLength: 8, padding: [4, 0, 2] })).rejects.toThrow(CapabilityError);
          return;
        }
        await expect(m.createKvCache({ batch: 3, maxLength: 8, padding: [4, 0] })).rejects.toThrow(ShapeError);
        await expect(m.createKvCache({ batch: 3, maxLength: 8, padding: [4, 0, 8] })).rejects.toThrow(InputError);
        const subs = m.submodules.map((s) => s.name);
        const at = [subs[0]!, subs.find((s) => s.startsWith('attn_'))!];
        const edits = () => new Map<string, Edit>([
          [at[0]!, positionEdit(m, at[0]!, (p) => p === 2, 4)],
          [at[1]!, positionEdit(m, at[1]!, (p) => p >= 4, 5)],
        ]);
        const STEPS = 4;
        for (const e of [undefined, edits]) {
          const together = await decode(m, prompts, STEPS, e);
          let worst = 0;
          for (let r = 0; r < prompts.length; r++) {
            const alone = await decode(m, [prompts[r]!], STEPS, e);
            for (let step = 0; step <= STEPS; step++) {
              const a = alone[step]!, t = together[step]!.subarray(r * V, (r + 1) * V);
              for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs(a[i]! - t[i]!) / Math.max(1, Math.abs(a[i]!)));
              expect(argmaxRows(t, V), `row ${r} step ${step}: the greedy token`).toEqual(argmaxRows(a, V));
            }
          }
          expect(worst, `max relative |padded batch − alone| ${e ? 'with edits' : ''} = ${worst}`).toBeLessThanOrEqual(batchTolerance);
        }
      });

      it('a backend without the capability is refused with a CapabilityError', async () => {
        const m = await get();
        const without = Object.create(m, { backend: { value: { ...m.backend, capabilities: { ...m.backend.capabilities, kvCache: false } } } }) as Model;
        expect(without.supportsKvCache).toBe(false);
        await expect(without.createKvCache({ batch: 1, maxLength: 2 })).rejects.toThrow(CapabilityError);
        const unpadded = Object.create(m, { backend: { value: { ...m.backend, capabilities: { ...m.backend.capabilities, paddedKvCache: false } } } }) as Model;
        expect(unpadded.supportsPaddedKvCache).toBe(false);
        await expect(unpadded.createKvCache({ batch: 2, maxLength: 4, padding: [1, 0] })).rejects.toThrow(CapabilityError);
      });

      runner.afterAll?.(() => { model?.dispose(); model = undefined; });
    });
  }
}
