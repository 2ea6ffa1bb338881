// A running virtual machine: the VM fd, guest RAM in a memfd, the in-kernel irqchip and PIT,
// the legacy devices and one thread per vCPU. Lifecycle: create → start → (pause ⇄ resume) → stop.
// It is not the instance's VM registry (instance/) and it never talks to the API.

import type { ByteSink, PioDevice } from '../devices/device.js';
import type { Bus } from '../devices/bus.js';
import { type LoadedKernel, loadKernel } from '../loader/kernel-loader.js';
import { MiB } from '../memory/gpa.js';
import * as abi from '../sys/kvm-abi.js';
import { Kvm, type VcpuFd, type VmFd } from '../sys/kvm.js';
import { RingPoller } from './console-poller.js';
import { PioQueue, RING_PAGE_BYTES } from '../sys/pio-queue.js';
import type { VcpuFault } from './exits.js';
import { GuestRam } from './guest-ram.js';
import { type LegacyDeviceEvents, type LegacyDevices, type LegacyDeviceStates, createLegacyDevices, restoreLegacyDevices, saveLegacyDevices } from './legacy-devices.js';
import { type KvmVmSnapshot, applyKvmState, captureKvmState } from './snapshot.js';
import type { Memfd, MemfdMapping } from '../sys/memfd.js';
import { Vcpu, type VcpuIo } from './vcpu.js';
import { applyBootState, configureVcpu } from './vcpu-setup.js';
import { COM1_PORT } from '../arch/x86_64/layout.js';
import { UART_LSR } from '../devices/legacy/serial-16550.js';
import { MachineConfigError, validateMachineConfig, type MachineConfig } from './machine-config.js';
import { type VirtioAttachment, type VirtioSlotState, VirtioHost, closeAttachments } from './virtio-host.js';

export type MachineExit =
  | { reason: 'guest-exit'; status: number }
  | { reason: 'fault'; fault: VcpuFault }
  | { reason: 'reset' }
  | { reason: 'stopped' };

export type MachineState = 'created' | 'running' | 'paused' | 'stopped';

/** Everything needed to resume a machine elsewhere, except guest RAM (a memfd) and host fds. */
export interface MachineSnapshot {
  kvm: KvmVmSnapshot;
  devices: LegacyDeviceStates;
  /** virtio devices by id; absent for a VM without any (and in states from before virtio). */
  virtio?: Record<string, VirtioSlotState>;
}

/** Where KVM keeps its real-mode TSS and identity map pages on Intel hosts: just below the BIOS. */
const KVM_TSS_ADDRESS = 0xfffb_d000;
const KVM_IDENTITY_MAP_ADDRESS = 0xfffb_c000;
const PAGE_SIZE = 4096;
/**
 * Console bytes a VM's vCPU threads queue beyond KVM's ring (170 bytes) without this thread: ~2 s
 * of a 1 ms heartbeat. Memory is touched only as it fills.
 */
const CONSOLE_QUEUE_BYTES = 64 * 1024;
/** Times pause() lets vCPUs run on to get past an in-flight software exception before it gives up. */
const SETTLE_TRIES = 4;

/**
 * Whether this stopped vCPU may hold an `int3` (#BP) or `into` (#OF) that KVM has taken but not yet
 * delivered. KVM_GET_VCPU_EVENTS never reports software exceptions (api.rst: they are expected to
 * recur, the guest's RIP still pointing at the instruction); under PVM the RIP is already past it,
 * so a state saved at that moment resumes after the instruction and the exception is lost (a guest
 * kit system call vanished; the guest then waited forever). The last exception vector in user mode
 * is the sign; it also follows a completed `int3`, which costs one more millisecond of running.
 * struct kvm_vcpu_events: byte 1 is exception.nr; struct kvm_sregs: cs.selector is a u16 at 12.
 */
function softExceptionMayBeInFlight(fd: VcpuFd): boolean {
  const events = fd.getVcpuEvents();
  const vector = events[1];
  if (vector !== 3 && vector !== 4) return false;
  const sregs = fd.getSregsBytes();
  return (new DataView(sregs.buffer, sregs.byteOffset, sregs.byteLength).getUint16(12, true) & 3) === 3;
}

