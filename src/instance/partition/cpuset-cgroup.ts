// A cgroup v1 cpuset for one instance, at <root>/swapvisor/<name>/: create it, attach this process,
// change its CPUs, and remove it. It never touches CPU hotplug, other controllers or cgroup v2.
// Reference: Documentation/admin-guide/cgroup-v1/cpusets.rst.

import { readdirSync, accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { processRunning } from '../../sys/process-state.js';
import { formatCpuList, isSubset, normalizeCpus, parseCpuList } from './cpu-list.js';

export const CPUSET_ROOT = '/sys/fs/cgroup/cpuset';
export const CPUSET_PARENT = 'swapvisor';

export type CgroupErrorCode = 'ERR_CGROUP_UNAVAILABLE' | 'ERR_CGROUP_NAME' | 'ERR_CGROUP_BUSY' | 'ERR_CGROUP_WRITE' | 'ERR_CGROUP_DESTROYED';

export class CgroupError extends Error {
  constructor(readonly code: CgroupErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CgroupError';
  }
}

export type Availability = { ok: true } | { ok: false; reason: string };

export interface CpusetOptions {
  cpus: readonly number[];
  /** Memory nodes; defaults to the root cpuset's. */
  mems?: readonly number[];
  /** The cpuset hierarchy's mount point (default /sys/fs/cgroup/cpuset). */
  root?: string;
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const RMDIR_TRIES = 50;
const RMDIR_WAIT_MS = 10;

/** File names are "cpuset.cpus" normally, "cpus" when mounted with -o noprefix. */
function prefixOf(root: string): string {
  return existsSync(path.join(root, 'cpuset.cpus')) ? 'cpuset.' : '';
}

function errnoOf(e: unknown): string | undefined {
  return e instanceof Error ? (e as Error & { code?: string }).code : undefined;
}

/** Is the v1 cpuset hierarchy mounted at `root`, and may we write to it? */
export function cpusetAvailable(root = CPUSET_ROOT): Availability {
  let mounts: string;
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8');
  } catch (e) {
    return { ok: false, reason: `cannot read /proc/self/mounts: ${(e as Error).message}` };
  }
  const mount = mounts.split('\n').map((l) => l.split(' ')).find((f) => f[1] === root && f[2] === 'cgroup');
  if (!mount) return { ok: false, reason: `no cgroup v1 hierarchy is mounted at ${root}` };
  const opts = (mount[3] ?? '').split(',');
  if (!opts.includes('cpuset')) return { ok: false, reason: `the cgroup v1 hierarchy at ${root} has no cpuset controller` };
  if (opts.includes('ro')) return { ok: false, reason: `the cpuset hierarchy at ${root} is mounted read-only` };
  try {
    accessSync(root, constants.W_OK);
    accessSync(path.join(root, 'cgroup.procs'), constants.W_OK);
  } catch (e) {
    return { ok: false, reason: `the cpuset hierarchy at ${root} is not writable by this process (${errnoOf(e) ?? 'error'}); run as root` };
  }
  return { ok: true };
}

/** The cpuset cgroup path ("/" or "/a/b") of a process, from /proc/<pid>/cgroup. */
export function cpusetOfProcess(pid: number): string {
  const text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  for (const line of text.split('\n')) {
    const [, controllers, p] = line.split(':');
    if (controllers !== undefined && controllers.split(',').includes('cpuset') && p !== undefined) return p;
  }
  throw new CgroupError('ERR_CGROUP_UNAVAILABLE', `process ${pid} is in no cgroup v1 cpuset (see /proc/${pid}/cgroup)`);
}

export class CpusetCgroup {
  private destroyed = false;

  private constructor(
    readonly name: string,
    readonly root: string,
    readonly path: string,
    private readonly prefix: string,
  ) {}

  static available(root = CPUSET_ROOT): Availability {
    return cpusetAvailable(root);
  }

  /** Makes <root>/swapvisor/<name>/ with the given CPUs and memory nodes. No task is attached yet. */
  static create(name: string, options: CpusetOptions): CpusetCgroup {
    if (!NAME.test(name)) throw new CgroupError('ERR_CGROUP_NAME', `cgroup name "${name}" is not valid: use 1-64 letters, digits, '.', '_' or '-'`);
    const root = options.root ?? CPUSET_ROOT;
    const avail = cpusetAvailable(root);
    if (!avail.ok) throw new CgroupError('ERR_CGROUP_UNAVAILABLE', avail.reason);
    const prefix = prefixOf(root);
    const cpus = normalizeCpus(options.cpus);
    if (cpus.length === 0) throw new CgroupError('ERR_CGROUP_WRITE', 'a cpuset needs at least one CPU');
    const mems = options.mems ? normalizeCpus(options.mems) : parseCpuList(readFileSync(path.join(root, `${prefix}mems`), 'utf8'));
    const parent = path.join(root, CPUSET_PARENT);
    const dir = path.join(parent, name);
    const cg = new CpusetCgroup(name, root, dir, prefix);
    cg.ensureParent(cpus);
    sweepStale(parent);
    try {
      try {
        mkdirSync(dir);
      } catch (e) {
        // The last other instance removed the shared parent just now: make it again, once.
        if (errnoOf(e) !== 'ENOENT') throw e;
        cg.ensureParent(cpus);
        mkdirSync(dir);
      }
    } catch (e) {
      if (errnoOf(e) !== 'EEXIST') throw new CgroupError('ERR_CGROUP_WRITE', `cannot create cgroup ${dir}: ${(e as Error).message}`, { cause: e });
      // A leftover from an instance that died: reuse it only if nothing runs in it.
      if (cg.procs().length > 0) {
        throw new CgroupError('ERR_CGROUP_BUSY', `cgroup ${dir} already exists and has processes in it; pick another partition name or stop that instance`);
      }
    }
    try {
      // Ordering requirements: a v1 cpuset refuses tasks until both cpus and mems are set.
      cg.write('cpus', formatCpuList(cpus));
      cg.write('mems', formatCpuList(mems));
    } catch (e) {
      try { rmdirSync(dir); } catch { /* best effort; the error below matters more */ }
      throw e;
    }
    return cg;
  }

  /**
   * Makes sure <root>/swapvisor exists and allows `cpus`. A fresh v1 cpuset starts with empty cpus
   * and mems, so we copy the root's before any child can be used. The parent is shared by every
   * instance on the host and is never removed.
   */
  private ensureParent(cpus: readonly number[]): void {
    const parent = path.join(this.root, CPUSET_PARENT);
    try {
      mkdirSync(parent);
    } catch (e) {
      if (errnoOf(e) !== 'EEXIST') throw new CgroupError('ERR_CGROUP_WRITE', `cannot create cgroup ${parent}: ${(e as Error).message}`, { cause: e });
    }
    const rootCpus = parseCpuList(readFileSync(path.join(this.root, `${this.prefix}cpus`), 'utf8'), { allowEmpty: true });
    if (!isSubset(cpus, rootCpus)) {
      throw new CgroupError('ERR_CGROUP_WRITE', `CPUs ${formatCpuList(cpus)} are not all in the root cpuset (${formatCpuList(rootCpus)}); pick CPUs from that list`);
    }
    const parentCpus = parseCpuList(readFileSync(path.join(parent, `${this.prefix}cpus`), 'utf8'), { allowEmpty: true });
    // Ordering requirements: the parent must allow the CPUs before a child may take them.
    if (!isSubset(cpus, parentCpus)) this.writeAt(parent, 'cpus', formatCpuList([...new Set([...parentCpus, ...cpus])]));
    const parentMems = readFileSync(path.join(parent, `${this.prefix}mems`), 'utf8').trim();
    if (parentMems === '') this.writeAt(parent, 'mems', readFileSync(path.join(this.root, `${this.prefix}mems`), 'utf8').trim());
  }

  /** Moves a process, with all its threads, into this cpuset. The kernel resets their affinity to its CPUs. */
  attachProcess(pid: number): void {
    this.checkLive();
    this.writeAt(this.path, 'cgroup.procs', String(pid), true);
  }

  /**
   * Moves another process (all its threads) out into the shared parent <root>/swapvisor/, widened
   * first to allow `cpus`. Asynchronous: a cgroup move waits for an RCU grace period (milliseconds
   * here), which must not block the caller's event loop.
   */
  async moveProcessToParent(pid: number, cpus: readonly number[]): Promise<void> {
    this.checkLive();
    this.ensureParent(normalizeCpus(cpus));
    const file = path.join(path.dirname(this.path), 'cgroup.procs');
    try {
      await writeFile(file, `${pid}\n`);
    } catch (e) {
      throw new CgroupError('ERR_CGROUP_WRITE', `cannot write "${pid}" to ${file}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** The CPUs of this cpuset, as the kernel reports them. */
  cpus(): number[] {
    return parseCpuList(readFileSync(path.join(this.path, `${this.prefix}cpus`), 'utf8'), { allowEmpty: true });
  }

  /** The pids in this cpuset. */
  procs(): number[] {
    return readFileSync(path.join(this.path, 'cgroup.procs'), 'utf8').split('\n').filter((l) => l !== '').map(Number);
  }

  /**
   * Sets the CPUs. On grow the parent is widened first if it has to be. A v1 cpuset rewrites the
   * affinity of every task in it to the new CPUs, on shrink and on grow alike.
   */
  setCpus(cpus: readonly number[]): void {
    this.checkLive();
    const set = normalizeCpus(cpus);
    if (set.length === 0) throw new CgroupError('ERR_CGROUP_WRITE', 'a cpuset needs at least one CPU; an empty one would strand its tasks');
    this.ensureParent(set);
    this.write('cpus', formatCpuList(set));
  }

  /**
   * Moves every process in this cpuset to `returnTo` (default: the root cpuset), then removes the
   * directory, retrying while the kernel still reports it busy. The shared parent stays. Idempotent.
   */
  async destroy(returnTo = '/'): Promise<void> {
    if (this.destroyed) return;
    if (!existsSync(this.path)) { this.destroyed = true; return; }
    const target = path.join(this.root, returnTo);
    for (const pid of this.procs()) {
      try {
        this.writeAt(target, 'cgroup.procs', String(pid), true);
      } catch (e) {
        if (!(e instanceof CgroupError && errnoOf(e.cause) === 'ESRCH')) throw e;
      }
    }
    for (let attempt = 1; ; attempt++) {
      try {
        rmdirSync(this.path);
        break;
      } catch (e) {
        const code = errnoOf(e);
        if (code === 'ENOENT') break;
        if (code !== 'EBUSY' || attempt >= RMDIR_TRIES) {
          throw new CgroupError('ERR_CGROUP_BUSY', `cannot remove cgroup ${this.path}: ${(e as Error).message}; see its cgroup.procs`, { cause: e });
        }
        await new Promise((r) => setTimeout(r, RMDIR_WAIT_MS));
      }
    }
    this.destroyed = true;
    // The last instance out also removes the shared parent; while another instance (the other side of
    // a swap) still has its child there, rmdir fails with EBUSY and the parent stays.
    try {
      rmdirSync(path.dirname(this.path));
    } catch {
      // busy or already gone: either is fine
    }
  }

  private checkLive(): void {
    if (this.destroyed) throw new CgroupError('ERR_CGROUP_DESTROYED', `cgroup ${this.path} was destroyed`);
  }

  private write(file: 'cpus' | 'mems', value: string): void {
    this.writeAt(this.path, file, value);
  }

  private writeAt(dir: string, file: string, value: string, raw = false): void {
    const p = path.join(dir, raw ? file : `${this.prefix}${file}`);
    try {
      writeFileSync(p, `${value}\n`);
    } catch (e) {
      const hint = errnoOf(e) === 'ENOSPC' ? ' (the cpuset has no CPUs or memory nodes)' : errnoOf(e) === 'EINVAL' ? ' (the value is outside the parent cpuset or not online)' : '';
      throw new CgroupError('ERR_CGROUP_WRITE', `cannot write "${value}" to ${p}: ${(e as Error).message}${hint}`, { cause: e });
    }
  }
}

/**
 * Removes empty cpusets left by instances that died without cleaning up (SIGKILL, a crash): a
 * child named <anything>-<pid> whose pid is gone and which has no task in it.
 */
export function sweepStale(parent: string): string[] {
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(parent, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return removed;
  }
  for (const name of entries) {
    const m = /-(\d+)$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (processRunning(pid)) continue; // its owner lives (an exited owner still unreaped has left its cgroup)
    try {
      rmdirSync(path.join(parent, name));
      removed.push(name);
    } catch {
      // not empty or already gone
    }
  }
  return removed;
}

/** Sweeps the shared swapvisor/ parent of the default hierarchy (see sweepStale). */
export function sweepStaleCpusets(): string[] {
  return sweepStale(path.join(CPUSET_ROOT, CPUSET_PARENT));
}
