// Turns a VM as the instance stores it (the API's VmConfig, validated before it gets here) into
// what the VMM's Machine needs.

import { readFileSync, statSync } from 'node:fs';
import type { MachineConfig } from '../vmm/machine-config.js';
import { guestKitPath } from './guest-kit.js';

import type { VmConfig } from './api/validate.js';

export type { VmConfig };

export class VmImageError extends Error {
  readonly code = 'ERR_VM_IMAGE';
}

const MAX_IMAGE_BYTES = 512 * 1024 * 1024;

function readImage(file: string, what: string): Uint8Array {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (e) {
    throw new VmImageError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (size > MAX_IMAGE_BYTES) throw new VmImageError(`${what} ${file} is ${size} bytes; the limit is ${MAX_IMAGE_BYTES}`);
  return new Uint8Array(readFileSync(file));
}

export function machineConfigFor(vm: VmConfig, cpus: readonly number[]): MachineConfig {
  const kernelFile = vm.guest !== undefined ? guestKitPath(vm.guest) : vm.kernel!;
  return {
    name: vm.name,
    kernel: readImage(kernelFile, 'kernel'),
    initrd: vm.initrd !== undefined ? readImage(vm.initrd, 'initrd') : undefined,
    cmdline: vm.cmdline ?? (vm.guest !== undefined ? '' : 'console=ttyS0'),
    memSizeMib: vm.memMib,
    vcpus: vm.vcpus ?? (vm.guest === 'smp' ? 2 : 1),
    entry: vm.entry ?? 'auto',
    cpus: [...cpus],
  };
}
