// Helpers shared by this folder's tests: what every thread of this process may run on, and which
// cpuset the process is in. Test-only; nothing outside tests imports it.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { cpusetOfProcess } from './cpuset-cgroup.js';
import { listThreads, threadCpusFromProc } from './thread-pinning.js';

/** tid → Cpus_allowed_list for every thread alive now (threads that exit mid-scan are skipped). */
export function affinityOfAllThreads(): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const tid of listThreads()) {
    try { out.set(tid, threadCpusFromProc(tid)); } catch { /* exited */ }
  }
  return out;
}

/** The distinct affinities across all threads, each as "0-1" style text. */
export function distinctAffinities(): string[] {
  return [...new Set([...affinityOfAllThreads().values()].map((c) => c.join(',')))];
}

export function cpusetPath(): string {
  return cpusetOfProcess(process.pid);
}

export const CPUSET_MOUNTED = existsSync('/sys/fs/cgroup/cpuset/cgroup.procs');

/** Starts libuv's thread pool (its threads are created lazily) so that "every thread" includes them. */
export async function wakeThreadPool(): Promise<void> {
  await Promise.all(Array.from({ length: 8 }, () => readFile('/proc/self/status')));
}

/** A unique cgroup name for one test in this process. */
let counter = 0;
export function uniqueName(tag: string): string {
  return `test-${tag}-${process.pid}-${++counter}`;
}
