// The io benchmark's own network namespace (`svbench-<pid>`): the VMs and the UDP load run inside it, so no
// benchmark traffic touches the host's interfaces. It tracks every process it started and, at dispose(), kills
// those still alive (by PID) and deletes the namespace with all its taps. It sets up no routing.

import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchRunError } from './errors.js';

export interface NsRunResult { code: number | null; stdout: string; stderr: string }

/** How long a VM may take to create its tap after being spawned. */
const TAP_APPEAR_TIMEOUT_MS = 10_000;
const TAP_POLL_MS = 20;

export class BenchNetns {
  private readonly children = new Set<ChildProcess>();
  private disposed = false;

  private constructor(readonly name: string) {}

  /** Creates the namespace with its loopback up; the caller must dispose() it (in a finally). */
  static create(name: string): BenchNetns {
    try {
      execFileSync('ip', ['netns', 'add', name], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      throw new BenchRunError(`io: cannot create network namespace ${name} (needs root and iproute2): ${(e as Error).message}`, { cause: e });
    }
    const ns = new BenchNetns(name);
    try {
      execFileSync('ip', ['-n', name, 'link', 'set', 'dev', 'lo', 'up'], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      ns.dispose();
      throw e;
    }
    return ns;
  }

  /** Starts a long-running program inside; `ip netns exec` execs it, so the child's PID is the program's own. */
  spawn(cmd: string, args: readonly string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Runs a program inside to completion, without blocking the event loop. */
  run(cmd: string, args: readonly string[], timeoutMs: number): Promise<NsRunResult> {
    return new Promise((resolve) => {
      const child = execFile('ip', ['netns', 'exec', this.name, cmd, ...args], {
        encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024,
      }, (error, stdout, stderr) => {
        this.children.delete(child);
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
      });
      this.children.add(child);
    });
  }

  /** Waits until a VM (inside, or a daemon moving it in) has created tap `tap`, then brings it up with address `cidr` (e.g. 10.77.0.1/24). */
  async configureTap(tap: string, cidr: string, vm?: ChildProcess): Promise<void> {
    const deadline = Date.now() + TAP_APPEAR_TIMEOUT_MS;
    for (;;) {
      try {
        execFileSync('ip', ['-n', this.name, 'link', 'show', 'dev', tap], { stdio: 'ignore' });
        break;
      } catch {
        if (vm !== undefined && (vm.exitCode !== null || vm.signalCode !== null)) throw new BenchRunError(`io: the VM ended before it created tap ${tap}`);
        if (Date.now() > deadline) throw new BenchRunError(`io: tap ${tap} did not appear in ${this.name} within ${TAP_APPEAR_TIMEOUT_MS} ms`);
        await sleep(TAP_POLL_MS);
      }
    }
    execFileSync('ip', ['-n', this.name, 'link', 'set', 'dev', tap, 'up'], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('ip', ['-n', this.name, 'addr', 'add', cidr, 'dev', tap], { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** Kills what was started inside (by PID), then deletes the namespace and every interface in it. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const child of this.children) {
      // INVARIANT: the child has not been reaped (no exit seen), so its PID is still the process we started.
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    }
    this.children.clear();
    // Anything else inside was started by us too (the namespace is ours alone): end it by PID.
    try {
      const pids = execFileSync('ip', ['netns', 'pids', this.name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      for (const pid of pids.split(/\s+/).filter(Boolean).map(Number)) {
        if (pid !== process.pid) {
          try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
        }
      }
    } catch { /* the namespace is already gone */ }
    try {
      execFileSync('ip', ['netns', 'delete', this.name], { stdio: 'ignore' });
    } catch { /* already deleted */ }
  }
}

/** Stops a VM started with BenchNetns.spawn: SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
export function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  const pid = child.pid;
  return new Promise((resolve) => {
    const timer = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }, graceMs);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
  });
}
