// What a Machine is built from, and its validation. Sizes are bounded here so that bad input gets
// one clear error before any host resource is taken.

import { MIN_GUEST_RAM } from '../arch/x86_64/memory-map.js';
import { MiB } from '../memory/gpa.js';

export interface MachineConfig {
  /** A short name, used for the memfd and in messages. */
  name: string;
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  memSizeMib: number;
  vcpus: number;
  /** How to enter an ELF that supports several entry points. */
  entry?: 'auto' | 'long-mode' | 'pvh';
  /** Host CPUs the vCPU threads may run on. */
  cpus?: number[];
  /** The KVM device node (default /dev/kvm). */
  kvmDevice?: string;
  /** Pre-fault guest RAM before the guest starts ('now') or while it runs ('background', the default). */
  prefault?: 'now' | 'background';
  /** Queue UART data-register writes in KVM's coalesced ring (default true). */
  coalesceConsole?: boolean;
}

export const MAX_VCPUS = 32;
export const MAX_MEM_MIB = 64 * 1024;
export const MIN_MEM_MIB = MIN_GUEST_RAM / MiB;

export class MachineConfigError extends Error {
  readonly code = 'ERR_VM_CONFIG';
}

export function validateMachineConfig(c: MachineConfig, opts: { needKernel: boolean } = { needKernel: true }): MachineConfig {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(c.name)) {
    throw new MachineConfigError(`VM name "${c.name}" is not valid: use 1-64 letters, digits, '.', '_' or '-'`);
  }
  if (!Number.isInteger(c.memSizeMib) || c.memSizeMib < MIN_MEM_MIB || c.memSizeMib > MAX_MEM_MIB) {
    throw new MachineConfigError(`memory size ${c.memSizeMib} MiB is out of range: use a whole number of MiB from ${MIN_MEM_MIB} to ${MAX_MEM_MIB}`);
  }
  if (!Number.isInteger(c.vcpus) || c.vcpus < 1 || c.vcpus > MAX_VCPUS) {
    throw new MachineConfigError(`vCPU count ${c.vcpus} is out of range: use 1 to ${MAX_VCPUS}`);
  }
  if (opts.needKernel && c.kernel.byteLength === 0) throw new MachineConfigError('the kernel image is empty: pass a guest-kit ELF, a PVH vmlinux or a bzImage');
  if (c.cpus) {
    if (c.cpus.length === 0 || c.cpus.some((n) => !Number.isInteger(n) || n < 0 || n > 1023)) {
      throw new MachineConfigError(`CPU list ${JSON.stringify(c.cpus)} is not valid: give host CPU numbers such as 0,1`);
    }
  }
  return { coalesceConsole: true, entry: 'auto', prefault: 'background', ...c };
}
