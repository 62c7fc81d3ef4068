import { describe, expect, it } from 'vitest';
import { runCli } from '../cli.js';
import { memoryIO } from '../io.js';

const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;

describe('sfc tui (command)', () => {
  it('is listed in the help with its options', async () => {
    const io = memoryIO();
    expect(await runCli(['tui', '--help'], io)).toBe(0);
    for (const flag of ['--annotations', '--model-id', '--sae-set', '--prompt', '--answer', '--patch-answer', '--generate', '--model', '--dictionaries', '--data', '--out']) {
      expect(io.out()).toContain(flag);
    }
  });

  it.skipIf(interactive)('refuses to start without a terminal, with a hint (skipped when the tests run in a terminal)', async () => {
    const io = memoryIO();
    const code = await runCli(['tui', 'circuit.json'], io);
    expect(code).not.toBe(0);
    expect(io.err()).toContain('error: sfc tui needs an interactive terminal');
    expect(io.err()).toContain('hint:');
  });
});
