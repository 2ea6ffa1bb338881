// The instance's VMs by name: create (stored atomically before anything runs), look up, remove,
// and on daemon start the reload of stored definitions, which names the VMs a crash lost.

import { InstanceError } from './errors.js';
import type { StateDir, StoredVm } from './state-dir.js';
import type { VmConfig } from './vm-config.js';
import { VmConsole } from './vm-console.js';
import { InstanceVm, type VmHost, type VmState } from './vm.js';

export interface ReloadReport {
  loaded: number;
  lost: string[];
  unreadable: Array<{ file: string; reason: string }>;
}

export class VmRegistry {
  private readonly vms = new Map<string, InstanceVm>();

  constructor(private readonly stateDir: StateDir, private readonly host: Omit<VmHost, 'persist'>) {}

  private newVm(config: VmConfig, createdAt: string, state: VmState): InstanceVm {
    const vconsole = config.vconsole ? new VmConsole(this.stateDir.vconsoleLogPath(config.name)) : undefined;
    return new InstanceVm(config, createdAt, state, new VmConsole(this.stateDir.consoleLogPath(config.name)), this.vmHost(), vconsole);
  }

  private vmHost(): VmHost {
    return { ...this.host, persist: (vm) => this.persist(vm) };
  }

  /** Each VM's last queued write of its stored state. */
  private readonly writes = new Map<string, Promise<void>>();

  /**
   * Writes the VM's state as it is now, after its earlier writes, on a pool thread: a VM starting or
   * stopping no longer holds up the other VMs' exits and I/O for two fsyncs.
   */
  private persist(vm: InstanceVm): Promise<void> {
    const stored: StoredVm<VmConfig> = {
      formatVersion: 1, name: vm.name, config: vm.config, createdAt: vm.createdAt,
      runState: vm.persistedState, updatedAt: new Date().toISOString(),
    };
    const write = (this.writes.get(vm.name) ?? Promise.resolve()).catch(() => undefined).then(() => this.stateDir.saveVm(stored));
    this.writes.set(vm.name, write);
    return write;
  }

  /** A write nothing waits for (a reload marking a VM lost): a failure is logged. */
  private persistInBackground(vm: InstanceVm): void {
    this.persist(vm).catch((e: unknown) => this.host.log('vm.persist-failed', { vm: vm.name, error: (e as Error).message }));
  }

  /** Resolves once every stored-state write asked for so far has landed or failed. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.writes.values()]);
  }

  /** Loads stored VMs. Those last written down as running or paused were lost with the previous daemon. */
  reload(): ReloadReport {
    const { vms, unreadable } = this.stateDir.loadVms<VmConfig>();
    const lost: string[] = [];
    for (const v of vms) {
      const wasRunning = v.runState === 'running' || v.runState === 'paused';
      const state: VmState = wasRunning ? 'lost' : v.runState;
      if (wasRunning) lost.push(v.name);
      const vm = this.newVm(v.config, v.createdAt, state);
      this.vms.set(v.name, vm);
      if (wasRunning) this.persistInBackground(vm);
    }
    return { loaded: vms.length, lost, unreadable };
  }

  /**
   * @param startNow the caller starts the VM right away (synchronously), which writes the definition:
   *   writing it here as well would cost a second fsync'ed write per VM.
   */
  async create(config: VmConfig, startNow = false): Promise<InstanceVm> {
    if (this.vms.has(config.name)) throw new InstanceError('ERR_VM_EXISTS', `a VM named ${config.name} already exists; pick another name or remove it first`);
    const vm = this.newVm(config, new Date().toISOString(), 'created');
    this.vms.set(config.name, vm); // at once: a second create of the name meanwhile is refused
    if (!startNow) {
      try {
        await this.persist(vm);
      } catch (e) {
        this.vms.delete(config.name);
        this.writes.delete(config.name);
        throw e;
      }
    }
    return vm;
  }

  /** Adds a VM that arrived running through a hot swap. */
  adoptRunning(vm: InstanceVm): void {
    if (this.vms.has(vm.name)) throw new InstanceError('ERR_VM_EXISTS', `VM ${vm.name} is already here`);
    this.vms.set(vm.name, vm);
  }

  /** Forgets a VM that a hot swap moved to the next instance; its stored definition now belongs there. */
  forgetMoved(name: string): void {
    this.vms.delete(name);
  }

  /** Loads the stored VMs this registry does not hold yet (after a swap: those that were not running). */
  reloadMissing(): ReloadReport {
    const { vms, unreadable } = this.stateDir.loadVms<VmConfig>();
    const lost: string[] = [];
    let loaded = 0;
    for (const v of vms) {
      if (this.vms.has(v.name)) continue;
      const wasRunning = v.runState === 'running' || v.runState === 'paused';
      if (wasRunning) lost.push(v.name);
      const vm = this.newVm(v.config, v.createdAt, wasRunning ? 'lost' : v.runState);
      this.vms.set(v.name, vm);
      if (wasRunning) this.persistInBackground(vm);
      loaded++;
    }
    return { loaded, lost, unreadable };
  }

  /** The host callbacks a VM created outside the registry (adopted by a swap) must use. */
  get hostForAdoption(): VmHost {
    return this.vmHost();
  }

  get(name: string): InstanceVm {
    const vm = this.vms.get(name);
    if (!vm) throw new InstanceError('ERR_NOT_FOUND', `no VM named ${name}; list them with swapvisor vm ls`);
    return vm;
  }

  list(): InstanceVm[] {
    // Code-point order, not localeCompare: names are ASCII, and the first localeCompare in a process
    // loads ICU's collator, ~5 ms on the thread that serves the VMs (it was the first step of a swap).
    return [...this.vms.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async remove(name: string, force: boolean): Promise<void> {
    const vm = this.get(name);
    if (vm.state === 'running' || vm.state === 'paused' || vm.state === 'starting') {
      if (!force) throw new InstanceError('ERR_VM_STATE', `VM ${name} is ${vm.state}; stop it first or remove it with force`);
      await vm.stop();
    }
    vm.console.close();
    vm.vconsole?.close();
    // After its last write (a write landing later would bring the file back), and still registered
    // meanwhile, so that a new VM of the same name cannot be created and then lose its file.
    await this.writes.get(name)?.catch(() => undefined);
    this.writes.delete(name);
    this.stateDir.removeVm(name);
    this.vms.delete(name);
  }

  /** Stops every running VM (daemon shutdown). Their stored state becomes 'stopped'. */
  async stopAll(): Promise<void> {
    await Promise.all(this.list().filter((vm) => vm.state === 'running' || vm.state === 'paused').map((vm) => vm.stop().catch(() => undefined)));
    for (const vm of this.list()) { vm.console.close(); vm.vconsole?.close(); }
    await this.settled();
  }
}
