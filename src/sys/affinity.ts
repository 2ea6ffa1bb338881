// CPU affinity and scheduling of threads (sched_setaffinity/sched_getaffinity, sched_setattr).
// A tid of 0 is the caller.

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

export function currentTid(): number {
  return native().gettid();
}