export interface MachineCounters {
  unknownPortReads: number;
  unknownPortWrites: number;
  mmioUnhandled: number;
}

export class Machine {
  private runState: MachineState = 'created';
  private exitResolve!: (e: MachineExit) => void;
  readonly exited: Promise<MachineExit>;
  private exitInfo: MachineExit | undefined;
  /** The UART's output: KVM's coalesced ring, continued natively (undefined: every write exits). */
  private consoleQueue: PioQueue | undefined;
  private readonly drainFn = (): void => this.drainRing();
  readonly counters: MachineCounters = { unknownPortReads: 0, unknownPortWrites: 0, mmioUnhandled: 0 };
  readonly vcpus: Vcpu[] = [];
  private readonly vcpuFds: VcpuFd[] = [];
  kernel: LoadedKernel | undefined;
  private consoleSink: ByteSink | undefined;
  private devices!: LegacyDevices;
  private ram: GuestRam | undefined;
  private virtio: VirtioHost | undefined;

  private constructor(private readonly kvm: Kvm, private readonly vm: VmFd, readonly config: MachineConfig, private readonly ringPoller: RingPoller) {
    this.exited = new Promise((resolve) => { this.exitResolve = resolve; });
  }

  /**
   * Builds a VM ready to boot: RAM, irqchip, PIT, devices, vCPUs, and the kernel loaded.
   * @param ringPoller shared by all machines of an instance; a machine created without one gets its own.
   */
  static create(input: MachineConfig, consoleSink: ByteSink, ringPoller: RingPoller = new RingPoller(), devices: readonly VirtioAttachment[] = []): Machine {
    const config = validateMachineConfig(input);
    return Machine.construct(config, ringPoller, devices, (m) => {
      m.buildShell(consoleSink, devices, undefined);
      m.loadBootKernel();
    });
  }

  /**
   * As create(), but KVM registers guest RAM on a pool thread (it sleeps ~6 ms per VM on this host),
   * so the calling thread goes on serving other VMs meanwhile. For instances that run many VMs.
   */
  static async createAsync(input: MachineConfig, consoleSink: ByteSink, ringPoller: RingPoller = new RingPoller(), devices: readonly VirtioAttachment[] = []): Promise<Machine> {
    const config = validateMachineConfig(input);
    return Machine.slotsReady(Machine.construct(config, ringPoller, devices, (mm) => {
      mm.buildShell(consoleSink, devices, undefined, undefined, 'async');
      mm.loadBootKernel();
    }));
  }

  /** Resolves with `m` once KVM knows its memslots; releases it if they could not be registered. */
  private static async slotsReady(m: Machine): Promise<Machine> {
    try {
      await m.memory.slotsRegistered;
    } catch (e) {
      await m.release();
      throw e;
    }
    return m;
  }

  /**
   * Builds the shell of a VM that another instance is handing over: the VM fd, memslots on the
   * received guest-RAM memfd (pre-faulted now, while the VM still runs elsewhere), vCPUs and devices.
   * Nothing runs until restoreState() and start(). The kernel image is not needed.
   */
  static createShell(input: MachineConfig, consoleSink: ByteSink, memfd: Memfd, ringPoller: RingPoller = new RingPoller(), opts: { premapped?: readonly MemfdMapping[]; devices?: readonly VirtioAttachment[] } = {}): Machine {
    const devices = opts.devices ?? [];
    const config = Machine.shellConfig(input, memfd, devices);
    return Machine.construct(config, ringPoller, devices, (m) => m.buildShell(consoleSink, devices, memfd, opts.premapped));
  }

  /**
   * As createShell(), but KVM registers the memslots on a pool thread (it sleeps ~6 ms per VM on
   * this host), so several shells are built at once.
   */
  static async createShellAsync(input: MachineConfig, consoleSink: ByteSink, memfd: Memfd, ringPoller: RingPoller = new RingPoller(), opts: { devices?: readonly VirtioAttachment[] } = {}): Promise<Machine> {
    const devices = opts.devices ?? [];
    const config = Machine.shellConfig(input, memfd, devices);
    return Machine.slotsReady(Machine.construct(config, ringPoller, devices, (mm) => mm.buildShell(consoleSink, devices, memfd, undefined, 'async')));
  }

