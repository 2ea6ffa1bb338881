// One VM owned by the instance: its stored definition, its console, and while it runs its Machine.
// States: created → running ⇄ paused → stopped | crashed; 'lost' marks a VM that was running when a
// previous daemon died. A VM can be started again from stopped, crashed or lost.

import type { VcpuFault } from '../vmm/exits.js';
import { Machine, type MachineExit } from '../vmm/machine.js';
import type { RingPoller } from '../vmm/console-poller.js';
import { InstanceError } from './errors.js';
import type { PersistedRunState } from './state-dir.js';
import { type VmConfig, machineConfigFor } from './vm-config.js';
import type { VmExitInfo, VmInfo, VmState } from './api/validate.js';
import { VmConsole } from './vm-console.js';
import { VCONSOLE_ID, openVmDevices } from './vm-devices.js';

export type { VmExitInfo, VmInfo, VmState } from './api/validate.js';

export interface VmHost {
  /** Drains every VM's coalesced console ring from one timer. */
  ringPoller: RingPoller;
  /** The partition's CPUs, for pinning vCPU threads. */
  cpus(): readonly number[];
  reserveMemory(name: string, mib: number): void;
  releaseMemory(name: string): void;
  /**
   * Called after every state change, so the state dir always holds the last known state. Resolves
   * once it is written; one VM's writes land in the order they were asked for.
   */
  persist(vm: InstanceVm): Promise<void>;
  log(event: string, fields: Record<string, unknown>): void;
}

const STARTABLE: readonly VmState[] = ['created', 'stopped', 'crashed', 'lost'];

export class InstanceVm {
  private machine: Machine | undefined;
  private runState: VmState;
  private startedAtMs: number | undefined;
  private exitInfo: VmExitInfo | null = null;
  /** Set when a hot swap moved this VM to the next instance: its machine here is only torn down. */
  private movedAway = false;
  /** Totals over earlier runs, so counters stay monotonic for /metrics. */
  readonly totals = { exits: 0, pauses: 0, pauseNs: 0n };

  /** @param vconsole the virtio console's stream, for a VM that has one. */
  constructor(readonly config: VmConfig, readonly createdAt: string, initial: VmState, readonly console: VmConsole, private readonly host: VmHost, readonly vconsole?: VmConsole) {
    this.runState = initial;
    if (initial === 'lost') this.exitInfo = { reason: 'lost', status: null, detail: 'the daemon that ran this VM died', rip: null };
  }

  /** A VM that a hot swap handed to this instance, already running in `machine`. */
  static adopt(config: VmConfig, createdAt: string, console: VmConsole, host: VmHost, machine: Machine, vconsole?: VmConsole): InstanceVm {
    const vm = new InstanceVm(config, createdAt, 'running', console, host, vconsole);
    host.reserveMemory(config.name, config.memMib);
    vm.machine = machine;
    vm.startedAtMs = Date.now();
    vm.connectInputs(machine);
    // No persist here: the stored definition already says 'running' (the previous instance wrote it),
    // and two fsyncs right after the resume would hold up the guest's first exits.
    void machine.exited.then((exit) => vm.onExit(machine, exit));
    return vm;
  }

  /** The last write of this VM's stored state: a transition is answered once it is on disk. */
  private saved: Promise<void> = Promise.resolve();

  private record(): Promise<void> {
    this.saved = this.host.persist(this);
    return this.saved;
  }

  get name(): string { return this.config.name; }
  get state(): VmState { return this.runState; }
  get running(): Machine | undefined { return this.machine; }

  /** The state written to disk. */
  get persistedState(): PersistedRunState {
    return this.runState === 'starting' ? 'running' : this.runState;
  }

  /** Boots the VM; resolves once it runs. While KVM registers its RAM the VM is 'starting'. */
  async start(): Promise<void> {
    if (!STARTABLE.includes(this.runState)) throw new InstanceError('ERR_VM_STATE', `VM ${this.name} is ${this.runState}; only a created, stopped, crashed or lost VM can be started`);
    const config = machineConfigFor(this.config, this.host.cpus());
    this.host.reserveMemory(this.name, this.config.memMib);
    const before = this.runState;
    this.runState = 'starting';
    let machine: Machine;
    try {
      machine = await Machine.createAsync(config, this.console, this.host.ringPoller, openVmDevices(this.config, this.vconsole));
    } catch (e) {
      this.runState = before;
      this.host.releaseMemory(this.name);
      throw e;
    }
    this.machine = machine;
    this.connectInputs(machine);
    machine.start();
    this.runState = 'running';
    this.startedAtMs = Date.now();
    this.exitInfo = null;
    void machine.exited.then((exit) => this.onExit(machine, exit));
    this.host.log('vm.started', { vm: this.name, vcpus: config.vcpus, memMib: config.memSizeMib, tids: machine.vcpus.map((v) => v.tid) });
    await this.record();
  }

