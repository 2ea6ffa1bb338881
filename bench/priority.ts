// Priorities in a measuring run: the bench (procfs sampling every few ms, log reading, HTTP polls)
// runs below the processes it measures, and they run at the normal priority they have in use.
// Scheduling policy and nice values are per thread and inherited, so what the bench spawns is put
// back to SCHED_OTHER at nice 0.
//
// The bench runs as SCHED_IDLE (`chrt --idle`): it gets a CPU only when nothing else wants it, and a
// vCPU thread that wakes always preempts it. At nice 10 it still held a CPU for 1-2.5 ms at a time
// while heartbeat guests waited (a trace of the swap bench); this kernel's wake-up preemption does not
// reliably favour the woken thread among SCHED_OTHER threads.

import { spawnSync } from 'node:child_process';
import { getPriority } from 'node:os';

let idle = false;

/** Puts every thread of this process under SCHED_IDLE; SWAPVISOR_BENCH_NICE=0 keeps it as it is. */
export function lowerOwnPriority(): void {
  if (process.env['SWAPVISOR_BENCH_NICE'] === '0') return;
  const r = spawnSync('chrt', ['--all-tasks', '--idle', '--pid', '0', String(process.pid)], { stdio: 'ignore' });
  idle = r.status === 0;
}

/**
 * `command args` wrapped so that it starts as SCHED_OTHER at nice 0 when spawned from this thread
 * (`chrt --other 0` and `nice -n -N` exec it: same pid).
 */
export function atNormalPriority(command: string, args: readonly string[]): [string, string[]] {
  const own = getPriority();
  const [cmd, rest]: [string, string[]] = own > 0 ? ['nice', ['-n', String(-own), command, ...args]] : [command, [...args]];
  return idle ? ['chrt', ['--other', '0', cmd, ...rest]] : [cmd, rest];
}
