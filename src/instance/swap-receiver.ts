// Instance B's side of a hot swap: started by A with one end of the handover socket, it claims its
// CPUs, checks itself by booting a probe guest, builds a shell per VM while the VM still runs in A,
// restores and resumes each VM A sends, and at retirement takes the API socket and the state-dir
// lock and becomes the instance. If A dies first, B keeps the VMs it runs and takes over alone.
// See docs/hot-swap.md for the receiver's state machine.

import { readFileSync } from 'node:fs';
import { processRunning } from '../sys/process-state.js';
import { decodeVmState, encodeVmState } from '../state/vm-state.js';
import { Memfd } from '../sys/memfd.js';
import { Socket } from 'node:net';
import { serveConsole } from './api/console-attach.js';
import { OwnedFd } from '../sys/fd.js';
import { SeqpacketSocket } from '../sys/seqpacket.js';
import { HandoverChannel, type Received } from '../swap/channel.js';
import { faultArmed, crashNow } from '../swap/faults.js';
import { HotLoop } from '../swap/hot-loop.js';
import { SwapJournal } from '../swap/journal.js';
import { FEATURES, MessageType, PROTOCOL_VERSION, PROTOCOL_WINDOW, int, range, str } from '../swap/protocol.js';
import { COMPAT_FORMAT_VERSION, CURRENT_FORMAT_VERSION, MIN_READABLE_FORMAT_VERSION, newestCommonFormat } from '../state/envelope.js';
import { Machine } from '../vmm/machine.js';
import { MiB } from '../memory/gpa.js';
import { validateVmConfig } from './api/validate.js';
import { Daemon, newRegistry } from './daemon.js';
import { guestKitPath } from './guest-kit.js';
import { rehearsePauseWindow } from '../swap/rehearse.js';
import { PAUSE_WINDOW_NICE, SWAP_NICE } from '../swap/move-vm.js';
import { setOwnNice } from '../sys/affinity.js';
import { createLogger, logUncaught, type Logger } from './logger.js';
import { packageVersion } from './package-info.js';
import { Partition } from './partition/partition.js';
import { loadPlatform, platformFromBytes } from './platform-view.js';
import { StateDir } from './state-dir.js';
import type { SwapReportJson } from './swap-control.js';
import type { VmConfig } from './vm-config.js';
import { VmConsole } from './vm-console.js';
import { adoptVmDevices, handoverFdCount } from './vm-devices.js';
import { runCanaryClone } from './canary-clone.js';
import { InstanceVm } from './vm.js';
import type { VmRegistry } from './vm-registry.js';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export interface ReceiverOptions {
  stateDir: string;
  cpus: readonly number[];
  memBudgetMib: number;
  handoverFd: number;
}

interface Shell {
  config: VmConfig;
  createdAt: string;
  machine: Machine;
  console: VmConsole;
  vconsole: VmConsole | undefined;
}

const HELLO_TIMEOUT_MS = 10_000;
/** How long B stays hot (and ahead of its guests) after IMMINENT if no state comes. */
const IMMINENT_HOT_MS = 2000;
/** How long B's loop stays hot after resuming a VM, for the guest's first exits (see hot-loop.ts). */
const POST_RESUME_HOT_MS = 50;

/** Boots the guest kit's heartbeat for one tick on this host's /dev/kvm: B can run VMs. */
async function healthCheck(): Promise<{ healthy: boolean; reason?: string; ms: number }> {
  const t0 = performance.now();
  if (faultArmed('b-unhealthy')) return { healthy: false, reason: 'fault injected: b-unhealthy', ms: 0 };
  // Compiling the API's validators takes ~150 ms the first time: do it now, not with a VM paused.
  validateVmConfig({ name: 'swap-probe', guest: 'heartbeat', memMib: 4 });
  try {
    // The probe also rehearses the pause window, so its code is compiled before the first real VM
    // arrives; and it proves that save and restore work on this host.
    const exit = await rehearsePauseWindow(new Uint8Array(readFileSync(guestKitPath('heartbeat'))));
    const ok = exit.reason === 'guest-exit' && exit.status === 0;
    return { healthy: ok, reason: ok ? undefined : `the probe guest ended with ${JSON.stringify(exit)}`, ms: performance.now() - t0 };
  } catch (e) {
    return { healthy: false, reason: e instanceof Error ? e.message : String(e), ms: performance.now() - t0 };
  }
}

