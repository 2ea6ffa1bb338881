// A test helper that makes a throw-away network namespace (`svtest-<pid>-<n>`), runs commands inside it,
// and always removes it again: by dispose() in a finally, or by a process exit/signal hook as a last
// resort. It is for tests only; it sets up no routing to the outside and sends no traffic by itself.

import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

export const NETNS_RUN_DIR = '/run/netns';

export interface NetnsRunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface TestNetns {
  readonly name: string;
  /** Runs `ip netns exec <ns> cmd ...args` to completion (throws on a non-zero exit); returns stdout. */
  exec(cmd: string, args: readonly string[], opts?: { timeoutMs?: number }): string;
  /** The same, without blocking this thread (for programs that talk to something this process serves). */
  run(cmd: string, args: readonly string[], opts?: { timeoutMs?: number }): Promise<NetnsRunResult>;
  /** Starts a long-running program inside the namespace; it is killed (by PID) at dispose. */
  spawn(cmd: string, args: readonly string[]): ChildProcess;
  /** Brings up an interface already moved into the namespace (a tap) and gives it an address, e.g. "10.77.0.1/24". */
  addTap(tapName: string, cidr: string): void;
  /** Kills what was started inside, then deletes the namespace and every interface in it. Idempotent. */
  dispose(): void;
}

/** Why namespace tests cannot run here, or undefined when they can. */
export function netnsSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'the `ip` command (iproute2) is not installed';
  }
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  return undefined;
}

const live = new Map<string, NetnsImpl>();
let counter = 0;
let hooksInstalled = false;

function onSignal(signal: NodeJS.Signals): void {
  disposeAll();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.kill(process.pid, signal);
}

function disposeAll(): void {
  for (const ns of [...live.values()]) ns.dispose();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // Last resort: a test that forgot dispose(), or a process leaving through process.exit().
  process.on('exit', disposeAll);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

class NetnsImpl implements TestNetns {
  private readonly children = new Set<ChildProcess>();
  private disposed = false;

  constructor(readonly name: string) {}

  exec(cmd: string, args: readonly string[], opts: { timeoutMs?: number } = {}): string {
    return execFileSync('ip', ['netns', 'exec', this.name, cmd, ...args], {
      encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, stdio: ['ignore', 'pipe', 'pipe'], killSignal: 'SIGKILL',
    });
  }

  run(cmd: string, args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<NetnsRunResult> {
    return new Promise((resolve) => {
      const child = execFile('ip', ['netns', 'exec', this.name, cmd, ...args], {
        encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024,
      }, (error, stdout, stderr) => {
        this.children.delete(child);
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, signal: (error?.signal as NodeJS.Signals | undefined) ?? null, stdout, stderr });
      });
      this.children.add(child);
    });
  }

  spawn(cmd: string, args: readonly string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  addTap(tapName: string, cidr: string): void {
    execFileSync('ip', ['-n', this.name, 'link', 'set', 'dev', tapName, 'up'], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('ip', ['-n', this.name, 'addr', 'add', cidr, 'dev', tapName], { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    live.delete(this.name);
    // `ip netns exec` execs the program, so each child PID is the program itself.
    for (const child of this.children) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    }
    this.children.clear();
    // Anything else still inside was started by us too (the namespace is ours alone): end it by PID.
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

/** Makes a new, empty namespace with its loopback up. The caller must dispose() it (in a finally). */
export function createTestNetns(): TestNetns {
  installHooks();
  const name = `svtest-${process.pid}-${counter++}`;
  execFileSync('ip', ['netns', 'add', name], { stdio: ['ignore', 'ignore', 'pipe'] });
  const ns = new NetnsImpl(name);
  live.set(name, ns);
  try {
    execFileSync('ip', ['-n', name, 'link', 'set', 'dev', 'lo', 'up'], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    ns.dispose();
    throw e;
  }
  return ns;
}

/** Runs fn with a fresh namespace and removes the namespace afterwards, whether fn succeeds or throws. */
export async function withNetns<T>(fn: (ns: TestNetns) => T | Promise<T>): Promise<T> {
  const ns = createTestNetns();
  try {
    return await fn(ns);
  } finally {
    ns.dispose();
  }
}
