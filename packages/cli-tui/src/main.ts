// Process entry of the `sfc` binary (bin/sfc.js imports the built copy of this file).
import { hideBin } from 'yargs/helpers';
import { runCli } from './cli.js';
import { removeTempFilesOnSignals } from './write-atomic.js';

removeTempFilesOnSignals();

// `sfc … | head` closes the pipe early: that is not a failure.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await runCli(hideBin(process.argv));
