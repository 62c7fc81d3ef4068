// Every file the CLI writes goes through core's safe writer (temp file + full write + fsync +
// rename, mode kept; FIFOs and devices written through): see packages/core/src/formats/write-atomic.ts.
import { removePendingTempFiles } from '@sfc/core';

export { writeFileAtomic, checkOutputPath, removePendingTempFiles, type AtomicContent } from '@sfc/core';

/**
 * Interrupted (Ctrl-C outside a cancellable run, kill, a closed terminal): unfinished temp files
 * are deleted (targets are untouched until the rename) and the process exits with 128 + the
 * signal number, as shells report it.
 */
export function removeTempFilesOnSignals(target: Pick<NodeJS.Process, 'on' | 'exit' | 'stderr'> = process): void {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    target.on(signal, () => {
      removePendingTempFiles();
      target.stderr.write(`\ninterrupted (${signal})\n`);
      target.exit(code);
    });
  }
}
