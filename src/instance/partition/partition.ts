// The instance's share of the host: a set of CPUs (a cgroup v1 cpuset when one is available, plus
// sched_setaffinity on every thread) and a memory budget. During a swap the old instance shrinks
// and the new one later grows. It is not the swap itself (swap/partition.ts drives it) and not a VM.

import { readFileSync } from 'node:fs';
import { formatCpuList, isSubset, normalizeCpus, parseCpuList } from './cpu-list.js';
import { CPUSET_PARENT, CpusetCgroup, cpusetAvailable, cpusetOfProcess } from './cpuset-cgroup.js';
import { MemoryBudget, type MemoryBudgetSnapshot } from './memory-budget.js';
import { isOwnThread, listThreads, pinProcess, pinThreads, threadCpus } from './thread-pinning.js';
import { setAffinity } from '../../sys/affinity.js';

export type UseCgroup = 'auto' | 'required' | 'off';

export interface PartitionOptions {
  /** Names the cpuset (swapvisor/<name>); 1-64 letters, digits, '.', '_' or '-'. */
  name: string;
  /** Host CPUs, as numbers or a CPU list string such as "0-1". */
  cpus: readonly number[] | string;
  memBudgetMib: number;
  /** 'auto' (default) uses a cpuset when the host has one, 'required' fails without, 'off' never uses one. */
  useCgroup?: UseCgroup;
  /** Where the list of online CPUs comes from (default /sys/devices/system/cpu/online). */
  onlineCpusPath?: string;
}

export interface PartitionInfo {
  name: string;
  cpus: number[];
  memBudgetMib: number;
  memUsedMib: number;
  cgroup: { path: string } | { absent: string };
  /** Threads of this process pinned to `cpus` by the last pinning pass, plus adopted vCPU threads still alive. */
  pinnedThreads: number[];
}

export type PartitionErrorCode = 'ERR_PARTITION_CPUS' | 'ERR_PARTITION_CGROUP' | 'ERR_PARTITION_DESTROYED' | 'ERR_PARTITION_NAME';

export class PartitionError extends Error {
  constructor(readonly code: PartitionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PartitionError';
  }
}

const ONLINE_CPUS = '/sys/devices/system/cpu/online';
const NAME = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Validates a CPU set given as numbers or a list string. Whole numbers that are simply not online
 * (9999 on a 2-CPU host) get the "not online" error, which tells the user which CPUs exist.
 */
function toCpus(cpus: readonly number[] | string, what: string, onlinePath: string): number[] {
  if (Array.isArray(cpus) && cpus.length > 0 && cpus.every((n) => Number.isInteger(n) && n >= 0)) checkOnline(cpus, onlinePath);
  let set: number[];
  try {
    set = typeof cpus === 'string' ? parseCpuList(cpus, { allowEmpty: true }) : normalizeCpus(cpus);
  } catch (e) {
    throw new PartitionError('ERR_PARTITION_CPUS', `${what}: ${(e as Error).message}`, { cause: e });
  }
  if (set.length === 0) throw new PartitionError('ERR_PARTITION_CPUS', `${what}: the CPU set is empty; a partition needs at least one CPU`);
  checkOnline(set, onlinePath);
  return set;
}

export class Partition {
  private cpuSet: number[];
  private readonly adopted = new Set<number>();
  private processThreads: number[] = [];
  private destroyed = false;

  private constructor(
    readonly name: string,
    cpus: number[],
    readonly budget: MemoryBudget,
    private readonly cgroup: CpusetCgroup | undefined,
    private readonly cgroupAbsent: string,
    private readonly onlineCpusPath: string,
    /** The cpuset the process was in before, and the affinity it had: restored by destroy(). */
    private readonly returnTo: { cpuset: string; cpus: number[] },
  ) {
    this.cpuSet = cpus;
  }

  /** Claims the CPUs for this process: cpuset (if any), then every thread pinned. */
  static create(options: PartitionOptions): Partition {
    if (!NAME.test(options.name)) {
      throw new PartitionError('ERR_PARTITION_NAME', `partition name "${options.name}" is not valid: use 1-64 letters, digits, '.', '_' or '-'`);
    }
    const onlineCpusPath = options.onlineCpusPath ?? ONLINE_CPUS;
    const cpus = toCpus(options.cpus, 'partition CPUs', onlineCpusPath);
    const budget = new MemoryBudget(options.memBudgetMib);
    const mode = options.useCgroup ?? 'auto';
    const before = cpusetOrRoot();
    // Inside swapvisor's own tree (a previous instance's cpuset, or the shared parent where a swap's A
    // puts B): the way back is the root, or the tree could never be removed.
    const ours = before === `/${CPUSET_PARENT}` || before.startsWith(`/${CPUSET_PARENT}/`);
    const returnTo = { cpuset: ours ? '/' : before, cpus: threadCpus(0) };

    let cgroup: CpusetCgroup | undefined;
    let absent = 'useCgroup is off; CPUs are held with sched_setaffinity only';
    if (mode !== 'off') {
      const avail = cpusetAvailable();
      if (avail.ok) {
        try {
          cgroup = CpusetCgroup.create(options.name, { cpus });
        } catch (e) {
          if (mode === 'required') throw new PartitionError('ERR_PARTITION_CGROUP', `cannot create the partition's cpuset: ${(e as Error).message}`, { cause: e });
          absent = `cpuset could not be created (${(e as Error).message}); CPUs are held with sched_setaffinity only`;
        }
      } else if (mode === 'required') {
        throw new PartitionError('ERR_PARTITION_CGROUP', `a cpuset is required but unavailable: ${avail.reason}; use useCgroup 'auto' to fall back to sched_setaffinity`);
      } else {
        absent = `${avail.reason}; CPUs are held with sched_setaffinity only`;
      }
    }

    const p = new Partition(options.name, cpus, budget, cgroup, absent, onlineCpusPath, returnTo);
    try {
      // Ordering requirements: attach before pinning, because attaching resets every thread's affinity.
      cgroup?.attachProcess(process.pid);
      p.pinAll();
    } catch (e) {
      p.destroy().catch(() => { /* the create error below is the one to report */ });
      throw e;
    }
    return p;
  }

