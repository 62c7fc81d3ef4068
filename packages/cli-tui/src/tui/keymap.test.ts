import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KEYMAP } from './keymap.js';

describe('keymap', () => {
  it('docs/tui.md documents every key of the help overlay', () => {
    const md = readFileSync(new URL('../../../../docs/tui.md', import.meta.url), 'utf8');
    for (const g of KEYMAP) {
      for (const k of g.keys) {
        for (const key of k.keys.split(' ')) expect(md, `${key} (${k.what})`).toContain(`\`${key}\``);
        expect(md).toContain(k.what.replace(/\|/g, '\\|'));
      }
    }
  });

  it('fits the help overlay at 80 columns', () => {
    for (const g of KEYMAP) for (const k of g.keys) expect(2 + 10 + 1 + k.what.length, k.what).toBeLessThanOrEqual(80);
  });
});
