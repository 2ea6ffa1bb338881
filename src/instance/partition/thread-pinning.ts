// Pins threads of this process to a CPU set with sched_setaffinity: every thread (main, libuv
// pool, vCPU threads, workers), or a given list of tids. It is not a cgroup; a cpuset, when there
// is one, bounds what sched_setaffinity may choose (see cpuset-cgroup.ts).

import { readdirSync, readFileSync } from 'node:fs';
import { getAffinity, setAffinity } from '../../sys/affinity.js';
import { formatCpuList, normalizeCpus, parseCpuList } from './cpu-list.js';

export class ThreadPinningError extends Error {
  readonly code = 'ERR_THREAD_PINNING';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ThreadPinningError';
  }
}

export interface PinResult {
  /** Threads now pinned to the set, sorted. */
  pinned: number[];
  /** Threads that were gone by the time we reached them (ESRCH), sorted. */
  exited: number[];
}

/** The tids of every thread of this process, from /proc/self/task, sorted. */
export function listThreads(): number[] {
  return readdirSync('/proc/self/task').map(Number).filter(Number.isInteger).sort((a, b) => a - b);
}

/** True if `tid` is still a thread of this process. */
export function isOwnThread(tid: number): boolean {
  try {
    readFileSync(`/proc/self/task/${tid}/stat`);
    return true;
  } catch {
    return false;
  }
}

/** The CPUs a thread of this process may run on, from /proc/self/task/<tid>/status (Cpus_allowed_list). */
export function threadCpusFromProc(tid: number): number[] {
  const status = readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
  const m = /^Cpus_allowed_list:\s*(.*)$/m.exec(status);
  if (!m) throw new ThreadPinningError(`no Cpus_allowed_list in /proc/self/task/${tid}/status`);
  return parseCpuList(m[1]!);
}

/** The CPUs a thread may run on, from sched_getaffinity. */
export function threadCpus(tid: number): number[] {
  return getAffinity(tid);
}

function isEsrch(e: unknown): boolean {
  return e instanceof Error && (e as Error & { code?: unknown }).code === 'ESRCH';
}

/** Pins each tid to `cpus`. A thread that has just exited (ESRCH) is reported, not an error. */
export function pinThreads(tids: readonly number[], cpus: readonly number[]): PinResult {
  const set = normalizeCpus(cpus);
  if (set.length === 0) throw new ThreadPinningError('cannot pin threads to an empty CPU set');
  const pinned: number[] = [];
  const exited: number[] = [];
  for (const tid of tids) {
    try {
      setAffinity(tid, set);
      pinned.push(tid);
    } catch (e) {
      if (isEsrch(e)) { exited.push(tid); continue; }
      throw new ThreadPinningError(
        `cannot pin thread ${tid} to CPUs ${formatCpuList(set)}: ${(e as Error).message}; ` +
          'the CPUs must be online and inside the process cpuset',
        { cause: e },
      );
    }
  }
  return { pinned: pinned.sort((a, b) => a - b), exited: exited.sort((a, b) => a - b) };
}

const MAX_PASSES = 5;

/**
 * Pins every thread of this process. Threads started while we work inherit the affinity of the
 * thread that created them, which may not be pinned yet, so we list again until no new tid shows up.
 */
export function pinProcess(cpus: readonly number[]): PinResult {
  const done = new Set<number>();
  const exited: number[] = [];
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const fresh = listThreads().filter((tid) => !done.has(tid));
    if (fresh.length === 0) break;
    const r = pinThreads(fresh, cpus);
    for (const tid of r.pinned) done.add(tid);
    exited.push(...r.exited);
  }
  const alive = new Set(listThreads());
  return { pinned: [...done].filter((tid) => alive.has(tid)).sort((a, b) => a - b), exited: exited.sort((a, b) => a - b) };
}