  get cpus(): number[] { return [...this.cpuSet]; }
  get cgroupPath(): string | undefined { return this.cgroup?.path; }

  /** Pins new threads (vCPU threads as VMs start) to the partition's CPUs and keeps them pinned on shrink/grow. */
  adoptThreads(tids: readonly number[]): void {
    this.checkLive();
    const r = pinThreads(tids, this.cpuSet);
    for (const tid of r.pinned) this.adopted.add(tid);
  }

  /** Gives up CPUs: the new set must be a non-empty subset of the current one. */
  shrink(cpus: readonly number[] | string): void {
    this.checkLive();
    const next = toCpus(cpus, 'shrink', this.onlineCpusPath);
    if (!isSubset(next, this.cpuSet)) {
      throw new PartitionError('ERR_PARTITION_CPUS', `cannot shrink to CPUs ${formatCpuList(next)}: not a subset of the partition's ${formatCpuList(this.cpuSet)}; use grow to add CPUs`);
    }
    // Ordering requirements: move the threads off the freed CPUs first, then narrow the cpuset
    // (a v1 cpuset would also do the move itself), then pin again since the write resets affinity.
    this.cpuSet = next;
    this.pinAll();
    this.cgroup?.setCpus(next);
    this.pinAll();
  }

  /**
   * Puts a process this instance just started (the next instance, during a swap) on `cpus`, which may
   * lie outside the partition: out of its cpuset first, then pinned. Its threads created before the
   * move keep the parent cpuset's CPUs until it pins them itself. Resolves once it is there; the
   * event loop is not blocked meanwhile.
   */
  async placeOutside(pid: number, cpus: readonly number[]): Promise<void> {
    this.checkLive();
    await this.cgroup?.moveProcessToParent(pid, cpus);
    setAffinity(pid, cpus);
  }

  /** Takes more CPUs: the new set must be a superset of the current one, and online. */
  grow(cpus: readonly number[] | string): void {
    this.checkLive();
    const next = toCpus(cpus, 'grow', this.onlineCpusPath);
    if (!isSubset(this.cpuSet, next)) {
      throw new PartitionError('ERR_PARTITION_CPUS', `cannot grow to CPUs ${formatCpuList(next)}: it drops some of the partition's ${formatCpuList(this.cpuSet)}; use shrink to give CPUs up`);
    }
    // Ordering requirements: widen the cpuset first; sched_setaffinity cannot reach outside it.
    this.cgroup?.setCpus(next);
    this.cpuSet = next;
    this.pinAll();
  }

  info(): PartitionInfo {
    const snap: MemoryBudgetSnapshot = this.budget.snapshot();
    const alive = new Set(listThreads());
    const pinned = new Set([...this.processThreads, ...this.adopted].filter((tid) => alive.has(tid)));
    return {
      name: this.name,
      cpus: this.cpus,
      memBudgetMib: snap.totalMib,
      memUsedMib: snap.usedMib,
      cgroup: this.cgroup && !this.destroyed ? { path: this.cgroup.path } : { absent: this.destroyed ? 'the partition was destroyed' : this.cgroupAbsent },
      pinnedThreads: [...pinned].sort((a, b) => a - b),
    };
  }

  /**
   * Hands the CPUs back: the process returns to the cpuset it came from, the cgroup is removed and
   * every thread gets its old affinity. Safe to call twice, and after a failed create.
   * @param opts.stayPinned the threads stay on the partition's CPUs instead: a retiring instance exits
   *   there, so its teardown (unmapping guest RAM, closing VMs: milliseconds in the kernel) does not
   *   run on the CPUs of the instance that took its VMs.
   */
  async destroy(opts: { stayPinned?: boolean } = {}): Promise<void> {
    if (this.destroyed) return;
    await this.cgroup?.destroy(this.returnTo.cpuset);
    // Moving into a cpuset resets affinity to its CPUs: pin again either way.
    pinProcess(opts.stayPinned ? this.cpuSet : this.returnTo.cpus);
    this.destroyed = true;
  }

  private pinAll(): void {
    this.processThreads = pinProcess(this.cpuSet).pinned;
    for (const tid of this.adopted) if (!isOwnThread(tid)) this.adopted.delete(tid);
  }

  private checkLive(): void {
    if (this.destroyed) throw new PartitionError('ERR_PARTITION_DESTROYED', `partition "${this.name}" was destroyed`);
  }
}

function checkOnline(cpus: readonly number[], onlinePath: string): void {
  const online = parseCpuList(readFileSync(onlinePath, 'utf8'));
  const missing = cpus.filter((cpu) => !online.includes(cpu));
  if (missing.length > 0) {
    throw new PartitionError(
      'ERR_PARTITION_CPUS',
      `CPU ${missing.join(',')} ${missing.length > 1 ? 'are' : 'is'} not online on this host (online: ${formatCpuList(online)}); pick CPUs from that list`,
    );
  }
}

function cpusetOrRoot(): string {
  try {
    return cpusetOfProcess(process.pid);
  } catch {
    return '/';
  }
}
