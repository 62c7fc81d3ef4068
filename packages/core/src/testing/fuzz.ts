// Deterministic mutation fuzzing for sfc's readers (binary formats in @sfc/dictionaries, JSON
// inputs in core): a seeded generator, byte and text mutations, and a harness that runs each case
// and records which ones failed with something other than an SfcError, the slowest case, and the
// most memory one case allocated. Test files assert on the result (no test runner in here).

import { SfcError } from '../errors.js';

export interface Rng { next(): number; int(n: number): number; pick<T>(a: readonly T[]): T }

/** mulberry32: fast, seeded, identical on every platform. */
export function rng(seed: number): Rng {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (a) => a[Math.floor(next() * a.length)]! };
}

export const INTERESTING_U32 = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** One random mutation of `base`: bit flips, truncation, insertion, deletion, an interesting u32, or a copied chunk. */
export function mutateBytes(r: Rng, base: Uint8Array): Uint8Array {
  const n = base.length;
  switch (r.int(6)) {
    case 0: { // bit flips
      const b = base.slice();
      for (let k = 1 + r.int(8); k > 0 && n; k--) b[r.int(n)] ^= 1 << r.int(8);
      return b;
    }
    case 1: return base.slice(0, r.int(n + 1)); // truncation
    case 2: { // insertion
      const at = r.int(n + 1), len = 1 + r.int(16);
      const b = new Uint8Array(n + len);
      b.set(base.subarray(0, at));
      for (let i = 0; i < len; i++) b[at + i] = r.int(256);
      b.set(base.subarray(at), at + len);
      return b;
    }
    case 3: { // deletion
      const at = r.int(n + 1), len = 1 + r.int(32);
      const b = new Uint8Array(Math.max(0, n - len));
      b.set(base.subarray(0, at).subarray(0, b.length));
      if (at + len < n) b.set(base.subarray(at + len), at);
      return b;
    }
    case 4: { // interesting 32-bit values
      const b = base.slice();
      if (n >= 4) {
        const at = r.int(n - 3);
        new DataView(b.buffer).setUint32(at, r.pick(INTERESTING_U32), r.next() < 0.5);
      }
      return b;
    }
    default: { // copy a chunk over another place
      const b = base.slice();
      if (n < 2) return b;
      const from = r.int(n), to = r.int(n), len = 1 + r.int(Math.min(64, n));
      b.copyWithin(to, from, from + len);
      return b;
    }
  }
}

/** Replaces one run of digits inside a text with another number (huge, negative, fractional, exponent). */
export function mutateDigits(r: Rng, text: string): string {
  const runs = [...text.matchAll(/\d+/g)];
  if (!runs.length) return text;
  const m = r.pick(runs);
  const repl = r.pick(['0', '1', '2', String(r.int(100)), '65536', '2147483647', '2147483648', '4294967296', '9007199254740993', '-1', '1e3',
    String(r.int(1e9)), '1e999', '1e-999', '0.5', '1e9']);
  return text.slice(0, m.index) + repl + text.slice(m.index! + m[0].length);
}

/**
 * One mutation of a JSON value: a number replaced (huge, negative, fractional, non-integer), a
 * value replaced by another type, a key deleted or renamed, or an array emptied/grown. Works on a
 * deep copy; `base` is not changed.
 */
