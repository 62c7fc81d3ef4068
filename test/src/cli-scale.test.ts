// The scale-out commands end to end on fixtures/small-a (docs/scale.md): `--shard i/n` on
// discover, attribute and evaluate then `sfc merge` write what the single-process command writes
// (≤ 1e-6 relative), merge refuses partials of different runs naming the difference, and
// `sfc circuits` computes one circuit per data file, by task index, skipping finished ones.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '@sfc/core';
import { sfc } from './cli-run.js';
import { sameJson } from './same-json.js';
import { SMALL_A } from './paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'sfc-cli-scale-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const MODEL = ['--model', SMALL_A, '--dictionaries', join(SMALL_A, 'saelens'), '--backend', 'onnx'];
const INPUTS = [...MODEL, '--data', join(SMALL_A, 'data.jsonl'), '--batch-size', '7', '--steps', '3'];
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

async function shards(command: string[], n: number, prefix: string): Promise<string[]> {
  const parts = Array.from({ length: n }, (_, i) => join(TMP, `${prefix}-${i}.safetensors`));
  const runs = await Promise.all(parts.map((p, i) => sfc([...command, '--shard', `${i}/${n}`, '--out', p])));
  runs.forEach((r) => expect(r.code, r.stderr).toBe(0));
  expect(runs[0]!.stderr).toMatch(new RegExp(`partial 0/${n} of \\w+, \\d of 6 batches`));
  return parts;
}

describe('--shard i/n and sfc merge', () => {
  it('discover: 3 shards merged equal the single run\'s circuit', async () => {
    const single = join(TMP, 'circuit.json');
    const r = await sfc(['discover', ...INPUTS, '--node-threshold', '0.05', '--edge-threshold', '0.001', '--out', single]);
    expect(r.code, r.stderr).toBe(0);
    const parts = await shards(['discover', ...INPUTS, '--node-threshold', '0.05', '--edge-threshold', '0.001'], 3, 'disc');
    const merged = join(TMP, 'merged.json');
    const m = await sfc(['merge', ...parts.reverse(), '--out', merged]);
    expect(m.code, m.stderr).toBe(0);
    expect(m.stderr).toMatch(/merged 3 partials of discover/);
    const want = json(single);
    expect(want.edges.length).toBeGreaterThan(20);
    sameJson(json(merged), want);
  });

  it('attribute (8 shards, 2 of them empty) and evaluate (2 shards) merge to the single runs\' files', async () => {
    const single = join(TMP, 'effects.json');
    expect((await sfc(['attribute', ...INPUTS, '--method', 'ig', '--out', single])).code).toBe(0);
    const merged = join(TMP, 'effects-merged.json');
    const m = await sfc(['merge', ...(await shards(['attribute', ...INPUTS, '--method', 'ig'], 8, 'attr')), '--out', merged]);
    expect(m.code, m.stderr).toBe(0);
    sameJson(json(merged), json(single));

    const ev = ['evaluate', '--effects', single, ...MODEL, '--data', join(SMALL_A, 'data.jsonl'), '--batch-size', '7', '--thresholds', '0.01,0.1,1'];
    const evalSingle = join(TMP, 'eval.json');
    expect((await sfc([...ev, '--out', evalSingle])).code).toBe(0);
    const evalMerged = join(TMP, 'eval-merged.json');
    const e = await sfc(['merge', ...(await shards(ev, 2, 'eval')), '--out', evalMerged]);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/faithfulness/);
    sameJson(json(evalMerged), json(evalSingle));
  });

  it('refuses partials of different runs, naming the difference, and incomplete sets', async () => {
    const a = await shards(['attribute', ...INPUTS, '--method', 'attrib'], 2, 'steps-a');
    const b = await shards(['attribute', ...INPUTS, '--method', 'attrib', '--seed', '5'], 2, 'steps-b');
    const out = join(TMP, 'never.json');
    const diff = await sfc(['merge', a[0]!, b[1]!, '--out', out]);
    expect(diff.code).toBe(EXIT_CODES.INPUT);
    expect(diff.stderr).toMatch(/partials of different runs: meta data\.seed is 12 in .*steps-a-0\.safetensors but 5 in .*steps-b-1\.safetensors/);
    const missing = await sfc(['merge', a[0]!, '--out', out]);
    expect(missing.code).toBe(EXIT_CODES.INPUT);
    expect(missing.stderr).toMatch(/missing shard 1 of 2/);
    expect(existsSync(out)).toBe(false);
    const bad = await sfc(['discover', ...INPUTS, '--shard', '3/3', '--out', out]);
    expect(bad.code).toBe(EXIT_CODES.INPUT);
    expect(bad.stderr).toMatch(/--shard 3\/3: need 0 ≤ i < n/);
  });
});

