// Scale-out on a real scheduler (docs/scale.md): a single-node Slurm cluster (slurm-cluster.ts)
// runs `sfc discover --shard i/3` as a 3-task job array on fixtures/small-a, then `sfc merge`
// must write the single-process circuit (≤ 1e-6 relative); a 2-task array of `sfc circuits
// --task-from-env` computes one circuit per data file of a folder of 3. Skipped, saying why,
// where Slurm cannot run (not root, no apt-get, no private network namespace).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sfc, sfcCommandLine } from './cli-run.js';
import { SMALL_A } from './paths.js';
import { sameJson } from './same-json.js';
import { runOnSlurm, slurmUnavailable } from './slurm-cluster.js';

const TMP = mkdtempSync(join(tmpdir(), 'sfc-slurm-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
const MODEL = ['--model', SMALL_A, '--dictionaries', join(SMALL_A, 'saelens'), '--backend', 'onnx'];
const INPUTS = [...MODEL, '--data', join(SMALL_A, 'data.jsonl'), '--batch-size', '7', '--steps', '3', '--node-threshold', '0.05', '--edge-threshold', '0.001'];
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8'));
const quote = (a: readonly string[]) => a.map((x) => `'${x.replace(/'/g, `'\\''`)}'`).join(' ');

let unavailable: string | undefined;
beforeAll(() => {
  unavailable = slurmUnavailable();
  if (unavailable) console.warn(`slurm: skipped — ${unavailable}`);
}, 660_000);

describe('a Slurm job array', () => {
  it('3 shards of `sfc discover` merge to the single-process circuit; `sfc circuits --task-from-env` splits a folder over 2 tasks', async (ctx) => {
    if (unavailable) return ctx.skip();
    const single = join(TMP, 'single.json');
    const r = await sfc(['discover', ...INPUTS, '--out', single]);
    expect(r.code, r.stderr).toBe(0);

    const lines = readFileSync(join(SMALL_A, 'data.jsonl'), 'utf8').trim().split('\n');
    const data = join(TMP, 'clusters'), out = join(TMP, 'circuits');
    mkdirSync(data);
    mkdirSync(out);
    ['a', 'b', 'c'].forEach((name, i) => writeFileSync(join(data, `${name}.jsonl`), `${lines.slice(i * 8, i * 8 + 8).join('\n')}\n`));

    const cluster = join(TMP, 'cluster');
    const SFC = quote(sfcCommandLine());
    const run = runOnSlurm(cluster, [
      { name: 'shards', tasks: 3, script: `${SFC} discover ${quote(INPUTS)} --shard "$SLURM_ARRAY_TASK_ID/3" --out "${TMP}/part-$SLURM_ARRAY_TASK_ID.safetensors"` },
      { name: 'circuits', tasks: 2, script: `${SFC} circuits ${quote([data, ...MODEL, '--steps', '2', '--out-dir', out])} --task-from-env` },
    ], 240);
    const logs = () => readdirSync(cluster).filter((f) => f.endsWith('.log') || f.endsWith('.out')).map((f) => `--- ${f}\n${readFileSync(join(cluster, f), 'utf8').slice(-2000)}`).join('\n');
    expect(run.status, `${run.output}\n${logs()}`).toBe(0);
    expect(run.output).toMatch(/array shards done[\s\S]*array circuits done/);

    // The daemons are gone (the driver stops them on exit).
    for (const f of ['munged.pid', 'slurmctld.pid', 'slurmd.pid']) {
      const path = join(cluster, f);
      if (!existsSync(path)) continue;
      const pid = Number(readFileSync(path, 'utf8').trim());
      expect(() => process.kill(pid, 0), `${f}: process ${pid} still runs`).toThrow();
    }

    const parts = [0, 1, 2].map((i) => join(TMP, `part-${i}.safetensors`));
    expect(readFileSync(join(cluster, 'shards-1.log'), 'utf8')).toMatch(/partial 1\/3 of discover, 2 of 6 batches/);
    const merged = join(TMP, 'merged.json');
    const m = await sfc(['merge', ...parts, '--out', merged]);
    expect(m.code, m.stderr).toBe(0);
    const want = json(single);
    expect(want.edges.length).toBeGreaterThan(20);
    sameJson(json(merged), want);

    expect(readdirSync(out).sort()).toEqual(['a.circuit.json', 'b.circuit.json', 'c.circuit.json']);
    expect(readFileSync(join(cluster, 'circuits-0.log'), 'utf8')).toMatch(/task 0 \(SLURM_ARRAY_TASK_ID\) of 2: 2 files/);
    expect(readFileSync(join(cluster, 'circuits-1.log'), 'utf8')).toMatch(/task 1 \(SLURM_ARRAY_TASK_ID\) of 2: 1 file/);
    for (const f of readdirSync(out)) expect(json(join(out, f))).toMatchObject({ schema: 'sfc.circuit/v1', numExamples: 8 });
  }, 600_000);
});
