import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CapabilityError } from '@sfc/core';
import { benchCommand, findBenchHarness } from './bench.js';

describe('sfc bench', () => {
  it('finds the harness of a checkout from any folder inside it', () => {
    const root = mkdtempSync(join(tmpdir(), 'sfc-bench-'));
    mkdirSync(join(root, 'bench'));
    mkdirSync(join(root, 'packages', 'x'), { recursive: true });
    writeFileSync(join(root, 'bench', 'run.ts'), '');
    writeFileSync(join(root, 'package.json'), '{}');
    expect(findBenchHarness(join(root, 'packages', 'x'))).toBe(root);
    expect(findBenchHarness(tmpdir())).toBeUndefined();
  });
  it('outside a checkout, says so with a typed error', async () => {
    const io = { stdout: { write() {}, isTTY: false }, stderr: { write() {}, isTTY: false }, cwd: mkdtempSync(join(tmpdir(), 'sfc-nobench-')), env: {} };
    await expect(benchCommand.run!({ _: ['bench'] }, io as never)).rejects.toBeInstanceOf(CapabilityError);
  });
});
