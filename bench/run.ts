// The benchmark harness (a dev tool, never part of `npm test`):
//
//   npm run bench -- [--backend tfjs-wasm,onnx] [--scale pythia70m|small] [--examples 10] [--runs 3]
//                    [--stages forward,sae-forward,attrib,ig,exact,edges,eval] [--pytorch [--pytorch-runs N]] [--no-save]
//
// Makes the workload of the scale once (bench/cache/<scale>/, see generate.ts), runs every sfc
// backend in its own child process (peak memory per backend) and, with --pytorch, the PyTorch
// baseline on the same files; prints the table and writes bench/results/<timestamp>.json.
// See docs/performance.md.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_STAGES, parseStages, type SideResult, type StageId } from './measure.js';
import { formatTable, machine, RESULTS_SCHEMA, writeResults, type BenchResults } from './report.js';
import { BENCH_DIR, scaleByName, SCALES, type Scale } from './scales.js';
import { findWorkload, type Workload } from './workload.js';

const USAGE = `usage: npm run bench -- [--backend tfjs-wasm,onnx (gemma2-2b: onnx)] [--scale ${Object.keys(SCALES).join('|')}] [--examples N] [--runs N]
                     [--stages ${DEFAULT_STAGES.join(',')}[,edges-loop]] [--pytorch [--pytorch-runs N] [--pytorch-stages S]] [--no-fresh] [--no-save]`;

const PYTORCH_MISSING = 'pytorch: not installed (apt-get install python3-torch libopenblas0-pthread)';

/** Runs a script in a child process with this process's loader flags (tsx, @sfc/source); resolves with its exit code. */
function child(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number | string> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    p.on('error', (e) => resolve(e.message));
    p.on('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : code ?? 1));
  });
}

function tsChild(script: string, args: readonly string[]): Promise<number | string> {
  return child(process.execPath, [...process.execArgv, join(BENCH_DIR, script), ...args]);
}

async function ensureWorkload(scale: Scale): Promise<Workload> {
  const found = findWorkload(scale);
  if (found) return found;
  console.error(`[bench] making the ${scale.name} workload (once; cached in bench/cache/${scale.name})`);
  const code = await tsChild('generate.ts', ['--scale', scale.name]);
  const made = findWorkload(scale);
  if (code !== 0 || !made) throw new Error(`generating the ${scale.name} workload failed (${code})`);
  return made;
}

/** A child's SideResult from its --out file, or a record of how it died. */
async function runSide(name: string, run: (out: string) => Promise<number | string>): Promise<SideResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sfc-bench-'));
  const out = join(dir, 'result.json');
  try {
    const code = await run(out);
    if (existsSync(out)) return JSON.parse(readFileSync(out, 'utf8')) as SideResult;
    return { name, available: true, reason: `the process ended without a result (${typeof code === 'number' ? `exit code ${code}` : code})`, stages: {} };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Debian's python3 with torch (a pyenv python3 cannot see it), or undefined. */
function findTorchPython(): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return undefined;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backend: { type: 'string' }, scale: { type: 'string', default: 'pythia70m' },
      examples: { type: 'string' }, runs: { type: 'string', default: '3' }, stages: { type: 'string', default: DEFAULT_STAGES.join(',') },
      pytorch: { type: 'boolean', default: false }, 'pytorch-runs': { type: 'string' }, 'pytorch-stages': { type: 'string' },
      'no-fresh': { type: 'boolean', default: false }, 'no-save': { type: 'boolean', default: false }, help: { type: 'boolean', default: false },
    },
  });
  if (values.help) { console.log(USAGE); return; }
  const scale = scaleByName(values.scale!);
  const examples = Number(values.examples ?? scale.examples);
  const runs = Number(values.runs);
  const ptRuns = Number(values['pytorch-runs'] ?? runs);
  for (const [k, v] of [['examples', examples], ['runs', runs], ['pytorch-runs', ptRuns]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer\n${USAGE}`);
  }
  const stages: StageId[] = parseStages(values.stages!);
  // PyTorch may run fewer stages where its IG or edges would take hours (say which in docs/performance.md).
  const ptStages: StageId[] = values['pytorch-stages'] !== undefined ? parseStages(values['pytorch-stages']) : stages;
  const backends = (values.backend ?? scale.defaultBackends ?? 'tfjs-wasm,onnx').split(',').map((b) => b.trim()).filter(Boolean);
  const mach = machine();
  const workload = await ensureWorkload(scale);
  if (examples > workload.manifest.data.pairs) throw new Error(`--examples ${examples}: the workload has ${workload.manifest.data.pairs} pairs`);
  const common = ['--examples', String(examples), '--runs', String(runs), '--stages', stages.join(',')];

  // With the edges stage, each side also runs one discovery in a fresh process: its peak RSS is what
  // one `sfc discover` needs (the main process's RSS only ratchets up over all stages and runs).
  // --no-fresh skips it (at gemma2-2b one discovery takes long enough to do once).
  const fresh = stages.includes('edges') && !values['no-fresh'] ? ['--examples', String(examples), '--runs', '1', '--stages', 'edges'] : undefined;
  const withFresh = async (side: SideResult, run: (args: readonly string[], out: string) => Promise<number | string>): Promise<SideResult> => {
    if (!fresh || !side.available || side.stages.edges?.error) return side;
    console.error(`[bench] ${side.name}: one discovery in a fresh process (peak RSS)`);
    const f = await runSide(side.name, (out) => run(fresh, out));
    return f.peakRssMiB === undefined ? side : { ...side, discoveryPeakRssMiB: f.peakRssMiB };
  };

  const sides: SideResult[] = [];
  for (const b of backends) {
    console.error(`[bench] ${b}`);
    const worker = (args: readonly string[], out: string) => tsChild('sfc-worker.ts', ['--backend', b, '--scale', scale.name, ...args, '--out', out]);
    sides.push(await withFresh(await runSide(b, (out) => worker(common, out)), worker));
  }
  if (values.pytorch) {
    const py = findTorchPython();
    if (!py) {
      console.error(`[bench] ${PYTORCH_MISSING}`);
      sides.push({ name: 'pytorch', available: false, reason: 'not installed (apt-get install python3-torch libopenblas0-pthread)', stages: {} });
    } else {
      console.error('[bench] pytorch');
      const worker = (args: readonly string[], out: string) => child(py, [join(BENCH_DIR, 'pytorch_baseline.py'), '--workload', workload.dir,
        ...args, '--threads', '2', '--out', out]);
      const ptArgs = ['--examples', String(examples), '--runs', String(ptRuns), '--stages', ptStages.join(',')];
      sides.push(await withFresh(await runSide('pytorch', (out) => worker(ptArgs, out)), worker));
    }
  }
  mach.loadEnd = loadavg()[0]!;
  const { scale: sc, saes, calibration, model } = workload.manifest;
  const res: BenchResults = {
    schema: RESULTS_SCHEMA, created: new Date().toISOString(), command: process.argv.slice(2).join(' '), machine: mach,
    workload: { scale: sc, saes, calibration, model },
    options: { examples, runs, ...(values.pytorch && ptRuns !== runs ? { pytorchRuns: ptRuns } : {}), stages, ...(values.pytorch && ptStages.join() !== stages.join() ? { pytorchStages: ptStages } : {}) }, sides,
  };
  console.log(formatTable(res));
  if (!values.pytorch) console.log('\npytorch: not run (add --pytorch for the baseline column)');
  if (!values['no-save']) console.log(`\nresults: ${writeResults(res)}`);
}

main().catch((e: unknown) => {
  console.error(`bench: ${(e as Error).message}`);
  process.exit(1);
});