export class SwapReceiver {
  private readonly shells = new Map<string, Shell>();
  private readonly hot = new HotLoop();
  private releaseHot: (() => void) | undefined;

  /** Puts the main thread back behind the guests; set while a VM's pause window is on this side. */
  private lowerPriority: (() => void) | undefined;

  private coolDown(): void {
    this.releaseHot?.();
    this.releaseHot = undefined;
  }

  /**
   * From A's IMMINENT to the restored VM, B's main thread goes ahead of the guests on its CPU (they
   * may compute flat out at its own nice): noticing the state, decoding and restoring it are the VM's
   * pause. A guest that computes in a VM already moved here would otherwise make the state wait in
   * the socket for a scheduler tick or more (a demo swap's pause: 12 ms, 11.5 of them "transfer").
   * Meanwhile B's loop spins, but yields the CPU every turn (hot-loop.ts), so those VMs still run.
   */
  private raiseForPauseWindow(): void {
    this.lowerForGuests();
    const lower = setOwnNice(PAUSE_WINDOW_NICE);
    const timer = setTimeout(lower, IMMINENT_HOT_MS); // A never sent the state: not for ever
    this.lowerPriority = () => { clearTimeout(timer); lower(); };
  }

  private lowerForGuests(): void {
    this.lowerPriority?.();
    this.lowerPriority = undefined;
  }
  private daemon: Daemon | undefined;
  private aPid = 0;
  /** The state format A reads back (a VM returned on rollback). */
  private aStateFormat = COMPAT_FORMAT_VERSION;
  /** A's CPUs and B's together: what B grows to once A is gone. */
  private allCpus: number[] = [];
  private journal: SwapJournal | undefined;

  private constructor(
    private readonly opts: ReceiverOptions,
    private readonly channel: HandoverChannel,
    private readonly stateDir: StateDir,
    private readonly log: Logger,
    private readonly partition: Partition,
    private readonly registry: VmRegistry,
  ) {
    this.allCpus = [...opts.cpus];
  }

  /** Runs B until it is the instance (resolves with its Daemon) or until A aborts (resolves undefined). */
  static async run(opts: ReceiverOptions): Promise<Daemon | undefined> {
    // Behind the guests on B's CPU until the swap is over (see SWAP_NICE); the daemon's nice after.
    const restoreNice = setOwnNice(SWAP_NICE);
    try {
      return await SwapReceiver.receive(opts);
    } finally {
      restoreNice();
    }
  }

