// Precedence flag > circuit > config for the model and SAEs of a command that opens a circuit,
// and the refusal of a flag or config file naming other content (before anything loads).

import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, NotFoundError } from '@sfc/core';
import { configJson } from './commands/config.js';
import { describeSource } from './config/config.js';
import { memoryIO } from './io.js';
import { resolveCommandConfig } from './session.js';
import { SMALL_A, SMALL_A_CIRCUIT, writeRecordedCircuit } from './testing/recorded-circuit.js';

const OTHER_MODEL = join(SMALL_A, '..', 'models', 'gpt2-a');
const OPTIONS = ['model', 'dictionaries'] as const;
let dir: string;
let circuit: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sfc-circuit-inputs-'));
  circuit = join(dir, 'circuit.json');
  await writeRecordedCircuit(circuit);
});

const resolveIn = (cwd: string, argv: Record<string, unknown>) => resolveCommandConfig(memoryIO({ cwd }), argv, OPTIONS);

describe('a circuit supplies its own model and SAEs', () => {
  it('with no flag and no config file', async () => {
    const c = await resolveIn(dir, { circuit });
    expect(c.get('model')).toBe(SMALL_A);
    expect(describeSource(c.source('model'))).toBe(`circuit ${circuit}`);
    expect(c.get<Record<string, string>>('dictionaries.submodules')!.resid_1).toBe(join(SMALL_A, 'dictionaries', 'resid_out_layer1'));
  });

  it('refuses a config file naming another model, naming both', async () => {
    const proj = mkdtempSync(join(tmpdir(), 'sfc-circuit-inputs-'));
    writeFileSync(join(proj, 'sfc.config.json'), JSON.stringify({ model: OTHER_MODEL }));
    const e = await resolveIn(proj, { circuit }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toContain(join(proj, 'sfc.config.json'));
    expect((e as Error).message).toContain(OTHER_MODEL);
    expect((e as Error).message).toContain(SMALL_A);
  });

  it('refuses a flag naming another model', async () => {
    await expect(resolveIn(dir, { circuit, model: OTHER_MODEL })).rejects.toThrow(/flag --model names model .*gpt2-a.* but the circuit .* small-a/);
  });

  it('accepts the same model at another path from a flag (flag wins)', async () => {
    const copy = join(dir, 'copy-of-small-a');
    cpSync(SMALL_A, copy, { recursive: true });
    const c = await resolveIn(dir, { circuit, model: copy });
    expect(c.get('model')).toBe(copy);
    expect(describeSource(c.source('model'))).toBe('flag --model');
  });

  it('refuses SAEs from a config file that are not the circuit\'s', async () => {
    const proj = mkdtempSync(join(tmpdir(), 'sfc-circuit-inputs-'));
    writeFileSync(join(proj, 'sfc.config.json'), JSON.stringify({ dictionaries: { folder: join(SMALL_A, 'saelens') } }));
    await expect(resolveIn(proj, { circuit })).rejects.toThrow(/names SAEs in .*saelens, which do not hold the SAEs .* resid_1/);
  });

  it('a config naming the same model and SAEs agrees: the circuit is the source', async () => {
    const proj = mkdtempSync(join(tmpdir(), 'sfc-circuit-inputs-'));
    writeFileSync(join(proj, 'sfc.config.json'), JSON.stringify({ model: SMALL_A, dictionaries: { folder: join(SMALL_A, 'dictionaries') } }));
    const c = await resolveIn(proj, { circuit });
    expect(configJson(c)).toMatchObject({ values: { model: { value: SMALL_A, source: `circuit ${circuit}` } } });
  });

  it('names a recorded model folder that is gone', async () => {
    const moved = join(dir, 'moved.json');
    await writeRecordedCircuit(moved, join(dir, 'copy-of-small-a'));
    const gone = join(dir, 'gone.json');
    const text = (await import('node:fs')).readFileSync(moved, 'utf8').replaceAll(join(dir, 'copy-of-small-a'), join(dir, 'nowhere'));
    writeFileSync(gone, text);
    await expect(resolveIn(dir, { circuit: gone })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('leaves circuits without a record (older files) and commands without a model alone', async () => {
    const c = await resolveIn(dir, { circuit: SMALL_A_CIRCUIT, model: OTHER_MODEL });
    expect(c.get('model')).toBe(OTHER_MODEL);
    const plot = await resolveCommandConfig(memoryIO({ cwd: dir }), { circuit, model: OTHER_MODEL }, []);
    expect(plot.get('model')).toBeUndefined();
  });
});

describe('sfc steer --circuit and sfc config print --circuit', () => {
  it('steer takes the circuit\'s model and SAEs with no flags, and refuses a config naming another model', async () => {
    const { runCli } = await import('./cli.js');
    const io = memoryIO({ cwd: dir });
    const code = await runCli(['steer', '--circuit', circuit, '--top-k', '2', '--op', 'ablate', '--dry-run', '--backend', 'tfjs-wasm'], io);
    expect(code, io.err()).toBe(0);
    expect(io.out()).toContain(`every feature exists in ${SMALL_A}`);
    const proj = mkdtempSync(join(tmpdir(), 'sfc-circuit-inputs-'));
    writeFileSync(join(proj, 'sfc.config.json'), JSON.stringify({ model: OTHER_MODEL }));
    const io2 = memoryIO({ cwd: proj });
    expect(await runCli(['steer', '--circuit', circuit, '--top-k', '2', '--op', 'ablate', '--dry-run', '--backend', 'tfjs-wasm'], io2)).toBe(2);
    expect(io2.err()).toMatch(/names model .*gpt2-a.* but the circuit .* was discovered on model small-a/);
  }, 60_000);

  it('config print shows the circuit as the model\'s source', async () => {
    const { runCli } = await import('./cli.js');
    const io = memoryIO({ cwd: dir });
    expect(await runCli(['config', 'print', '--circuit', circuit], io)).toBe(0);
    expect(io.out()).toMatch(new RegExp(`^model\\s+"${SMALL_A}"\\s+circuit ${circuit}$`, 'm'));
  });
});