describe('sfc circuits', () => {
  const lines = readFileSync(join(SMALL_A, 'data.jsonl'), 'utf8').trim().split('\n');
  const data = join(TMP, 'clusters');
  mkdirSync(data);
  writeFileSync(join(data, 'a.jsonl'), `${lines.slice(0, 12).join('\n')}\n`);
  writeFileSync(join(data, 'b.jsonl'), `${lines.slice(12, 20).join('\n')}\n`);
  writeFileSync(join(data, 'c.jsonl'), `${lines.slice(20, 26).join('\n')}\n`);
  writeFileSync(join(data, 'notes.txt'), 'not a data file\n');
  writeFileSync(join(data, 'old.circuit.json'), '{}\n'); // an output in the data folder is not data
  const args = ['circuits', data, ...MODEL, '--steps', '2', '--batch-size', '5'];

  it('task i computes file i (flag, Slurm and Kubernetes indices), equal to `sfc discover` on that file; finished files are skipped', async () => {
    const out = join(TMP, 'out');
    mkdirSync(out);
    const [t1, t0] = await Promise.all([
      sfc([...args, '--out-dir', out, '--task-from-env'], { env: { SLURM_ARRAY_TASK_ID: '1' } }),
      sfc([...args, '--out-dir', out, '--task-from-env'], { env: { JOB_COMPLETION_INDEX: '0' } }),
    ]);
    expect(t0.code, t0.stderr).toBe(0);
    expect(t1.code, t1.stderr).toBe(0);
    expect(t1.stderr).toMatch(/3 data files .*; task 1 \(SLURM_ARRAY_TASK_ID\) of 3: 1 file, 0 already finished/);
    expect(readdirSync(out).sort()).toEqual(['a.circuit.json', 'b.circuit.json']);
    const alone = join(TMP, 'b-alone.json');
    expect((await sfc(['discover', ...MODEL, '--steps', '2', '--batch-size', '5', '--data', join(data, 'b.jsonl'), '--out', alone])).code).toBe(0);
    const got = json(join(out, 'b.circuit.json'));
    sameJson(got, json(alone));

    // Everything: a and b are finished and skipped, c is computed; a task past the end does nothing.
    const all = await sfc([...args, '--out-dir', out]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stderr).toMatch(/all files: 3 files, 2 already finished/);
    expect(all.stderr).toMatch(/wrote c\.circuit\.json/);
    expect(all.stderr).not.toMatch(/wrote [ab]\.circuit\.json/);
    const past = await sfc([...args, '--out-dir', out, '--task', '5']);
    expect(past.code, past.stderr).toBe(0);
    expect(past.stderr).toMatch(/task 5 \(--task\) of 3: 0 files/);
  });

  it('a stale temp file or a truncated output does not count as finished; --tasks strides the files', async () => {
    const out = join(TMP, 'out2');
    mkdirSync(out);
    copyFileSync(join(SMALL_A, 'data.jsonl'), join(out, '.a.circuit.json.123.abcd.tmp')); // a crashed writer's temp file
    writeFileSync(join(out, 'c.circuit.json'), '{"schema": "sfc.circuit/v1", "nodes": [');
    const r = await sfc([...args, '--out-dir', out, '--task', '0', '--tasks', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/task 0 \(--task\) of 2: 2 files, 0 already finished/);
    expect(json(join(out, 'a.circuit.json')).schema).toBe('sfc.circuit/v1');
    expect(json(join(out, 'c.circuit.json')).numExamples).toBe(6);
    expect(existsSync(join(out, 'b.circuit.json'))).toBe(false);
    const noEnv = await sfc([...args, '--out-dir', out, '--task-from-env'], { env: { SLURM_ARRAY_TASK_ID: '', JOB_COMPLETION_INDEX: '' } });
    expect(noEnv.code).toBe(EXIT_CODES.INPUT);
  });
});
