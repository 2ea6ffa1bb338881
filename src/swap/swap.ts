// The hot swap's orchestrator: runs the five phases in order (boot-info, partition, launch,
// move-vm, retire), writes the journal, keeps the report, and rolls back on any failure before the
// retirement: B is stopped, moved VMs come back to A (or are reported lost if B died), A grows back.

import type { ChildProcess } from 'node:child_process';
import { prepareBootInfo } from './boot-info.js';
import type { HandoverChannel } from './channel.js';
import { faultArmed, crashNow } from './faults.js';
import type { MovableVm, SwapHost } from './host.js';
import { SwapJournal } from './journal.js';
import { type LaunchedB, launchB } from './launch.js';
import { MoveFailure, SWAP_NICE, type VmMove, moveVm, prepareVmInB, returnVm } from './move-vm.js';
import { setOwnNice } from '../sys/affinity.js';
import { type PartitionShrink, shrinkForSwap } from './partition.js';
import { MessageType } from './protocol.js';
import { retireA } from './retire.js';
import { SwapError } from './swap-error.js';
import { HotLoop } from './hot-loop.js';
import { type CanaryOptions, runCanary } from './canary.js';
import { type SwapReport, newReport } from './report.js';

export interface SwapOptions {
  id: string;
  to: string;
  dryRun?: boolean;
  /** Clone this VM into B and check it before anything moves. */
  canary?: CanaryOptions;
  /** How many VMs move at once. */
  concurrency?: number;
  onProgress?: (r: SwapReport) => void;
}