  private connectInputs(machine: Machine): void {
    // A paused machine takes no input (it may be on its way to another instance): it is held.
    this.console.connectInput((bytes) => {
      if (machine.state !== 'running') return 0;
      machine.enqueueSerialInput(bytes);
      return bytes.byteLength;
    });
    this.vconsole?.connectInput((bytes) => machine.virtioDevices?.consoleInput(VCONSOLE_ID, bytes) ?? 0);
  }

  private disconnectInputs(): void {
    this.console.connectInput(undefined);
    this.vconsole?.connectInput(undefined);
  }

  async pause(): Promise<void> {
    const m = this.requireMachine('running', 'paused');
    const t0 = process.hrtime.bigint();
    await m.pause();
    this.totals.pauses++;
    this.totals.pauseNs += process.hrtime.bigint() - t0;
    if (this.machine === m && m.state === 'paused') this.runState = 'paused';
    await this.record();
  }

  async resume(): Promise<void> {
    const m = this.requireMachine('paused', 'resumed');
    m.resume();
    this.console.deliverHeld();
    this.vconsole?.deliverHeld();
    this.runState = 'running';
    await this.record();
  }

  /** Stops the guest; resolves once the machine has released everything. */
  async stop(): Promise<void> {
    if (!this.machine || (this.runState !== 'running' && this.runState !== 'paused')) {
      throw new InstanceError('ERR_VM_STATE', `VM ${this.name} is ${this.runState}; only a running or paused VM can be stopped`);
    }
    const m = this.machine;
    await m.stop();
    // onExit has run by now (exited resolved first) and asked for the 'stopped' state to be written.
    await this.saved;
  }

  /**
   * After a hot swap moved this VM: tears down this instance's copy of the (paused) machine without
   * recording a stop. The guest runs on in the next instance; its stored state stays 'running'.
   */
  async detachAfterMove(): Promise<void> {
    const m = this.machine;
    if (!m) return;
    this.movedAway = true;
    this.disconnectInputs();
    await m.stop();
  }

  private requireMachine(want: VmState, verb: string): Machine {
    if (this.runState !== want || !this.machine) {
      throw new InstanceError('ERR_VM_STATE', `VM ${this.name} is ${this.runState}; only a ${want} VM can be ${verb}`);
    }
    return this.machine;
  }

  private onExit(machine: Machine, exit: MachineExit): void {
    if (this.machine !== machine) return;
    if (this.movedAway) {
      this.machine = undefined;
      this.host.releaseMemory(this.name);
      this.host.log('vm.moved-out', { vm: this.name });
      return;
    }
    this.totals.exits += machine.vcpus.reduce((n, v) => n + v.exitsTotal, 0);
    this.machine = undefined;
    this.disconnectInputs();
    this.console.flush();
    this.vconsole?.flush();
    this.host.releaseMemory(this.name);
    this.exitInfo = describeExit(exit);
    this.runState = exit.reason === 'fault' ? 'crashed' : 'stopped';
    this.record().catch((e: unknown) => this.host.log('vm.persist-failed', { vm: this.name, error: (e as Error).message }));
    this.host.log(exit.reason === 'fault' ? 'vm.crashed' : 'vm.stopped', { vm: this.name, ...this.exitInfo });
  }

  info(): VmInfo {
    const m = this.machine;
    return {
      name: this.name,
      state: this.runState,
      config: this.config,
      memMib: this.config.memMib,
      vcpus: m ? m.vcpus.map((v) => ({ id: v.id, tid: v.state === 'stopped' ? null : v.tid, exits: v.exitsTotal })) : [],
      createdAt: this.createdAt,
      startedAt: this.startedAtMs !== undefined && m ? new Date(this.startedAtMs).toISOString() : null,
      uptimeSec: this.startedAtMs !== undefined && m ? (Date.now() - this.startedAtMs) / 1000 : null,
      exit: this.exitInfo,
      console: { bytesOut: this.console.bytesOut, bytesIn: this.console.bytesIn },
    };
  }
}

function describeExit(exit: MachineExit): VmExitInfo {
  switch (exit.reason) {
    case 'guest-exit': return { reason: 'guest-exit', status: exit.status, detail: null, rip: null };
    case 'reset': return { reason: 'reset', status: null, detail: 'the guest requested a reset', rip: null };
    case 'stopped': return { reason: 'stopped', status: null, detail: null, rip: null };
    case 'fault': return faultInfo(exit.fault);
  }
}

function faultInfo(f: VcpuFault): VmExitInfo {
  return { reason: 'fault', status: null, detail: `${f.kind} on vCPU ${f.vcpu}: ${f.detail}`, rip: f.rip === undefined ? null : `0x${f.rip.toString(16)}` };
}
