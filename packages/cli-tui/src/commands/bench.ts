// `sfc bench`: the benchmark harness of a source checkout (bench/run.ts — it generates a
// Pythia-70m-shaped workload and times every stage per backend, optionally against PyTorch).
// The harness is a repository script, not part of the published packages, so the command finds
// it from the working folder upward and runs it with tsx; outside a checkout it says so.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { BackendError, CapabilityError } from '@sfc/core';
import type { SfcCommand } from './command.js';

/** The checkout root holding bench/run.ts, searched from `from` upward. */
export function findBenchHarness(from: string): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'bench', 'run.ts')) && existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

export const benchCommand: SfcCommand = {
  command: 'bench',
  describe: 'Run the benchmark harness of an sfc source checkout (bench/run.ts): per-stage timings and peak RSS per backend; arguments after -- go to the harness',
  builder: (y) => y.strict(false).parserConfiguration({ 'unknown-options-as-args': true }),
  examples: [
    ['$0 bench -- --scale small --backend tfjs-wasm,onnx', 'Quick check on a tiny workload'],
    ['$0 bench -- --scale pythia70m --examples 10 --pytorch', 'The issue-9 workload, with the PyTorch column'],
  ],
  async run(argv, io) {
    const root = findBenchHarness(io.cwd);
    if (!root) {
      throw new CapabilityError(`no benchmark harness (bench/run.ts) in ${io.cwd} or above`,
        'sfc bench runs the harness of a source checkout: run it inside a clone of the sfc repository (or use `npm run bench` there)');
    }
    const tsx = createRequire(join(root, 'package.json')).resolve('tsx/cli');
    const passthrough = ((argv._ as unknown[]) ?? []).slice(1).map(String).concat(((argv['--'] as unknown[]) ?? []).map(String));
    const code = await new Promise<number>((done, fail) => {
      const child = spawn(process.execPath, [tsx, '--conditions=@sfc/source', join(root, 'bench', 'run.ts'), ...passthrough],
        { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...io.env } });
      child.on('error', fail);
      child.on('exit', (c, signal) => done(c ?? (signal ? 1 : 0)));
    });
    if (code !== 0) throw new BackendError(`the benchmark harness exited with code ${code}`, 'see its output above; `sfc bench -- --help` lists its options');
  },
};
