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
