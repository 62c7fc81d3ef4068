// Ctrl-C during discover/attribute/evaluate: the first SIGINT aborts the run's signal (and nothing
// else), a second goes to the process's own handlers, and afterwards those handlers are back.
// End to end in-process on fixtures/small-a (tfjs): SIGINT at the first progress line stops the
// command with exit 130, one line on stderr, and no output file.

import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli.js';
import { memoryIO } from '../io.js';
import { withInterrupt } from './interrupt.js';

/** A process stand-in: SIGINT listeners and a recorded kill(). */
function fakeProcess() {
  const emitter = new EventEmitter();
  const kills: string[] = [];
  return {
    emitter,
    kills,
    target: {
      pid: 4242,
      listeners: (e: string) => emitter.listeners(e),
      on(e: string, l: (...a: unknown[]) => void) { emitter.on(e, l); return this; },
      removeListener(e: string, l: (...a: unknown[]) => void) { emitter.removeListener(e, l); return this; },
      kill: (pid: number, signal?: string | number) => { kills.push(`${pid} ${signal}`); return true; },
    } as unknown as NodeJS.Process,
  };
}

describe('withInterrupt', () => {
  it('aborts on the first SIGINT only, hands the second to the previous handlers, and restores them', async () => {
    const p = fakeProcess();
    const exits: string[] = [];
    const previous = () => exits.push('exit');
    p.emitter.on('SIGINT', previous);
    let seen: AbortSignal | undefined;
    const result = await withInterrupt(async (signal) => {
      seen = signal;
      expect(p.emitter.listeners('SIGINT')).not.toContain(previous);
      p.emitter.emit('SIGINT');
      expect(signal.aborted).toBe(true);
      expect(String((signal.reason as Error).message)).toContain('SIGINT');
      expect(exits).toEqual([]); // the first Ctrl-C only cancels
      p.emitter.emit('SIGINT');
      expect(exits).toEqual(['exit']); // the second one is the process's
      return 7;
    }, p.target);
    expect(result).toBe(7);
    expect(seen?.aborted).toBe(true);
    expect(p.emitter.listeners('SIGINT')).toEqual([previous]);
  });

  it('restores the handlers when the run fails, and re-raises a second SIGINT when nobody else listens', async () => {
    const p = fakeProcess();
    await expect(withInterrupt(async () => {
      p.emitter.emit('SIGINT');
      p.emitter.emit('SIGINT');
      throw new Error('boom');
    }, p.target)).rejects.toThrow('boom');
    expect(p.kills).toEqual(['4242 SIGINT']);
    expect(p.emitter.listeners('SIGINT')).toEqual([]);
  });

  it('leaves the signal alone without a Ctrl-C', async () => {
    const p = fakeProcess();
    const signal = await withInterrupt(async (s) => s, p.target);
    expect(signal.aborted).toBe(false);
    expect(p.emitter.listenerCount('SIGINT')).toBe(0);
  });
});

const SMALL_A = fileURLToPath(new URL('../../../../fixtures/small-a', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sfc-interrupt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('Ctrl-C during a command', () => {
  const common = ['--model', SMALL_A, '--dictionaries', join(SMALL_A, 'dictionaries'), '--data', join(SMALL_A, 'data.jsonl'), '--backend', 'tfjs', '--num-examples', '8', '--batch-size', '4'];
  const cases: [string, string[], string][] = [
    ['discover', ['discover', ...common, '--out', join(dir, 'circuit.json')], 'circuit.json'],
    ['attribute (ig)', ['attribute', ...common, '--method', 'ig', '--out', join(dir, 'effects.json')], 'effects.json'],
    ['evaluate', ['evaluate', ...common, '--circuit', fileURLToPath(new URL('../tui/test-data/small-a-circuit.json', import.meta.url)), '--out', join(dir, 'eval.json')], 'eval.json'],
  ];

  for (const [operation, args, file] of cases) {
    it(`${args[0]}: exits 130 with one line and writes nothing`, async () => {
      const before = process.listeners('SIGINT');
      const io = memoryIO({ cwd: dir });
      let interrupted = false;
      const write = io.stderr.write;
      // The first progress line (non-TTY output) is the moment to press Ctrl-C: the work has begun.
      io.stderr.write = (text: string) => {
        write(text);
        if (!interrupted && /\d+\/\d+/.test(text)) { interrupted = true; process.emit('SIGINT'); }
      };
      const code = await runCli(args, io);
      expect(interrupted, io.err()).toBe(true);
      expect(code, io.err()).toBe(130);
      const lines = io.err().trimEnd().split('\n');
      expect(lines.at(-1)).toBe(`error: ${operation} cancelled`);
      expect(lines.filter((l) => l.startsWith('error:') || l.startsWith('hint:'))).toHaveLength(1);
      expect(existsSync(join(dir, file))).toBe(false);
      expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      expect(process.listeners('SIGINT')).toEqual(before);
    });
  }
});
