// Priorities in a measuring run: the bench (procfs sampling every few ms, log reading, HTTP polls)
// runs below the processes it measures, and they run at the normal priority they have in use.
// Linux nice values are per thread and inherited, so what the bench spawns is put back to nice 0.

import { getPriority, setPriority } from 'node:os';

/** The bench's own nice value; SWAPVISOR_BENCH_NICE=0 keeps it at 0. */
const BENCH_NICE = 10;

export function lowerOwnPriority(): void {
  if (process.env['SWAPVISOR_BENCH_NICE'] !== '0') setPriority(BENCH_NICE);
}

/** `command args` wrapped so that it starts at nice 0 when spawned from this thread (`nice -n -N`, which execs it: same pid). */
export function atNormalPriority(command: string, args: readonly string[]): [string, string[]] {
  const own = getPriority();
  return own > 0 ? ['nice', ['-n', String(-own), command, ...args]] : [command, [...args]];
}
