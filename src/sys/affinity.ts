// CPU affinity and scheduling of threads (sched_setaffinity/sched_getaffinity, sched_setattr).
// A tid of 0 is the caller.

import { getPriority } from 'node:os';
import { native } from './native.js';

export function setAffinity(tid: number, cpus: readonly number[]): void {
  native().schedSetaffinity(tid, [...cpus]);
}

export function getAffinity(tid: number): number[] {
  return native().schedGetaffinity(tid);
}

/**
 * Normal (SCHED_OTHER) scheduling at `nice`, asking for time slices of `sliceNs` (EEVDF, Linux 6.12+):
 * a thread with a short slice runs soon after it wakes even while a busy thread holds the CPU, and
 * its share of the CPU is still set by `nice`. Kernels without custom slices keep their default.
 */
export function setFairScheduling(tid: number, nice: number, sliceNs: number): void {
  native().schedSetFair(tid, nice, sliceNs);
}

/** The time slice a thread asked for (ns); the kernel's default when it asked for none. */
export function requestedSliceNs(tid: number): number {
  return native().schedGetSlice(tid);
}

/** Lets any runnable thread of this CPU run before the calling thread goes on (sched_yield). */
export function yieldCpu(): void {
  native().schedYield();
}

export function currentTid(): number {
  return native().gettid();
}

/**
 * Runs the calling thread at `nice` (default time slice) until the returned function puts back the
 * nice it had (calling it again does nothing).
 * Not permitted (unprivileged): nothing changes, and the returned function does nothing.
 */
export function setOwnNice(nice: number): () => void {
  const before = getPriority();
  try {
    setFairScheduling(0, nice, 0);
  } catch {
    return () => {};
  }
  let raised = true;
  return () => {
    if (!raised) return;
    raised = false;
    try {
      setFairScheduling(0, before, 0);
    } catch {
      // it was permitted a moment ago: nothing to do but go on
    }
  };
}
