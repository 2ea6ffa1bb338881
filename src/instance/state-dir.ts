// The instance's state directory: what lives where, the single-owner lock, and the stored VM
// definitions. Layout:
//   <dir>/lock              flock'ed by the running daemon (two daemons on one dir refuse to run)
//   <dir>/daemon.pid        pid of the running daemon (informational; the lock is the truth)
//   <dir>/api.sock          the API socket, mode 0600
//   <dir>/daemon.log        structured JSON log lines
//   <dir>/platform.rec      the platform record (captured once per machine)
//   <dir>/vms/<name>.json   one VM definition and its last known run state, written atomically
//   <dir>/vms/<name>.console.log   the VM's console output

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FileLock } from '../sys/file-lock.js';
import { writeFileAtomicAsync } from './atomic-file.js';

export class StateDirError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * What a VM was doing when last written down. Read back by a new daemon, 'running' or 'paused' means
 * the previous daemon died with the VM in it: the VM is lost (and stays 'lost' until started again).
 */
export type PersistedRunState = 'created' | 'running' | 'paused' | 'stopped' | 'crashed' | 'lost';

export interface StoredVm<Config> {
  formatVersion: 1;
  name: string;
  config: Config;
  createdAt: string;
  runState: PersistedRunState;
  updatedAt: string;
}

const VM_FILE_FORMAT = 1;

export class StateDir {
  private lock: FileLock | undefined;

  constructor(readonly dir: string) {}

  get socketPath(): string { return path.join(this.dir, 'api.sock'); }
  get logPath(): string { return path.join(this.dir, 'daemon.log'); }
  get pidPath(): string { return path.join(this.dir, 'daemon.pid'); }
  get vmsDir(): string { return path.join(this.dir, 'vms'); }
  consoleLogPath(name: string): string { return path.join(this.vmsDir, `${name}.console.log`); }
  /** The log of a VM's virtio console (its second stream). */
  vconsoleLogPath(name: string): string { return path.join(this.vmsDir, `${name}.vconsole.log`); }
  private vmPath(name: string): string { return path.join(this.vmsDir, `${name}.json`); }

  /** Creates the directory (0700) and takes the owner lock, or explains who holds it. */
  acquire(): void {
    mkdirSync(this.vmsDir, { recursive: true, mode: 0o700 });
    const lock = FileLock.tryAcquire(path.join(this.dir, 'lock'));
    if (!lock) {
      const pid = this.readPid();
      throw new StateDirError('ERR_STATE_DIR_LOCKED', `another swapvisor daemon${pid ? ` (pid ${pid})` : ''} already owns ${this.dir}; stop it first (swapvisor daemon stop --state-dir ${this.dir}) or use another --state-dir`);
    }
    this.lock = lock;
    writeFileSync(this.pidPath, `${process.pid}\n`, { mode: 0o600 });
  }

  /** The lock's fd, handed to the next instance in a swap (flock is shared through the dup). */
  get lockFd(): number {
    if (!this.lock) throw new StateDirError('ERR_STATE_DIR_LOCKED', 'this instance does not hold the state-dir lock');
    return this.lock.fd;
  }

  /** Takes over the lock the previous instance handed over as an fd. */
  adoptLock(fd: number): void {
    this.lock = FileLock.fromFd(fd, path.join(this.dir, 'lock'));
    writeFileSync(this.pidPath, `${process.pid}\n`, { mode: 0o600 });
  }

  /** Closes this process's copy of the lock (another process holds a copy) and keeps daemon.pid. */
  releaseLockOnly(): void {
    this.lock?.release();
    this.lock = undefined;
  }

  release(): void {
    rmSync(this.pidPath, { force: true });
    this.lock?.release();
    this.lock = undefined;
  }

  readPid(): number | undefined {
    try {
      const pid = Number(readFileSync(this.pidPath, 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Writes a VM's stored state crash-safely, on a pool thread (two fsyncs: 1-15 ms here under disk load). */
  saveVm<Config>(vm: StoredVm<Config>): Promise<void> {
    return writeFileAtomicAsync(this.vmPath(vm.name), `${JSON.stringify(vm, null, 2)}\n`);
  }

  removeVm(name: string): void {
    rmSync(this.vmPath(name), { force: true });
    rmSync(this.consoleLogPath(name), { force: true });
  }

  /** Every stored VM; unreadable files are reported, not silently dropped. */
  loadVms<Config>(): { vms: StoredVm<Config>[]; unreadable: Array<{ file: string; reason: string }> } {
    const vms: StoredVm<Config>[] = [];
    const unreadable: Array<{ file: string; reason: string }> = [];
    if (!existsSync(this.vmsDir)) return { vms, unreadable };
    for (const file of readdirSync(this.vmsDir).filter((f) => f.endsWith('.json') && !f.startsWith('.')).sort()) {
      try {
        const v = JSON.parse(readFileSync(path.join(this.vmsDir, file), 'utf8')) as StoredVm<Config>;
        if (v.formatVersion !== VM_FILE_FORMAT || typeof v.name !== 'string' || `${v.name}.json` !== file) {
          throw new Error(`format ${String(v.formatVersion)} or name does not match`);
        }
        vms.push(v);
      } catch (e) {
        unreadable.push({ file, reason: e instanceof Error ? e.message : String(e) });
      }
    }
    return { vms, unreadable };
  }
}
