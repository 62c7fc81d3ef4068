// Compiled segment graphs on disk. A segment graph's bytes describe everything that shapes it
// (the spec's dims, eps, scale, rotary settings, op sequence); weights are not in the graph (they
// are fed as inputs, shared by every session of a model), so the key is a hash of the graph,
// onnxruntime's version and the execution providers. What is stored is the graph after ORT's
// optimization passes (level 'extended': fusions such as Transpose+MatMul → one transposed GEMM),
// so later loads skip them. Each entry carries a SHA-256 of its payload; an entry that does not
// match (truncated, edited, corrupt) is deleted and rebuilt, never loaded. Writes are atomic
// (temp file + rename). A cache that cannot be written only costs the optimization time.

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as ort from 'onnxruntime-node';
import { createSession, ort as ortModule, sessionOptions, type SessionSettings } from './ort-session.js';

const MAGIC = 'sfc-onnx-graph/v1';

/**
 * Temp files in flight (onnxruntime's optimized-model output, cache entries before their rename):
 * removed when the process exits mid-way (e.g. a second Ctrl-C while a graph is being optimized).
 */
const inFlight = new Set<string>();
let exitHookInstalled = false;
function track(path: string): string {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => { for (const p of inFlight) rmSync(p, { force: true }); });
  }
  inFlight.add(path);
  return path;
}
function done(path: string): void {
  rmSync(path, { force: true });
  inFlight.delete(path);
}

export interface GraphCacheStats {
  hits: number;
  misses: number;
  /** Entries found corrupt and rebuilt. */
  rebuilt: number;
  /** Failed cache writes (the session was still created). */
  writeFailures: number;
}

/** `.sfc-cache/onnx` under the OS cache dir ($XDG_CACHE_HOME, ~/.cache, %LOCALAPPDATA%), else under the cwd. */
export function defaultCacheDir(): string {
  const env = process.env;
  const base = env.XDG_CACHE_HOME || (process.platform === 'win32' ? env.LOCALAPPDATA : undefined)
    || (process.platform === 'darwin' ? join(homedir(), 'Library', 'Caches') : undefined)
    || (homedir() ? join(homedir(), '.cache') : undefined);
  return join(base ?? process.cwd(), '.sfc-cache', 'onnx');
}

function sha256(...parts: (string | Uint8Array)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** Parses a cache entry; undefined when the header or the checksum is wrong. */
export function readEntry(buf: Buffer): Uint8Array | undefined {
  const nl1 = buf.indexOf(10);
  const nl2 = nl1 < 0 ? -1 : buf.indexOf(10, nl1 + 1);
  if (nl2 < 0 || buf.subarray(0, nl1).toString('utf8') !== MAGIC) return undefined;
  const want = buf.subarray(nl1 + 1, nl2).toString('utf8');
  const payload = buf.subarray(nl2 + 1);
  return sha256(payload) === want ? payload : undefined;
}

function entry(payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${MAGIC}\n${sha256(payload)}\n`, 'utf8'), payload]);
}

export class GraphCache {
  readonly stats: GraphCacheStats = { hits: 0, misses: 0, rebuilt: 0, writeFailures: 0 };

  constructor(readonly dir: string, private readonly settings: SessionSettings) {}

  /** Cache file for a graph (exposed for tests). */
  pathFor(graph: Uint8Array): string {
    const key = sha256(MAGIC, ortModule.env.versions.common ?? '', this.settings.executionProviders.join(','), graph);
    return join(this.dir, `${key}.onnx`);
  }

  /** A session for `graph`: from the cached optimized graph when valid, else optimized now and cached. */
  async session(graph: Uint8Array, what: string): Promise<ort.InferenceSession> {
    const path = this.pathFor(graph);
    let cached: Buffer | undefined;
    try { cached = readFileSync(path); } catch { /* not cached */ }
    if (cached) {
      const payload = readEntry(cached);
      if (payload) {
        try {
          const s = await createSession(payload, { ...this.settings, graphOptimizationLevel: 'disabled' }, what);
          this.stats.hits++;
          return s;
        } catch {
          // Valid checksum but ORT refuses it (e.g. written by another ORT build): rebuild below.
        }
      }
      this.stats.rebuilt++;
      rmSync(path, { force: true });
    }
    this.stats.misses++;
    const tmpOpt = track(join(tmpdir(), `sfc-onnx-${process.pid}-${randomBytes(6).toString('hex')}.onnx`));
    const session = await ortModule.InferenceSession.create(graph,
      sessionOptions({ ...this.settings, graphOptimizationLevel: 'extended' }, { optimizedModelFilePath: tmpOpt })).catch(() => undefined);
    if (!session) {
      done(tmpOpt);
      return createSession(graph, this.settings, what); // reports the failure as a BackendError
    }
    try {
      const optimized = readFileSync(tmpOpt);
      mkdirSync(this.dir, { recursive: true });
      const tmp = track(`${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
      writeFileSync(tmp, entry(optimized));
      renameSync(tmp, path);
      inFlight.delete(tmp);
    } catch {
      this.stats.writeFailures++;
    } finally {
      done(tmpOpt);
    }
    return session;
  }
}
