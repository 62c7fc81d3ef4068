#!/usr/bin/env node
// The `sfc` binary: a shim that runs the compiled CLI (dist/, built by `npm run build`, which
// `npm ci` runs through the root `prepare` script).
//
// Memory (Linux): glibc's malloc raises its mmap threshold (up to 32 MiB) each time a large block
// is freed, after which the 1–32 MiB buffers sfc allocates and frees by the thousand (SAE
// activations, gradients, onnxruntime outputs) are carved from its heaps and kept there: RSS
// ratchets up by 0.2–0.4 GiB over a Pythia-70m discovery (docs/performance.md). A fixed threshold
// returns them to the system, but glibc reads it only at process start, so on Linux the shim runs
// the CLI in a child process with MALLOC_MMAP_THRESHOLD_ set — unless it is already set (any value,
// yours wins) or SFC_MALLOC_TUNING=0.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('sfc is not built: run `npm run build` at the repo root\n');
  process.exit(1);
}

const tune = process.platform === 'linux' && process.env.MALLOC_MMAP_THRESHOLD_ === undefined && process.env.SFC_MALLOC_TUNING !== '0';
if (!tune) {
  await import(main.href);
} else {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: String(1 << 20) },
  });
  // Signals sent to this process are passed on. Ctrl-C in a terminal reaches both processes (one
  // process group), so the child sees it twice within milliseconds; its handler counts that as one
  // press (commands/interrupt.ts).
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('error', (e) => {
    process.stderr.write(`sfc: could not start the CLI process: ${e.message} (SFC_MALLOC_TUNING=0 runs it in this process)\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else {
      process.exit(code ?? 1);
    }
  });
}