  private static shellConfig(input: MachineConfig, memfd: Memfd, devices: readonly VirtioAttachment[]): MachineConfig {
    const config = validateMachineConfig(input, { needKernel: false });
    if (memfd.size !== config.memSizeMib * MiB) {
      closeAttachments(devices);
      throw new MachineConfigError(`the guest RAM memfd is ${memfd.size} bytes but the VM has ${config.memSizeMib} MiB`);
    }
    return config;
  }

  /** The machine owns `devices` from here on: they are closed with it, or at once if it cannot be built. */
  private static construct(config: MachineConfig, ringPoller: RingPoller, devices: readonly VirtioAttachment[], build: (m: Machine) => void): Machine {
    const kvm = Kvm.open(config.kvmDevice);
    let m: Machine | undefined;
    try {
      const vm = kvm.createVm();
      m = new Machine(kvm, vm, config, ringPoller);
      build(m);
      return m;
    } catch (e) {
      if (m?.virtio === undefined) closeAttachments(devices);
      if (m) void m.release();
      else kvm.close();
      throw e;
    }
  }

  get state(): MachineState { return this.runState; }
  get memory(): GuestRam { if (!this.ram) throw new Error('machine has no RAM'); return this.ram; }
  get serial(): LegacyDevices['serial'] { return this.devices.serial; }
  get portBus(): Bus<PioDevice> { return this.devices.bus; }
  /** The VM's virtio devices (host side); undefined only while the machine is being built. */
  get virtioDevices(): VirtioHost | undefined { return this.virtio; }

