import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderCliDocs, withConfigKeys } from './cli-docs.js';
import { CONFIG_FIELDS } from './config/schema.js';

const docs = (name: string) => readFileSync(new URL(`../../../docs/${name}`, import.meta.url), 'utf8');

describe('docs', () => {
  it('docs/cli.md is generated from the current yargs definitions', async () => {
    // On failure: npx tsx --conditions=@sfc/source tools/gen-cli-docs.ts
    expect(docs('cli.md')).toBe(await renderCliDocs());
  });

  it('docs/config.md documents every config key', () => {
    const md = docs('config.md');
    for (const f of CONFIG_FIELDS) expect(md, f.path).toContain(`\`${f.path}\``);
    expect(md).toBe(withConfigKeys(md)); // the key table is current
  });
});
