// Regenerates docs/cli.md and the key table of docs/config.md from the `sfc` yargs definitions
// and the config schema: `npx tsx --conditions=@sfc/source tools/gen-cli-docs.ts`
// (packages/cli-tui/src/cli-docs.test.ts fails when either is out of date).
import { readFileSync, writeFileSync } from 'node:fs';
import { renderCliDocs, withConfigKeys } from '@sfc/cli';

const cli = new URL('../docs/cli.md', import.meta.url);
writeFileSync(cli, await renderCliDocs());
const config = new URL('../docs/config.md', import.meta.url);
writeFileSync(config, withConfigKeys(readFileSync(config, 'utf8')));
process.stdout.write(`wrote ${cli.pathname}\nupdated ${config.pathname}\n`);