  private static async receive(opts: ReceiverOptions): Promise<Daemon | undefined> {
    const channel = new HandoverChannel(new SeqpacketSocket(opts.handoverFd));
    const hello = await channel.waitFor('HELLO', (m) => m.type === MessageType.Hello, HELLO_TIMEOUT_MS);
    if (faultArmed('b-exit-before-ready')) process.exit(3);
    const [plo, phi] = range(hello, 'protocol');
    if (PROTOCOL_VERSION < plo || PROTOCOL_VERSION > phi) throw new Error(`A speaks handover protocol ${plo}-${phi}, this build ${PROTOCOL_VERSION}`);
    const stateDir = new StateDir(opts.stateDir);
    const log = createLogger(stateDir.logPath, false);
    logUncaught(log);
    const partition = Partition.create({ name: `swapvisord-${process.pid}`, cpus: opts.cpus, memBudgetMib: opts.memBudgetMib });
    const registry = newRegistry(stateDir, partition, log);
    const r = new SwapReceiver(opts, channel, stateDir, log, partition, registry);
    r.aPid = int(hello, 'pid');
    // What A reads, for a VM given back on rollback: its HELLO says (all versions send it).
    const aFormats = hello.body['stateFormat'];
    if (Array.isArray(aFormats) && aFormats.length === 2 && aFormats.every((v) => Number.isInteger(v))) {
      r.aStateFormat = newestCommonFormat([aFormats[0] as number, aFormats[1] as number]) ?? COMPAT_FORMAT_VERSION;
    }
    const aCpus = hello.body['cpus'];
    if (Array.isArray(aCpus) && aCpus.every((c) => Number.isInteger(c))) r.allCpus = [...new Set([...(aCpus as number[]), ...opts.cpus])].sort((a, b) => a - b);
    const platform = platformFromBytes(hello.blob, { cpus: opts.cpus, memBudgetMib: opts.memBudgetMib });
    log.info({ from: str(hello, 'fromVersion'), aPid: r.aPid, platform: platform.summary }, 'swap.receiver.hello');
    const health = await healthCheck();
    channel.send(MessageType.Ready, {
      version: packageVersion(), pid: process.pid, protocol: [...PROTOCOL_WINDOW],
      stateFormat: [MIN_READABLE_FORMAT_VERSION, CURRENT_FORMAT_VERSION], features: [...FEATURES], healthy: health.healthy,
      reason: health.reason ?? null, healthMs: Math.round(health.ms),
    });
    if (!health.healthy) {
      await partition.destroy();
      return undefined;
    }
    return r.serve(platform);
  }

  private serve(platform: ReturnType<typeof platformFromBytes>): Promise<Daemon | undefined> {
    return new Promise((resolve) => {
      const done = (d: Daemon | undefined): void => resolve(d);
      this.channel.listen((m) => {
        this.handle(m, platform, done).catch((e: unknown) => this.log.error({ err: e instanceof Error ? e.message : String(e), type: MessageType[m.type] }, 'swap.receiver.error'));
      });
      void this.channel.waitFor('nothing', () => false, 2 ** 31 - 1).catch(() => {
        // The channel ended: A retired (then the daemon exists), aborted, or died.
        if (this.daemon) return;
        void this.onChannelLost(platform).then(done);
      });
    });
  }

  private journalFor(id: string): SwapJournal {
    this.journal ??= new SwapJournal(this.stateDir.dir, id);
    return this.journal;
  }

  private async handle(m: Received, platform: ReturnType<typeof platformFromBytes>, done: (d: Daemon | undefined) => void): Promise<void> {
    switch (m.type) {
      case MessageType.PrepareVm: return this.prepare(m);
      case MessageType.VmState: return this.restore(m);
      case MessageType.ReturnVm: return this.giveBack(m);
      case MessageType.DiscardVm: return this.discard(str(m, 'name'));
      case MessageType.CanaryStart: return this.canary(m);
      case MessageType.Imminent:
        // A is pausing this VM now: stay awake until its state is in (see hot-loop.ts).
        this.coolDown();
        this.releaseHot = this.hot.holdFor(IMMINENT_HOT_MS);
        this.raiseForPauseWindow();
        this.channel.send(MessageType.ImminentAck, { name: str(m, 'name') });
        return;
      case MessageType.ConsoleClients: {
        const vm = this.registry.list().find((v) => v.name === str(m, 'name'));
        if (m.body['stream'] === 'vconsole') {
          this.adoptVconsoleClients(vm, m);
          return;
        }
        // Everything this instance's console has produced came after the resume (history from A is
        // not counted in bytesOut): the connections missed exactly that much.
        const input = m.body['input'];
        if (vm && typeof input === 'string' && input.length > 0) vm.console.sendInput(Buffer.from(input, 'base64'));
        const missed = vm ? vm.console.readTail(vm.console.bytesOut) : undefined;
        for (const fd of m.fds) {
          if (!vm) { new OwnedFd(fd).close(); continue; }
          serveConsole(vm.console, new Socket({ fd, readable: true, writable: true }), missed);
        }
        return;
      }
      case MessageType.ConsoleHistory: {
        const bytes = m.body['bytes'];
        const vm = this.registry.list().find((v) => v.name === str(m, 'name'));
        if (vm && typeof bytes === 'string') vm.console.addHistory(Buffer.from(bytes, 'base64'));
        return;
      }
      case MessageType.VmRunning: return this.returned(m);
      case MessageType.Retire: done(await this.takeOver(m, platform)); return;
      case MessageType.Abort: await this.discardAll(); done(undefined); return;
      default:
        this.log.warn({ type: MessageType[m.type] }, 'swap.receiver.unexpected');
        for (const fd of m.fds) new OwnedFd(fd).close();
    }
  }

