// swapvisord: one long-running instance that owns a partition of the host and runs many VMs.
// A fresh start locks the state dir, loads (or captures) the platform record, claims the partition,
// reloads stored VMs and serves the API. An instance started by a hot swap is assembled from what
// the previous instance handed over instead (see swap-receiver.ts). Shutdown leaves nothing behind.

import type { Server } from 'node:http';
import { existsSync, rmSync } from 'node:fs';
import { RingPoller } from '../vmm/console-poller.js';
import { type ApiContext, closeApiServer, createApiServer, listenFd, listenUnix } from './api/server.js';
import { validateVmConfig } from './api/validate.js';
import { createLogger, logUncaught, type Logger } from './logger.js';
import { renderMetrics } from './metrics.js';
import { packageVersion } from './package-info.js';
import { Partition } from './partition/partition.js';
import { type PlatformView, loadPlatform } from './platform-view.js';
import { StateDir } from './state-dir.js';
import { SwapControl } from './swap-control.js';
import { VmRegistry } from './vm-registry.js';

export interface DaemonOptions {
  stateDir: string;
  cpus: readonly number[];
  memBudgetMib: number;
  foreground: boolean;
  restartLost: boolean;
}

/** The pieces an instance is made of; a fresh start builds them, a swap receiver receives them. */
export interface DaemonParts {
  stateDir: StateDir;
  log: Logger;
  partition: Partition;
  registry: VmRegistry;
  platform: PlatformView;
}

export function newRegistry(stateDir: StateDir, partition: Partition, log: Logger): VmRegistry {
  return new VmRegistry(stateDir, {
    ringPoller: new RingPoller(),
    cpus: () => partition.cpus,
    reserveMemory: (name, mib) => partition.budget.reserve(name, mib),
    releaseMemory: (name) => { try { partition.budget.release(name); } catch { /* not reserved */ } },
    log: (event, fields) => log.info(fields, event),
  });
}

export class Daemon {
  private server: Server | undefined;
  private apiFd = -1;
  private extraServer: Server | undefined;
  private readonly startedAt = new Date();
  private stopping: Promise<void> | undefined;
  readonly swap: SwapControl;
  /** Resolves when the daemon has shut down or retired; the process may then exit. */
  readonly finished: Promise<void>;
  private finish!: () => void;

  private constructor(private readonly parts: DaemonParts) {
    this.swap = new SwapControl(this, parts);
    this.finished = new Promise((resolve) => { this.finish = resolve; });
  }