async function forEachLimited<T>(items: readonly T[], limit: number, f: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await f(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class Swap {
  readonly report: SwapReport;
  private readonly journal: SwapJournal;
  private b: LaunchedB | undefined;
  private shrink: PartitionShrink | undefined;
  /** A's rehearsal of the pause window (normally done at start-up); it never rejects. */
  private rehearsal: Promise<void> = Promise.resolve();
  private readonly moved: MovableVm[] = [];
  private abortRequested = false;

  /** Asks a running swap to stop at the next safe point and roll back. */
  abort(): void {
    this.abortRequested = true;
  }

  private checkAbort(): void {
    if (this.abortRequested) throw new SwapError('ERR_SWAP_ABORTED', 'the swap was aborted on request; everything stays in the running instance');
  }

  constructor(private readonly host: SwapHost, private readonly opts: SwapOptions) {
    this.report = newReport(opts.id, opts.to, host.version);
    this.journal = new SwapJournal(host.stateDir, opts.id);
  }

  private progress(): void {
    this.opts.onProgress?.(this.report);
  }

  private async phase<T>(name: SwapReport['phases'][number]['name'], f: () => Promise<T> | T): Promise<T> {
    const p = { name, startMs: this.report.elapsedMs(), endMs: null as number | null };
    this.report.phases.push(p);
    this.report.phase = name;
    this.checkAbort();
    await this.journal.write(`phase.${name}`);
    this.progress();
    const out = await f();
    p.endMs = this.report.elapsedMs();
    this.progress();
    return out;
  }

  /** Runs the swap. Resolves with the report once A may exit (or once rolled back; then it throws). */
  async run(): Promise<SwapReport> {
    await this.host.vmStateSettled();
    const vms = this.host.runningVms();
    await this.journal.write('swap.begin', { to: this.opts.to, vms: vms.map((v) => v.name) });
    const restoreNice = setOwnNice(SWAP_NICE); // see SWAP_NICE
    try {
      const pkg = await this.phase('boot-info', () => prepareBootInfo(this.host, this.opts.to));
      this.report.plan = { aCpus: pkg.aCpus, bCpus: pkg.bCpus, targetVersion: pkg.target.version, vms: vms.map((v) => v.name) };
      if (this.opts.dryRun) {
        this.report.state = 'planned';
        return this.report;
      }
      this.rehearsal = this.host.rehearsePauseWindow();
      this.shrink = await this.phase('partition', () => shrinkForSwap(this.host.partition, pkg.aCpus));
      this.b = await this.phase('launch', () => launchB(pkg, {
        stateDir: this.host.stateDir, version: this.host.version, place: (pid) => this.host.partition.placeOutside(pid, pkg.bCpus),
        onSpawn: (pid) => { this.report.to.pid = pid; this.journal.note('b.spawned', { bPid: pid }); },
      }));
      this.report.to.version = this.b.version;
      this.report.to.pid = this.b.pid;
      await this.journal.write('b.ready', { bPid: this.b.pid, bVersion: this.b.version, healthMs: this.b.healthMs });
      if (this.opts.canary) await this.canary(this.opts.canary, vms);
      await this.phase('move-vm', () => this.moveAll(vms));
      await this.phase('retire', () => this.retire());
      this.report.state = 'done';
      await this.journal.write('swap.done');
      return this.report;
    } catch (e) {
      await this.rollback(e);
      throw e;
    } finally {
      restoreNice();
      this.progress();
    }
  }

  private async moveAll(vms: readonly MovableVm[]): Promise<void> {
    const b = this.b!;
    const shellMs = new Map<string, number>();
    // Every shell first: B's main thread then has no long work to do while moved VMs run in it.
    const moving: MovableVm[] = [];
    await forEachLimited(vms, this.opts.concurrency ?? 4, async (vm) => {
      if (!vm.running || vm.running.state !== 'running') return; // it stopped on its own meanwhile
      shellMs.set(vm.name, await prepareVmInB(b.channel, vm, this.journal, b.features));
      moving.push(vm);
    });
    await this.rehearsal;
    this.checkAbort();
    // One VM at a time through the pause window: B restores on one thread anyway, and a VM waiting
    // its turn would otherwise sit paused.
    await this.moveEach(moving, b, shellMs);
  }

  private readonly hot = new HotLoop();

  private async moveEach(moving: readonly MovableVm[], b: LaunchedB, shellMs: ReadonlyMap<string, number>): Promise<void> {
    await forEachLimited(moving, 1, async (vm) => {
      this.checkAbort();
      if (!vm.running || vm.running.state !== 'running') {
        // It ended on its own after B built its shell: nothing to move; B drops the shell.
        b.channel.send(MessageType.DiscardVm, { name: vm.name });
        return;
      }
      const move: VmMove = await moveVm(b.channel, vm, this.journal, shellMs.get(vm.name) ?? 0, this.hot, b.features, b.stateFormat);
      this.moved.push(vm);
      this.report.vms.push(move);
      this.progress();
      if (faultArmed('a-crash-after-first-vm')) crashNow();
    });
  }

  private async canary(opts: CanaryOptions, vms: readonly MovableVm[]): Promise<void> {
    const vm = vms.find((v) => v.name === opts.vm);
    if (!vm) throw new SwapError('ERR_SWAP_CANARY', `canary VM ${opts.vm} is not running here; pick a running VM`);
    if (!this.b!.features.has('canary')) throw new SwapError('ERR_SWAP_CANARY', `the build at ${this.opts.to} (version ${this.b!.version}) cannot run a canary; swap without --canary`);
    const result = await runCanary(this.b!.channel, vm, opts, this.journal, this.b!.stateFormat);
    this.report.canary = result;
    this.progress();
    if (!result.ok) throw new SwapError('ERR_SWAP_CANARY', `the canary clone of ${opts.vm} failed in the new build: ${result.detail}; nothing was moved`);
  }

  private async retire(): Promise<void> {
    if (faultArmed('a-crash-before-retire')) crashNow();
    const fds = this.host.retirementFds();
    this.report.state = 'retiring';
    this.report.totalMs = this.report.elapsedMs();
    await retireA(this.b!.channel, this.journal, {
      ...fds, cpus: this.shrink?.before ?? this.host.partition.cpus, budgetMib: this.host.budgetMib, report: this.report.toJSON(),
    });
    // B waits for A to exit before it grows to A's CPUs: the moved VMs' teardown (~5 ms of kernel
    // time each, on pool threads at the lowest priority) runs all at once, not one after another.
    await Promise.all(this.moved.map(async (vm) => {
      await vm.detachAfterMove();
      this.host.forgetMoved(vm.name);
    }));
    this.b!.channel.close();
  }

  /** A rollback step: recorded if the journal can still be written; the rollback goes on either way. */
  private async record(step: string, fields: Record<string, unknown> = {}): Promise<void> {
    try {
      await this.journal.write(step, fields);
    } catch (err) {
      this.host.log('swap.journal-failed', { step, error: (err as Error).message });
    }
  }

  private async rollback(e: unknown): Promise<void> {
    this.report.error = { code: (e as { code?: string }).code ?? 'ERR_SWAP', message: e instanceof Error ? e.message : String(e) };
    await this.record('swap.rollback', { error: this.report.error.message });
    const b = this.b;
    if (b) {
      // Ordering requirements: a B that may be running a VM A also has must be gone before A resumes
      // that VM; a B that is alive gives its moved VMs back first, then stops.
      const bTrusted = !hasExited(b.child) && !(e instanceof MoveFailure && e.bMayRunIt);
      if (!bTrusted) await stopB(b.child, b.channel);
      for (const vm of this.moved) {
        try {
          if (!bTrusted) throw new SwapError('ERR_SWAP_MOVE', 'B is gone, and the VM with it');
          await returnVm(b.channel, vm, this.journal);
        } catch (err) {
          this.report.lost.push(vm.name);
          await this.record('vm.lost', { vm: vm.name, reason: (err as Error).message });
          await vm.detachAfterMove();
          this.host.forgetMoved(vm.name);
        }
      }
      if (bTrusted) await stopB(b.child, b.channel);
      this.host.cleanUpAfterB();
      await this.record('b.stopped');
    } else {
      this.host.cleanUpAfterB(); // B failed to launch and has exited: remove what it may have left
    }
    // Any VM paused for a move that never completed resumes here.
    for (const vm of this.host.runningVms()) {
      if (vm.running?.state === 'paused') {
        vm.running.resume();
        await this.record('vm.resumed-in-a', { vm: vm.name });
      }
    }
    await this.rehearsal; // its probe VM is gone before the swap says it is over
    this.shrink?.growBack();
    await this.record('swap.rolled-back', { lost: this.report.lost });
    this.report.state = 'rolled-back';
  }
}

/** A child killed by a signal has a signalCode and no exitCode. */
const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

async function stopB(child: ChildProcess, channel: HandoverChannel): Promise<void> {
  try {
    if (!channel.failed) channel.send(MessageType.Abort, { reason: 'the swap is rolled back' });
  } catch {
    // the channel is already gone
  }
  channel.close();
  if (hasExited(child)) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await gone;
  clearTimeout(timer);
}
