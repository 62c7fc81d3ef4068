// A throwaway single-node Slurm cluster for the scale-out test (slurm.test.ts, docs/scale.md):
// munged, slurmctld and slurmd started from a temp folder with their own key, config, state and
// logs, inside a private network namespace (`unshare -n`, only loopback up) so nothing listens
// outside the machine — slurmctld binds every interface of its namespace, whatever the config says. A driver script
// starts the daemons, waits for the node, submits each job array with `sbatch --wait`, and stops
// the daemons on any exit; `timeout` bounds the whole session.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

const run = (cmd: string, args: string[], timeoutMs = 30_000) => spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
const has = (bin: string) => run('sh', ['-c', `command -v ${bin}`]).status === 0;
const DAEMONS = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'unshare', 'ip'];

/**
 * Why the test cannot run here, or undefined. Installs slurm-wlm and munge with apt-get when they
 * are missing and the test runs as root with apt-get (as CI does).
 */
export function slurmUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (DAEMONS.every(has)) return privateNetwork();
  if (process.getuid?.() !== 0) return `${DAEMONS.filter((b) => !has(b)).join(', ')} not installed and not root (apt-get install -y slurm-wlm munge)`;
  if (!has('apt-get')) return `${DAEMONS.filter((b) => !has(b)).join(', ')} not installed and no apt-get`;
  const r = spawnSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge iproute2 util-linux'],
    { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) return `apt-get install slurm-wlm munge failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-2).join(' ')}`;
  return DAEMONS.every(has) ? privateNetwork() : `still missing after apt-get: ${DAEMONS.filter((b) => !has(b)).join(', ')}`;
}

function privateNetwork(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root (slurmd and munged run as root here)';
  const r = run('unshare', ['-n', 'sh', '-c', 'ip link set lo up']);
  return r.status === 0 ? undefined : `cannot make a private network namespace (unshare -n: ${(r.stderr || '').trim()}); slurmctld would listen on every interface`;
}

/** One job array: `sbatch --array=0-(tasks−1)` of `script` (run with bash; SLURM_ARRAY_TASK_ID set). */
export interface JobArray {
  readonly name: string;
  readonly tasks: number;
  readonly script: string;
}

const SLURM_CONF = (dir: string) => `ClusterName=sfctest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
AuthInfo=socket=${dir}/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd.pid
SlurmctldLogFile=${dir}/slurmctld.log
SlurmdLogFile=${dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs=${cpus().length} RealMemory=${Math.floor(totalmem() / 2 ** 20) - 512} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
`;

// Runs in the private namespace: $1 = the cluster folder, then job-array files "name tasks script".
const DRIVER = `#!/bin/bash
set -euo pipefail
D=$1; shift
export SLURM_CONF=$D/slurm.conf
PIDS=()
stop() {
  for p in "\${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "\${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
}
trap stop EXIT
trap 'exit 143' TERM INT
ip link set lo up
# glibc's getaddrinfo(AF_INET, AI_ADDRCONFIG), which the daemons use to bind, finds nothing when the
# only IPv4 address is loopback: give lo a documentation address too (TEST-NET-1, this namespace only).
ip addr add 192.0.2.1/32 dev lo
munged -F -f --key-file="$D/munge.key" --socket="$D/munge.sock" --pid-file="$D/munged.pid" --log-file="$D/munged.log" --seed-file="$D/munged.seed" >"$D/munged.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$D/munge.sock" ] && break; sleep 0.1; done
slurmctld -D -i >"$D/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -N localhost >"$D/slurmd.out" 2>&1 &
PIDS+=($!)
state() { timeout 5 sinfo -h -N -o %t 2>/dev/null || true; }
until [ "$(state)" = idle ] || [ $SECONDS -gt 60 ]; do sleep 0.5; done
[ "$(state)" = idle ] || { echo "the node did not come up: $(timeout 5 sinfo -h -N -o '%t %E' 2>&1)"; exit 3; }
echo "node up"
while [ $# -gt 0 ]; do
  name=$1 tasks=$2 script=$3; shift 3
  echo "array $name: $tasks tasks"
  sbatch --wait --parsable --time=5 --job-name="$name" --array=0-$((tasks - 1)) -n1 -c1 --output="$D/$name-%a.log" "$script" || { echo "array $name failed"; exit 4; }
  echo "array $name done"
done
`;

export interface ClusterRun {
  readonly status: number | null;
  readonly output: string;
}

/** Starts the cluster in `dir` (created), runs the job arrays one after the other, stops it; at most `timeoutSec`. */
export function runOnSlurm(dir: string, arrays: readonly JobArray[], timeoutSec: number): ClusterRun {
  mkdirSync(join(dir, 'state'), { recursive: true });
  mkdirSync(join(dir, 'spool'), { recursive: true });
  chmodSync(dir, 0o755); // munged wants a socket folder others can traverse
  writeFileSync(join(dir, 'munge.key'), randomBytes(1024), { mode: 0o600 }); // as mungekey makes
  writeFileSync(join(dir, 'slurm.conf'), SLURM_CONF(dir));
  writeFileSync(join(dir, 'driver.sh'), DRIVER, { mode: 0o755 });
  const args: string[] = [];
  for (const a of arrays) {
    const path = join(dir, `${a.name}.sh`);
    writeFileSync(path, `#!/bin/bash\nset -euo pipefail\n${a.script}\n`, { mode: 0o755 });
    args.push(a.name, String(a.tasks), path);
  }
  const r = spawnSync('timeout', ['-k', '10', String(timeoutSec), 'unshare', '-n', 'bash', join(dir, 'driver.sh'), dir, ...args],
    { encoding: 'utf8', timeout: (timeoutSec + 20) * 1000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