export function mutateJson(r: Rng, base: unknown): unknown {
  const root = structuredClone(base) as unknown;
  const slots: { holder: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const walk = (v: unknown, depth: number) => {
    if (depth > 12 || slots.length > 5000 || typeof v !== 'object' || v === null) return;
    if (Array.isArray(v)) {
      v.forEach((c, i) => { if (r.next() < 0.2 || v.length < 16) { slots.push({ holder: v, key: i }); walk(c, depth + 1); } });
    } else {
      for (const [k, c] of Object.entries(v)) { slots.push({ holder: v as Record<string, unknown>, key: k }); walk(c, depth + 1); }
    }
  };
  walk(root, 0);
  if (!slots.length) return r.pick(VALUES);
  for (let k = 1 + r.int(3); k > 0; k--) {
    const { holder, key } = r.pick(slots);
    const old = (holder as Record<string | number, unknown>)[key];
    const mode = r.int(6);
    if (mode === 0 && !Array.isArray(holder)) { delete (holder as Record<string, unknown>)[key as string]; continue; }
    if (mode === 1 && !Array.isArray(holder)) {
      (holder as Record<string, unknown>)[r.pick(['__proto__', 'constructor', `${String(key)}x`, ''])] = old;
      continue;
    }
    let v: unknown;
    if (typeof old === 'number' && mode < 5) v = r.pick(NUMBERS);
    else if (Array.isArray(old) && mode === 2) v = [];
    else if (Array.isArray(old) && mode === 3) v = [...old, ...old];
    else if (typeof old === 'string' && mode < 4) v = r.pick(STRINGS);
    else v = r.pick(VALUES);
    (holder as Record<string | number, unknown>)[key] = v;
  }
  return root;
}

const NUMBERS = [0, -1, 1, 0.5, -0.5, 1e9, 1e300, -1e300, 2 ** 31, 2 ** 32 + 1, 2 ** 53 + 2, 3567587328, 1e-300, Infinity, -Infinity, NaN];
const STRINGS = ['', '\u001b]0;x\u0007', 'x'.repeat(10_000), '__proto__', 'constructor', 'toString', '\u0000', 'gpt_neox', 'gpt2', 'resid_0', 'y'];
const VALUES: unknown[] = [null, true, false, 0, -1, 1e300, '', 'x', [], {}, [1, 2], { a: 1 }, ...NUMBERS.slice(-3)];

export interface FuzzFailure { readonly caseNo: number; readonly strategy: string; readonly error: string }

export interface FuzzResult {
  readonly name: string;
  readonly cases: number;
  /** Cases that threw something other than an SfcError (the readers' contract is "read, or refuse with an SfcError"). */
  readonly failures: readonly FuzzFailure[];
  readonly refused: number;
  readonly slowest: number;
  readonly slowestCase: number;
  /**
   * Largest growth of heap + ArrayBuffer memory over one case (bytes): what the case kept plus its
   * garbage not yet collected. A collection during the case can hide a transient peak, so this is
   * an estimate, not a hard ceiling; it does catch a case that keeps or builds up large buffers.
   */
  readonly maxMemory: number;
  readonly maxMemoryCase: number;
  readonly total: number;
}

function memoryInUse(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Runs `count` cases made by `one` from a generator seeded with `seed`. */
export function fuzz(name: string, count: number, seed: number, one: (r: Rng) => { strategy: string; run: () => void }): FuzzResult {
  const r = rng(seed);
  const failures: FuzzFailure[] = [];
  let slowest = 0, slowestCase = -1, refused = 0, maxMemory = 0, maxMemoryCase = -1;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const { strategy, run } = one(r);
    const m = memoryInUse();
    const t = performance.now();
    try {
      run();
    } catch (e) {
      if (e instanceof SfcError) refused++;
      else failures.push({ caseNo: i, strategy, error: e instanceof Error ? `${e.name}: ${e.message.slice(0, 300)}\n${e.stack?.split('\n').slice(1, 4).join('\n')}` : String(e) });
    }
    const dt = performance.now() - t;
    const dm = memoryInUse() - m;
    if (dt > slowest) { slowest = dt; slowestCase = i; }
    if (dm > maxMemory) { maxMemory = dm; maxMemoryCase = i; }
  }
  return { name, cases: count, failures, refused, slowest, slowestCase, maxMemory, maxMemoryCase, total: performance.now() - t0 };
}

/** One line for the test output, so the time and memory budgets can be watched. */
export function fuzzSummary(res: FuzzResult): string {
  return `[fuzz] ${res.name}: ${res.cases} cases, ${res.refused} refused with SfcError, ${res.failures.length} other errors, `
    + `${res.total.toFixed(0)} ms total, slowest case #${res.slowestCase} ${res.slowest.toFixed(1)} ms, `
    + `most memory case #${res.maxMemoryCase} ${(res.maxMemory / 2 ** 20).toFixed(1)} MiB`;
}