  /** The virtio console's connections and held input, from A; the input goes to the guest first. */
  private adoptVconsoleClients(vm: InstanceVm | undefined, m: Received): void {
    const vcon = vm?.vconsole;
    const input = m.body['input'];
    if (vcon && typeof input === 'string' && input.length > 0) vcon.sendInput(Buffer.from(input, 'base64'));
    const missed = vcon ? vcon.readTail(vcon.bytesOut) : undefined;
    for (const fd of m.fds) {
      if (!vcon) new OwnedFd(fd).close();
      else serveConsole(vcon, new Socket({ fd, readable: true, writable: true }), missed);
    }
  }

  private fail(name: string, e: unknown): void {
    const code = (e as { code?: string }).code ?? 'ERR_SWAP_MOVE';
    this.channel.send(MessageType.VmFailed, { name, code, message: e instanceof Error ? e.message : String(e) });
  }

  /** Builds a VM's shell; A sends several PREPARE_VMs at once, and their memslot registrations overlap. */
  private prepare(m: Received): Promise<void> {
    const build = this.buildShell(m);
    this.building.add(build);
    return build.finally(() => this.building.delete(build));
  }

  private async buildShell(m: Received): Promise<void> {
    const name = str(m, 'name');
    let consoles: VmConsole[] = [];
    try {
      const config = validateVmConfig(m.body['config']);
      if (m.fds.length !== 1 + handoverFdCount(config)) throw new Error(`expected the memfd and ${handoverFdCount(config)} device fds, got ${m.fds.length} fds`);
      const memfd = Memfd.fromFd(m.fds[0]!, config.memMib * MiB);
      const console = new VmConsole(this.stateDir.consoleLogPath(name), 'handed-over');
      const vconsole = config.vconsole ? new VmConsole(this.stateDir.vconsoleLogPath(name), 'handed-over') : undefined;
      consoles = vconsole ? [console, vconsole] : [console];
      const tail = m.body['consoleTail'];
      if (typeof tail === 'string') console.addHistory(Buffer.from(tail, 'base64'));
      const machine = await Machine.createShellAsync({
        name, kernel: new Uint8Array(0), cmdline: '', memSizeMib: config.memMib, vcpus: config.vcpus,
        cpus: this.partition.cpus, prefault: 'now', // pre-faulted before it is ready: nothing left for start()
      }, console, memfd, this.registry.hostForAdoption.ringPoller, { devices: adoptVmDevices(config, m.fds.slice(1), vconsole) });
      if (this.aborting) {
        await machine.stop();
        throw new Error('the swap was aborted while the shell was built');
      }
      this.shells.set(name, { config, createdAt: str(m, 'createdAt'), machine, console, vconsole });
      this.channel.send(MessageType.ShellReady, { name });
      if (faultArmed('b-crash-after-shell')) crashNow();
    } catch (e) {
      for (const c of consoles) c.close();
      if (!this.aborting) this.fail(name, e);
    }
  }

  /** Shells being built, and whether the swap is being abandoned (then a finished shell is dropped). */
  private readonly building = new Set<Promise<void>>();
  private aborting = false;

  /** Waits for the shells being built: each ends dropped, since `aborting` is set first. */
  private async settleBuilding(): Promise<void> {
    this.aborting = true;
    await Promise.allSettled([...this.building]);
  }

