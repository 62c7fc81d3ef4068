#!/usr/bin/env node
// The `sfc` binary: a shim that runs the compiled CLI (dist/, built by `npm run build`, which
// `npm ci` runs through the root `prepare` script).
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('sfc is not built: run `npm run build` at the repo root\n');
  process.exit(1);
}
await import(main.href);
