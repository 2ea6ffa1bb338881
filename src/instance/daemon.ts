// swapvisord: one long-running instance that owns a partition of the host and runs many VMs.
// Start-up order: lock the state dir, load (or capture) the platform record, claim the partition,
// reload stored VMs, then serve the API. Shutdown undoes it in reverse and leaves nothing behind.

import type { Server } from 'node:http';
import { rmSync } from 'node:fs';
import { Partition } from './partition/partition.js';
import { RingPoller } from '../vmm/coalesced-ring.js';
import { closeApiServer, createApiServer, listenUnix } from './api/server.js';
import { validateVmConfig } from './api/validate.js';
import { createLogger, type Logger } from './logger.js';
import { renderMetrics } from './metrics.js';
import { packageVersion } from './package-info.js';
import { StateDir } from './state-dir.js';
import { VmRegistry } from './vm-registry.js';
import { type PlatformView, loadPlatform } from './platform-view.js';

export interface DaemonOptions {
  stateDir: string;
  cpus: readonly number[];
  memBudgetMib: number;
  foreground: boolean;
  restartLost: boolean;
}

export class Daemon {
  private server: Server | undefined;
  private partition: Partition | undefined;
  private registry: VmRegistry | undefined;
  private platform: PlatformView | undefined;
  private readonly startedAt = new Date();
  private stopping: Promise<void> | undefined;
  readonly log: Logger;

  private constructor(readonly options: DaemonOptions, readonly stateDir: StateDir) {
    this.log = createLogger(stateDir.logPath, options.foreground);
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const stateDir = new StateDir(options.stateDir);
    stateDir.acquire();
    const d = new Daemon(options, stateDir);
    try {
      await d.bringUp();
    } catch (e) {
      d.log.error({ err: e instanceof Error ? e.message : String(e) }, 'daemon.start-failed');
      await d.shutdown();
      throw e;
    }
    return d;
  }

  private async bringUp(): Promise<void> {
    const o = this.options;
    this.platform = loadPlatform(this.stateDir.dir, { cpus: o.cpus, memBudgetMib: o.memBudgetMib });
    this.log.info({ captured: this.platform.captured, summary: this.platform.summary }, 'platform.record');
    const partition = Partition.create({ name: `swapvisord-${process.pid}`, cpus: o.cpus, memBudgetMib: o.memBudgetMib });
    this.partition = partition;
    this.log.info({ partition: partition.info() }, 'partition.claimed');
    const registry = new VmRegistry(this.stateDir, {
      ringPoller: new RingPoller(),
      cpus: () => partition.cpus,
      reserveMemory: (name, mib) => partition.budget.reserve(name, mib),
      releaseMemory: (name) => { try { partition.budget.release(name); } catch { /* not reserved */ } },
      log: (event, fields) => this.log.info(fields, event),
    });
    this.registry = registry;
    const report = registry.reload();
    this.log.info(report, 'vms.reloaded');
    if (report.lost.length > 0) this.log.warn({ lost: report.lost, restart: o.restartLost }, 'vms.lost');
    for (const vm of registry.list()) {
      const restart = vm.state === 'lost' && (o.restartLost || vm.config.restartPolicy === 'on-lost');
      if (restart || (vm.config.autostart && (vm.state === 'created' || vm.state === 'stopped'))) {
        try {
          vm.start();
        } catch (e) {
          this.log.error({ vm: vm.name, err: e instanceof Error ? e.message : String(e) }, 'vm.start-failed');
        }
      }
    }
    this.server = createApiServer({
      registry,
      instance: () => this.instanceInfo(),
      platform: () => this.platform!.json,
      platformText: () => this.platform!.text,
      metrics: () => renderMetrics({ version: packageVersion(), uptimeSec: this.uptimeSec(), memBudgetMib: partition.budget.total, memUsedMib: partition.budget.used, cpus: partition.cpus }, registry.list()),
      validateVmConfig,
      log: (event, fields) => this.log.info(fields, event),
    });
    await listenUnix(this.server, this.stateDir.socketPath);
    this.log.info({ socket: this.stateDir.socketPath, version: packageVersion() }, 'daemon.ready');
  }

  private uptimeSec(): number {
    return (Date.now() - this.startedAt.getTime()) / 1000;
  }

  instanceInfo(): unknown {
    const p = this.partition!.info();
    return {
      version: packageVersion(),
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      uptimeSec: this.uptimeSec(),
      stateDir: this.stateDir.dir,
      partition: { cpus: p.cpus, memBudgetMib: p.memBudgetMib, memUsedMib: p.memUsedMib, cgroup: 'path' in p.cgroup ? p.cgroup.path : null },
      platform: this.platform!.summary,
    };
  }

  /** Stops every VM, the API and the partition; safe to call more than once. */
  shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({}, 'daemon.stopping');
      if (this.server) await closeApiServer(this.server);
      await this.registry?.stopAll();
      await this.partition?.destroy().catch((e: unknown) => this.log.error({ err: String(e) }, 'partition.destroy-failed'));
      rmSync(this.stateDir.socketPath, { force: true });
      this.log.info({}, 'daemon.stopped');
      this.log.flush();
      this.stateDir.release();
    })();
    return this.stopping;
  }
}