  private restore(m: Received): void {
    if (!this.lowerPriority) this.raiseForPauseWindow(); // an A that sends no IMMINENT
    try {
      this.restoreAndRun(m);
    } finally {
      this.lowerForGuests();
    }
  }

  /** The VM's pause window, B's side: decode, restore, run, tell A. */
  private restoreAndRun(m: Received): void {
    const name = str(m, 'name');
    const t0 = process.hrtime.bigint();
    const shell = this.shells.get(name);
    if (faultArmed('b-crash-on-state')) crashNow();
    if (faultArmed('b-hang-on-state')) return;
    try {
      if (!shell) throw new Error(`no shell was prepared for ${name}`);
      if (faultArmed('b-reject-state')) throw new Error('fault injected: b-reject-state');
      const { id, state } = decodeVmState(m.blob);
      if (id.name !== name || id.memMib !== shell.config.memMib) throw new Error(`the state is for ${id.name} with ${id.memMib} MiB, not ${name}`);
      const t1 = process.hrtime.bigint();
      shell.machine.restoreState(state);
      // The end of the host pause: start() releases the vCPU threads into KVM_RUN (~25 µs later, by a
      // trace). Not after start() returns: a released vCPU preempts this thread, and the guest then
      // runs (catching up on its timer) before start() returns.
      const resumedAtNs = process.hrtime.bigint();
      this.lowerForGuests(); // the guest runs next, on this CPU: no longer ahead of it
      shell.machine.start();
      const startedAtNs = process.hrtime.bigint();
      const timing = { decodeUs: Number(t1 - t0) / 1000, restoreUs: Number(resumedAtNs - t1) / 1000 };
      this.channel.send(MessageType.VmRunning, { name, resumedAtNs: resumedAtNs.toString(), receivedAtNs: t0.toString(), ...timing });
      // The resumed guest's first exits come next: stay hot a little longer for them.
      this.coolDown();
      this.releaseHot = this.hot.holdFor(POST_RESUME_HOT_MS);
      this.log.info({ vm: name, ...timing, startUs: Number(startedAtNs - resumedAtNs) / 1000, receivedAtNs: t0.toString() }, 'swap.receiver.restore-timing');
      this.shells.delete(name);
      this.registry.adoptRunning(InstanceVm.adopt(shell.config, shell.createdAt, shell.console, this.registry.hostForAdoption, shell.machine, shell.vconsole));
      this.log.info({ vm: name }, 'swap.receiver.vm-running');
    } catch (e) {
      this.fail(name, e);
    }
  }

  /**
   * Canary: run a clone of a VM of A's, isolated (RAM mapped copy-on-write, console to its own log),
   * for `secs`; then judge it, discard it and report. Nothing of the clone survives.
   */
  private async canary(m: Received): Promise<void> {
    await runCanaryClone(m, {
      channel: this.channel, cpus: this.partition.cpus, ringPoller: this.registry.hostForAdoption.ringPoller,
      logPath: (name) => this.stateDir.consoleLogPath(`${name}.canary`),
    });
  }

  /** Rollback: send a VM that runs here back to A, which restores it into its parked copy. */
  private async giveBack(m: Received): Promise<void> {
    const name = str(m, 'name');
    try {
      const vm = this.registry.get(name);
      const machine = vm.running;
      if (!machine) throw new Error(`${name} is not running here`);
      await machine.pause();
      vm.console.flush();
      this.channel.send(MessageType.VmState, { name }, { blob: encodeVmState({ name, memMib: vm.config.memMib }, machine.saveState(), this.aStateFormat) });
      this.pendingReturns.set(name, vm);
    } catch (e) {
      this.fail(name, e);
    }
  }

  private readonly pendingReturns = new Map<string, InstanceVm>();

  private async returned(m: Received): Promise<void> {
    const name = str(m, 'name');
    const vm = this.pendingReturns.get(name);
    if (!vm) return;
    this.pendingReturns.delete(name);
    await vm.detachAfterMove();
    this.registry.forgetMoved(name);
  }

