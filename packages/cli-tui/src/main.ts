// Process entry of the `sfc` binary (bin/sfc.js imports the built copy of this file).
import { hideBin } from 'yargs/helpers';
import { runCli } from './cli.js';
import { removePendingTempFiles } from './write-atomic.js';

// Interrupted: no half-written temp files left behind (targets are untouched until the rename).
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(signal, () => {
    removePendingTempFiles();
    process.stderr.write(`\ninterrupted (${signal})\n`);
    process.exit(code);
  });
}

// `sfc … | head` closes the pipe early: that is not a failure.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await runCli(hideBin(process.argv));
