// Will it fit? The bytes a load needs, checked against the memory this process can still use,
// before any of it is read: a model or SAE set too large is one clear error naming the bytes and
// what to load instead, never an out-of-memory kill minutes later (docs/formats.md, checkpoints).

import { freemem } from 'node:os';
import { CapabilityError } from '../errors.js';

export interface MemoryNeed {
  /** What takes the bytes, e.g. 'model weights (bf16 kept as bf16)' or 'SAE resid_3'. */
  readonly what: string;
  readonly bytes: number;
}

export interface MemoryCheckOptions {
  /** Bytes available; default: what the OS reports free (MemAvailable), capped by a cgroup limit. */
  readonly available?: number;
  /** The load being checked, for the message: 'loading the model', 'loading 26 SAEs'. */
  readonly action: string;
  /** What to pass instead (fewer submodules, …). */
  readonly hint: string;
}

/** Memory this process can still take: free memory, or the cgroup limit minus what is in use. */
export function availableMemory(): number {
  const free = freemem();
  const limit = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.() ?? 0;
  if (limit > 0 && limit < Number.MAX_SAFE_INTEGER) return Math.min(free, Math.max(0, limit - process.memoryUsage().rss));
  return free;
}

export function formatBytes(n: number): string {
  const gib = n / 2 ** 30;
  if (gib >= 1) return `${gib.toFixed(gib >= 10 ? 1 : 2)} GiB`;
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/** Throws a CapabilityError when the needs add up to more than is available. */
export function checkMemory(needs: readonly MemoryNeed[], options: MemoryCheckOptions): void {
  const total = needs.reduce((s, n) => s + n.bytes, 0);
  const available = options.available ?? availableMemory();
  if (total <= available) return;
  const biggest = [...needs].sort((a, b) => b.bytes - a.bytes).slice(0, 4).map((n) => `${n.what} ${formatBytes(n.bytes)}`);
  throw new CapabilityError(
    `${options.action} needs ${formatBytes(total)} (${total} bytes) but only ${formatBytes(available)} is available` +
      ` (largest: ${biggest.join(', ')}${needs.length > 4 ? `, … ${needs.length} in all` : ''})`,
    options.hint);
}
