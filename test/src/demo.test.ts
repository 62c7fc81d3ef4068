// `sfc demo` end to end, as users run it (a subprocess from the sources), on a reduced setting:
// fewer examples and IG steps than the default, the same embedded model, SAEs and datasets.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCircuit, readInputRecord } from '@sfc/core';
import { sfc, STACK_LINE } from './cli-run.js';
import { REPO_ROOT } from './paths.js';

const REDUCED = ['--num-examples', '16', '--eval-examples', '32', '--steps', '4', '--batch-size', '16'];

describe('sfc demo (reduced setting)', () => {
  it('discovers, plots, evaluates and steers the embedded rc circuit; --json prints sfc.demo/v1', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'sfc-demo-')), 'run');
    const r = await sfc(['demo', ...REDUCED, '--out', out, '--json']);
    expect(r.stderr).not.toMatch(STACK_LINE);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.trim());
    expect(Object.keys(s)).toEqual(['schema', 'faithfulness', 'completeness', 'circuitNodes', 'circuitEdges', 'flipRate', 'onTargetRate', 'klMean', 'steerStrength', 'seconds']);
    expect(s.schema).toBe('sfc.demo/v1');

    // The files agree with the summary.
    const circuit = parseCircuit(readFileSync(join(out, 'circuit.json'), 'utf8'), 'circuit.json');
    expect(circuit.nodes.filter((n) => n.index !== null).length).toBe(s.circuitNodes);
    expect(circuit.edges.length).toBe(s.circuitEdges);
    expect(circuit.numExamples).toBe(16);
    expect(circuit.steps).toBe(4);
    // The circuit knows its model and SAEs (so `sfc tui circuit.json` steers with no flags).
    const record = readInputRecord(circuit);
    expect(record.model).toMatchObject({ path: join(REPO_ROOT, 'embedded', 'agreement', 'model'), name: 'agreement/model', hash: expect.stringMatching(/^sampled-sha256:/) });
    expect(Object.keys(record.saes).sort()).toEqual(circuit.submodules.slice().sort());
    const printed = await sfc(['config', 'print', '--circuit', join(out, 'circuit.json')], { cwd: out });
    expect(printed.stdout).toMatch(/^model\s+".*embedded\/agreement\/model"\s+circuit /m);
    expect(readFileSync(join(out, 'circuit.svg'), 'utf8')).toMatch(/<svg[\s\S]*<\/svg>\s*$/);
    const details = JSON.parse(readFileSync(join(out, 'demo.json'), 'utf8'));
    expect(details).toMatchObject({ schema: 'sfc.demo/v1', faithfulness: s.faithfulness, flipRate: s.flipRate, onTargetRate: s.onTargetRate, klMean: s.klMean });
    expect(details.evaluation.examples).toBe(32);
    expect(details.steering.examples).toBe(32);
    // The strength was calibrated on the 16 training prompts and reached the target there.
    expect(details.steering.calibration).toMatchObject({ examples: 16, targetRate: 0.9, reached: true });
    const chosen = details.steering.calibration.tried.find((r: { strength: number }) => r.strength === s.steerStrength);
    expect(chosen.onTargetRate).toBeGreaterThanOrEqual(0.9);

    // What the demo is for, with margins for the reduced setting: a circuit of a few dozen
    // nodes that carries the behaviour, and steering that moves the verb to the other number
    // (on target: the steered top-1 is an other-number verb form) without breaking the model
    // (mean KL ≤ 3 nats; scaling by −1 flips the pair at KL > 8, see steering.test.ts).
    expect(s.circuitNodes).toBeGreaterThan(5);
    expect(s.circuitNodes).toBeLessThan(150);
    expect(s.faithfulness).toBeGreaterThan(0.6);
    expect(s.faithfulness).toBeLessThan(1.5);
    expect(s.completeness).toBeLessThan(0.5);
    expect(s.onTargetRate).toBeGreaterThanOrEqual(0.8);
    expect(s.klMean).toBeLessThanOrEqual(3);
    expect(s.flipRate).toBeGreaterThan(0.6);
    expect(s.steerStrength).toBeGreaterThan(0);
    expect(s.seconds).toBeGreaterThan(0);
  });

  it('prints a readable summary without --json, and refuses a file as --out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfc-demo-'));
    const r = await sfc(['demo', ...REDUCED, '--out', join(dir, 'run'), '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    for (const line of ['circuit', 'evaluate', 'steer', 'files']) expect(r.stdout).toMatch(new RegExp(`^  ${line} `, 'm'));
    expect(r.stdout).toMatch(/faithfulness -?\d+\.\d\d, completeness -?\d+\.\d\d on 32 rc_test examples/);
    expect(r.stdout).toMatch(/calibrated on 16 rc_train prompts: on-target ≥ 90\.0% at the smallest KL/);
    expect(r.stdout).toMatch(/on 32 rc_test prompts: on-target \d+\.\d% .*flipped \d+\.\d% .*mean KL\(before ‖ after\) \d+\.\d\d nats/);
    expect(existsSync(join(dir, 'run', 'circuit.svg'))).toBe(true);

    writeFileSync(join(dir, 'file'), 'x');
    const bad = await sfc(['demo', '--out', join(dir, 'file')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/is a file/);
  });
});
