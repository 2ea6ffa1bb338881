// CPU affinity of threads (sched_setaffinity/sched_getaffinity). A tid of 0 is the caller.

import { native } from './native.js';

export function setAffinity(tid: number, cpus: readonly number[]): void {
  native().schedSetaffinity(tid, [...cpus]);
}

export function getAffinity(tid: number): number[] {
  return native().schedGetaffinity(tid);
}

export function currentTid(): number {
  return native().gettid();
}

/**
 * Runs `f` with the calling thread moved to `cpus`, then moves it back. A process spawned in `f`
 * starts on `cpus` from its first instruction (a child inherits the forking thread's mask), and the
 * fork itself runs there too: nothing of it lands on the CPUs this thread leaves.
 */
export function withThreadAffinity<T>(cpus: readonly number[] | undefined, f: () => T): T {
  if (!cpus || cpus.length === 0) return f();
  const before = getAffinity(0);
  setAffinity(0, cpus);
  try {
    return f();
  } finally {
    setAffinity(0, before);
  }
}