  get log(): Logger { return this.parts.log; }
  get stateDir(): StateDir { return this.parts.stateDir; }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const stateDir = new StateDir(options.stateDir);
    stateDir.acquire();
    const log = createLogger(stateDir.logPath, options.foreground);
    logUncaught(log);
    let partition: Partition | undefined;
    try {
      const platform = loadPlatform(stateDir.dir, { cpus: options.cpus, memBudgetMib: options.memBudgetMib });
      log.info({ captured: platform.captured, summary: platform.summary }, 'platform.record');
      partition = Partition.create({ name: `swapvisord-${process.pid}`, cpus: options.cpus, memBudgetMib: options.memBudgetMib });
      log.info({ partition: partition.info() }, 'partition.claimed');
      const registry = newRegistry(stateDir, partition, log);
      const d = new Daemon({ stateDir, log, partition, registry, platform });
      d.reloadVms(options.restartLost);
      await d.serve({ path: stateDir.socketPath });
      return d;
    } catch (e) {
      log.error({ err: e instanceof Error ? e.message : String(e) }, 'daemon.start-failed');
      await partition?.destroy().catch(() => undefined);
      log.flush();
      stateDir.release();
      throw e;
    }
  }

  /** An instance that a hot swap handed everything to: it serves the API on the received socket. */
  static async adopt(parts: DaemonParts, listenFd: number): Promise<Daemon> {
    const d = new Daemon(parts);
    await d.serve({ fd: listenFd });
    return d;
  }

  /** A swap receiver whose old instance died: serve the API at its path, like a fresh start. */
  static async takeOver(parts: DaemonParts): Promise<Daemon> {
    const d = new Daemon(parts);
    await d.serve({ path: parts.stateDir.socketPath });
    return d;
  }

  private reloadVms(restartLost: boolean): void {
    const { registry, log } = this.parts;
    const report = registry.reload();
    log.info(report, 'vms.reloaded');
    if (report.lost.length > 0) log.warn({ lost: report.lost, restart: restartLost }, 'vms.lost');
    for (const vm of registry.list()) {
      const restart = vm.state === 'lost' && (restartLost || vm.config.restartPolicy === 'on-lost');
      if (restart || (vm.config.autostart && (vm.state === 'created' || vm.state === 'stopped'))) {
        vm.start().catch((e: unknown) => log.error({ vm: vm.name, err: e instanceof Error ? e.message : String(e) }, 'vm.start-failed'));
      }
    }
  }

  private async serve(where: { path: string } | { fd: number }): Promise<void> {
    this.server = createApiServer(this.apiContext());
    if ('path' in where) this.apiFd = await listenUnix(this.server, where.path);
    else {
      this.apiFd = where.fd;
      await listenFd(this.server, where.fd);
    }
    this.log.info({ socket: this.stateDir.socketPath, version: packageVersion() }, 'daemon.ready');
  }

  private apiContext(): ApiContext {
    const { registry, partition, log } = this.parts;
    return {
      registry,
      instance: () => this.instanceInfo(),
      platform: () => this.parts.platform.json,
      platformText: () => this.parts.platform.text,
      metrics: () => renderMetrics({ version: packageVersion(), uptimeSec: this.uptimeSec(), memBudgetMib: partition.budget.total, memUsedMib: partition.budget.used, cpus: partition.cpus }, registry.list()),
      validateVmConfig,
      swap: this.swap,
      log: (event, fields) => log.info(fields, event),
    };
  }

  /**
   * After a swap, once the old instance is gone: make sure the socket path names our socket. (The
   * old instance's exit can unlink the path; the socket itself, which we serve, lives on.)
   */
  async ensureSocketPath(): Promise<void> {
    if (existsSync(this.stateDir.socketPath)) return;
    this.extraServer = createApiServer(this.apiContext());
    await listenUnix(this.extraServer, this.stateDir.socketPath);
    this.log.warn({ socket: this.stateDir.socketPath }, 'daemon.socket-rebound');
  }

  /** Replaces the platform view (after a swap the instance grows to the whole record's partition). */
  setPlatform(view: PlatformView): void {
    this.parts.platform = view;
  }

  private uptimeSec(): number {
    return (Date.now() - this.startedAt.getTime()) / 1000;
  }

  instanceInfo(): unknown {
    const p = this.parts.partition.info();
    return {
      version: packageVersion(),
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      uptimeSec: this.uptimeSec(),
      stateDir: this.stateDir.dir,
      partition: { cpus: p.cpus, memBudgetMib: p.memBudgetMib, memUsedMib: p.memUsedMib, cgroup: 'path' in p.cgroup ? p.cgroup.path : null },
      platform: this.parts.platform.summary,
    };
  }

  /** The API's listening socket, for handing to the next instance. */
  listenFd(): number {
    if (this.apiFd < 0) throw new Error('the API server has no listening fd');
    return this.apiFd;
  }

  /** Stops every VM, the API and the partition; safe to call more than once. */
  shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      const { registry, partition, log } = this.parts;
      log.info({}, 'daemon.stopping');
      if (this.server) await closeApiServer(this.server);
      if (this.extraServer) await closeApiServer(this.extraServer);
      await registry.stopAll();
      await partition.destroy().catch((e: unknown) => log.error({ err: String(e) }, 'partition.destroy-failed'));
      rmSync(this.stateDir.socketPath, { force: true });
      log.info({}, 'daemon.stopped');
      log.flush();
      this.stateDir.release();
      this.finish();
    })();
    return this.stopping;
  }

  /**
   * After a completed swap: the next instance serves the API (on the same socket) and runs every VM.
   * Stop listening without removing the socket, give up the partition, drop this copy of the lock.
   */
  retire(): Promise<void> {
    this.stopping ??= (async () => {
      const { partition, log } = this.parts;
      // The next instance serves the same socket (a dup of the fd); closing ours leaves the path.
      if (this.server) await closeApiServer(this.server);
      await partition.destroy({ stayPinned: true }).catch((e: unknown) => log.error({ err: String(e) }, 'partition.destroy-failed'));
      log.info({}, 'daemon.retired');
      log.flush();
      this.stateDir.releaseLockOnly();
      this.finish();
    })();
    return this.stopping;
  }
}
