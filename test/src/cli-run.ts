// Runs the `sfc` CLI as a subprocess, the way users run it, from the TypeScript source (tsx with
// the @sfc/source condition), so tests never depend on a stale dist/. At most two at a time:
// the CI machine has two cores.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './paths.js';

export const CLI_MAIN = join(REPO_ROOT, 'packages', 'cli-tui', 'src', 'main.ts');
/** tsx's loader by absolute URL, so the CLI also starts from a working folder outside the repo. */
const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;

export interface CliResult { readonly code: number | null; readonly stdout: string; readonly stderr: string }

let running = 0;
const waiting: (() => void)[] = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((r) => waiting.push(r));
  running++;
  try { return await fn(); } finally { running--; waiting.shift()?.(); }
}

/** The command line that runs the CLI from source, for scripts outside this process (e.g. Slurm jobs). */
export function sfcCommandLine(): string[] {
  return [process.execPath, '--conditions=@sfc/source', '--import', TSX, CLI_MAIN];
}

export function sfc(args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return slot(() => new Promise((resolve, reject) => {
    const [node, ...pre] = sfcCommandLine();
    const child = spawn(node!, [...pre, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  }));
}

/** A stack-trace line, which users must not see without --verbose. */
export const STACK_LINE = /\n\s+at .+\(?.*:\d+:\d+\)?/;