  private async discard(name: string): Promise<void> {
    const s = this.shells.get(name);
    this.shells.delete(name);
    if (s) {
      await s.machine.stop();
      s.console.close();
      s.vconsole?.close();
    }
  }

  private async discardAll(): Promise<void> {
    this.coolDown();
    await this.settleBuilding();
    for (const s of this.shells.values()) await s.machine.stop();
    this.shells.clear();
    await this.partition.destroy().catch(() => undefined);
    this.channel.close();
    this.log.info({}, 'swap.receiver.aborted');
    this.log.flush();
  }

  /** Retirement: take the API socket and the lock, load the VMs that were not running, grow. */
  private async takeOver(m: Received, platform: ReturnType<typeof platformFromBytes>): Promise<Daemon> {
    const [apiFd, lockFd] = m.fds;
    if (apiFd === undefined || lockFd === undefined) throw new Error('RETIRE carried no API socket or lock');
    // Each step in its own turn of the event loop: every VM runs here by now, and together the steps
    // held this thread ~5 ms (Node loads its server internals on the first listen), stalling their I/O.
    this.stateDir.adoptLock(lockFd);
    await nextTurn();
    const report = this.registry.reloadMissing();
    await nextTurn();
    this.daemon = await Daemon.adopt({ stateDir: this.stateDir, log: this.log, partition: this.partition, registry: this.registry, platform }, apiFd);
    const received = m.body['report'] as SwapReportJson | undefined;
    if (received) this.daemon.swap.completeReceived({ ...received, state: 'retiring', to: { ...received.to, pid: process.pid } });
    this.channel.send(MessageType.Retired, { pid: process.pid });
    await nextTurn();
    this.coolDown();
    this.log.info({ reloaded: report }, 'swap.receiver.retired');
    const cpus = Array.isArray(m.body['cpus']) ? (m.body['cpus'] as number[]) : this.allCpus;
    await this.waitForA();
    await this.daemon.ensureSocketPath();
    this.partition.grow(cpus);
    this.daemon.setPlatform(loadPlatform(this.stateDir.dir, { cpus, memBudgetMib: this.opts.memBudgetMib }));
    if (received) this.daemon.swap.completeReceived({ ...received, state: 'done', to: { ...received.to, pid: process.pid } });
    await this.journalFor(received?.id ?? 'unknown').write('b.grown', { cpus });
    this.log.info({ cpus }, 'swap.receiver.grown');
    return this.daemon;
  }

  /**
   * Until A has exited. A zombie counts as exited: its memory and files are gone by then, and it stays
   * a zombie until its parent reaps it, which init here did up to ~2 s later.
   */
  private async waitForA(timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (processRunning(this.aPid) && Date.now() <= end) await new Promise((r) => setTimeout(r, 5));
  }

  /** A went away before retiring. Without moved VMs B just leaves; with some, B becomes the instance. */
  private async onChannelLost(platform: ReturnType<typeof platformFromBytes>): Promise<Daemon | undefined> {
    this.coolDown();
    await this.settleBuilding();
    // Shells that never ran: their teardown (on pool threads at nice 19, starved when the CPUs are
    // busy) must not hold up taking over the VMs that run here.
    const discarded = Promise.all([...this.shells.values()].map((s) => s.machine.stop().catch(() => undefined)));
    this.shells.clear();
    const running = this.registry.list().filter((v) => v.running);
    if (running.length === 0) {
      await discarded;
      await this.partition.destroy().catch(() => undefined);
      this.log.info({}, 'swap.receiver.channel-closed');
      this.log.flush();
      return undefined;
    }
    await this.waitForA();
    this.stateDir.acquire();
    const report = this.registry.reloadMissing();
    await this.journal?.write('b.took-over', { owned: running.map((v) => v.name), lost: report.lost });
    this.log.warn({ owned: running.map((v) => v.name), lost: report.lost }, 'swap.receiver.took-over');
    const d = await Daemon.takeOver({ stateDir: this.stateDir, log: this.log, partition: this.partition, registry: this.registry, platform });
    this.partition.grow(this.allCpus);
    return d;
  }
}