  /** @param premapped RAM mappings made before (a canary clone's private copy), registered as they are. */
  private buildShell(consoleSink: ByteSink, devices: readonly VirtioAttachment[], memfd: Memfd | undefined, premapped?: readonly MemfdMapping[], slots: 'sync' | 'async' = 'sync'): void {
    const c = this.config;
    this.vm.setTssAddr(KVM_TSS_ADDRESS);
    this.vm.setIdentityMapAddr(KVM_IDENTITY_MAP_ADDRESS);
    this.vm.createIrqchip();
    this.vm.createPit2(abi.KVM_PIT_SPEAKER_DUMMY);
    this.ram = memfd
      ? GuestRam.attach(this.vm, memfd, 'now', premapped, slots)
      : GuestRam.create(this.vm, c.memSizeMib * MiB, `swapvisor-${c.name}`, c.prefault ?? 'background', slots);
    this.consoleSink = consoleSink;
    this.devices = createLegacyDevices(this.vm, this.deviceEvents());
    this.virtio = new VirtioHost(this.vm, this.memory.memory, devices);
    this.setupCoalescing();
    const supportedCpuid = this.kvm.getSupportedCpuid();
    const tscDeadline = this.kvm.checkExtension(abi.KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    for (let id = 0; id < c.vcpus; id++) {
      const fd = this.vm.createVcpu(id);
      this.vcpuFds.push(fd);
      configureVcpu(fd, { supportedCpuid, vcpuCount: c.vcpus, tscDeadline });
    }
    for (const fd of this.vcpuFds) this.vcpus.push(new Vcpu(fd, this.vcpuIo()));
    // Guests poll the UART's LSR after each line: the vCPU threads answer that from here, so a guest
    // does not wait for this thread (busy with other VMs, or with a swap) to print.
    for (const v of this.vcpus) v.enableFastPioIn(COM1_PORT + UART_LSR, this.fastLsr);
    this.syncFastLsr();
    // Likewise for the line itself: when the coalesced ring is full, the vCPU threads queue on.
    if (this.ringPageOffset > 0) {
      const run = this.vcpuFds[0]!.run;
      this.consoleQueue = new PioQueue(run.subarray(this.ringPageOffset * PAGE_SIZE, this.ringPageOffset * PAGE_SIZE + RING_PAGE_BYTES), COM1_PORT, CONSOLE_QUEUE_BYTES);
      for (const v of this.vcpus) v.enablePioQueue(this.consoleQueue);
    }
  }

  /** What LSR reads return in the vCPU threads; -1 sends them to the model (a read would change it). */
  private readonly fastLsr = new Int32Array(1);
  private syncFastLsr(): void {
    Atomics.store(this.fastLsr, 0, this.devices.serial.peekLsr() ?? -1);
  }

  /** Host input for the guest's UART. */
  enqueueSerialInput(bytes: Uint8Array): void {
    this.devices.serial.enqueueInput(bytes);
    this.syncFastLsr();
  }

  private deviceEvents(): LegacyDeviceEvents {
    return {
      console: this.consoleSink!,
      onReset: () => this.finish({ reason: 'reset' }),
      onExit: (status) => this.finish({ reason: 'guest-exit', status }),
    };
  }

  private loadBootKernel(): void {
    const c = this.config;
    const boot = this.vcpuFds[0]!;
    const tscKhz = boot.getTscKhz();
    const virtioArgs = this.virtio?.cmdline ?? '';
    const kernel = loadKernel(this.memory.memory, c.kernel, {
      cmdline: virtioArgs ? `${c.cmdline} ${virtioArgs}`.trim() : c.cmdline,
      initrd: c.initrd,
      vcpus: c.vcpus,
      entry: c.entry,
      irq0ToPin2: false,
      longModeCmdlineSuffix: `tsc_khz=${tscKhz}`,
    });
    this.kernel = kernel;
    applyBootState(boot, kernel.bootCpu);
  }

  /** The complete state of a paused machine: KVM's side and every device. Guest RAM is not in it. */
  saveState(): MachineSnapshot {
    if (this.runState !== 'paused') throw new Error(`cannot save a machine that is ${this.runState}; pause it first`);
    return {
      kvm: captureKvmState(this.kvm, this.vm, this.vcpuFds),
      devices: saveLegacyDevices(this.devices),
      ...(this.virtio && this.virtio.count > 0 ? { virtio: this.virtio.save() } : {}),
    };
  }

  /**
   * Loads a saved state into a shell that has not run yet (then start()), or back into a paused
   * machine whose guest ran elsewhere meanwhile, on the same RAM (then resume()).
   */
  restoreState(s: MachineSnapshot): void {
    if (this.runState !== 'created' && this.runState !== 'paused') throw new Error(`cannot restore into a machine that is ${this.runState}`);
    this.devices = restoreLegacyDevices(this.vm, this.deviceEvents(), s.devices);
    this.syncFastLsr();
    this.virtio?.restore(s.virtio ?? {});
    applyKvmState(this.vm, this.vcpuFds, s.kvm);
  }

  /** Writes to the UART's data register queue in KVM's ring instead of exiting one byte at a time. */
  private setupCoalescing(): void {
    if (!this.config.coalesceConsole || this.kvm.checkExtension(abi.KVM_CAP_COALESCED_PIO) <= 0) return;
    // The answer is the ring's page offset inside each vCPU's mmap area (not always 1: PVM uses 2).
    const pageOffset = this.kvm.checkExtension(abi.KVM_CAP_COALESCED_MMIO);
    if (pageOffset <= 0 || (pageOffset + 1) * PAGE_SIZE > this.vm.vcpuMmapSize) return;
    this.vm.registerCoalescedMmio({ addr: COM1_PORT, size: 1, pio: true });
    this.ringPageOffset = pageOffset;
  }
  private ringPageOffset = 0;

  private vcpuIo(): VcpuIo {
    // The bus is looked up on every access: restoreState() replaces the devices.
    return {
      pioRead: (port: number, data: Uint8Array) => {
        const hit = this.devices.bus.find(port);
        if (hit) hit.device.pioRead(hit.offset, data);
        else { this.counters.unknownPortReads++; data.fill(0xff); }
        if (hit?.device === this.devices.serial) this.syncFastLsr();
      },
      pioWrite: (port: number, data: Uint8Array) => {
        const hit = this.devices.bus.find(port);
        if (hit) hit.device.pioWrite(hit.offset, data);
        else this.counters.unknownPortWrites++;
        if (hit?.device === this.devices.serial) this.syncFastLsr();
      },
      mmioRead: (address: number, data: Uint8Array) => {
        const hit = this.virtio?.bus.find(address);
        if (hit) hit.device.mmioRead(hit.offset, data);
        else { this.counters.mmioUnhandled++; data.fill(0xff); }
      },
      mmioWrite: (address: number, data: Uint8Array) => {
        const hit = this.virtio?.bus.find(address);
        if (hit) hit.device.mmioWrite(hit.offset, data);
        else this.counters.mmioUnhandled++;
      },
      beforeExit: () => this.drainRing(),
      fault: (fault: VcpuFault) => this.finish({ reason: 'fault', fault }),
    };
  }

  private drainRing(): void {
    const bytes = this.consoleQueue?.take();
    if (!bytes || bytes.length === 0) return;
    const hit = this.devices.bus.find(COM1_PORT);
    if (hit?.device === this.devices.serial) this.devices.serial.pioWriteRun(hit.offset, bytes);
    else for (let i = 0; hit && i < bytes.length; i++) hit.device.pioWrite(hit.offset, bytes.subarray(i, i + 1));
    // In loopback mode queued THR writes fill the receiver.
    this.syncFastLsr();
  }

  /** @param opts.paused each vCPU thread leaves KVM_RUN before the guest runs; pause() then completes the pause. */
  start(opts: { paused?: boolean } = {}): void {
    if (this.runState !== 'created') throw new Error(`cannot start a machine that is ${this.runState}`);
    if (this.consoleQueue) this.ringPoller.add(this.drainFn);
    this.runState = 'running';
    if (this.config.cpus) this.pin(this.config.cpus);
    for (const v of this.vcpus) v.start(opts);
    // After the vCPUs: serving what queued up while paused must not hold up the guest's resume.
    this.virtio?.resume();
    if (this.config.prefault === 'background') void this.memory.prefaultInBackground();
  }

  /** Re-pins every vCPU thread; used at start and when the instance's partition changes. */
  pin(cpus: readonly number[]): void {
    for (const v of this.vcpus) v.pin(cpus);
  }

  async pause(): Promise<void> {
    if (this.runState !== 'running') throw new Error(`cannot pause a machine that is ${this.runState}`);
    await Promise.all(this.vcpus.map((v) => v.pause()));
    // A vCPU stopped with a software exception in flight would lose it in a saved state: let it run on
    // into the handler, then stop it again (see softExceptionMayBeInFlight).
    for (let i = 0; i < SETTLE_TRIES && this.runState === 'running' && this.vcpuFds.some(softExceptionMayBeInFlight); i++) {
      for (const v of this.vcpus) v.start();
      await new Promise((r) => setTimeout(r, 1));
      await Promise.all(this.vcpus.map((v) => v.pause()));
    }
    this.drainRing();
    if (this.runState === 'running') {
      this.virtio?.quiesce();
      this.runState = 'paused';
    }
  }

  resume(): void {
    if (this.runState !== 'paused') throw new Error(`cannot resume a machine that is ${this.runState}`);
    this.runState = 'running';
    for (const v of this.vcpus) v.start();
    // After the vCPUs: serving what queued up while paused must not hold up the guest's resume.
    this.virtio?.resume();
  }

  /** Stops the VM for good; resolves `exited` with 'stopped' unless the guest ended first. */
  async stop(): Promise<MachineExit> {
    this.finish({ reason: 'stopped' });
    return this.exited;
  }

  private finish(exit: MachineExit): void {
    if (this.exitInfo) return;
    this.exitInfo = exit;
    // Called from inside an exit handler: tear down on the next turn, after the handler returns.
    setImmediate(() => {
      this.drainRing();
      void this.release().then(() => this.exitResolve(exit));
    });
  }

  private async release(): Promise<void> {
    this.runState = 'stopped';
    this.ringPoller.remove(this.drainFn);
    for (const v of this.vcpus) v.destroy();
    // Ordering requirements: the last output out, then the queue closed, then the vCPU fds (the ring
    // page is in vCPU 0's mapping); the threads are gone, so nothing queues meanwhile.
    this.drainRing();
    this.consoleQueue?.close();
    this.consoleQueue = undefined;
    this.virtio?.release();
    for (const fd of this.vcpuFds) fd.close();
    // Destroying the VM and unmapping its RAM take 10-30 ms of kernel time each: off this thread,
    // which serves the other VMs meanwhile.
    const vmClosed = this.vm.closeAsync();
    this.kvm.close();
    await Promise.all([vmClosed, this.ram?.close()]);
  }
}
