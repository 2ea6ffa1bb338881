// Test harness for the daemon: a temp state dir, the real CLI to start and stop the daemon, raw
// HTTP over its unix socket, and clean-up that kills only the daemons it started (by PID).

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLI, type CliResult, runCli } from './helpers.js';
import { processRunning } from '../src/sys/process-state.js';

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

export class DaemonHarness {
  readonly stateDir = mkdtempSync(path.join(tmpdir(), 'swapvisor-daemon-'));
  private pids = new Set<number>();

  get socket(): string { return path.join(this.stateDir, 'api.sock'); }

  cli(args: string[], opts: { timeoutMs?: number; signalAfterMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
    return runCli([...args, ...(args[0] === 'run' ? [] : ['--state-dir', this.stateDir])], opts);
  }

  async start(extra: string[] = [], env?: NodeJS.ProcessEnv): Promise<number> {
    const r = await this.cli(['daemon', 'start', '--mem-budget', '256M', ...extra], { timeoutMs: 30_000, env });
    if (r.code !== 0) throw new Error(`daemon start failed (${r.code}): ${r.stderr}`);
    const pid = Number(/pid (\d+)/.exec(r.stdout)![1]);
    this.pids.add(pid);
    return pid;
  }

  http(method: string, urlPath: string, body?: string | object, headers: Record<string, string> = {}): Promise<HttpResult> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socket, method, path: urlPath, headers: { ...(payload !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try { json = JSON.parse(text); } catch { json = undefined; }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Running: not gone and not a zombie (a daemon's parent may be init, which reaps late). */
  alive(pid: number): boolean {
    return processRunning(pid);
  }

  async waitGone(pid: number, timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.alive(pid)) {
      if (Date.now() > end) throw new Error(`pid ${pid} still alive`);
      await new Promise((r) => setTimeout(r, 20));
    }
    this.pids.delete(pid);
  }

  /** The pid that owns the state dir now (after a swap, the new instance). */
  ownerPid(): number {
    return Number(readFileSync(path.join(this.stateDir, 'daemon.pid'), 'utf8').trim());
  }

  /** Kills every daemon this harness started that is still alive, removes leftover cgroups and the dir. */
  async cleanup(): Promise<void> {
    for (const pid of this.pidsSeen) if (this.alive(pid) && this.isOurs(pid)) this.pids.add(pid);
    for (const pid of this.pids) {
      if (this.alive(pid)) process.kill(pid, 'SIGKILL');
      await this.waitGone(pid).catch(() => undefined);
    }
    for (const pid of this.pidsSeen) {
      const cg = `/sys/fs/cgroup/cpuset/swapvisor/swapvisord-${pid}`;
      if (existsSync(cg)) await new Promise((r) => execFile('rmdir', [cg], () => r(undefined)));
    }
    // The shared parent goes too once no instance uses it (rmdir fails harmlessly while one does).
    await new Promise((r) => execFile('rmdir', ['/sys/fs/cgroup/cpuset/swapvisor'], () => r(undefined)));
    rmSync(this.stateDir, { recursive: true, force: true });
  }

  /** A process started for this state dir (a daemon, or a swap's new instance). */
  private isOurs(pid: number): boolean {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.stateDir);
    } catch {
      return false;
    }
  }

  private get pidsSeen(): number[] {
    const log = path.join(this.stateDir, 'daemon.log');
    if (!existsSync(log)) return [];
    return [...new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { pid: number }).pid))];
  }

  track(pid: number): void { this.pids.add(pid); }
}

export { CLI };
