// QEMU as the benchmarks' peer: finds (or installs from apt) qemu-system-x86_64 and builds the microvm
// command line that boots a guest-kit ELF through its PVH note. It does not run or time QEMU itself.

import { execFileSync } from 'node:child_process';
import { locateOrInstall } from './apt.js';

export const QEMU_BINARY = 'qemu-system-x86_64';
const QEMU_APT_PACKAGE = 'qemu-system-x86';
/** isa-debug-exit at this port turns the guest's exit status s into QEMU's exit code (s << 1) | 1. */
const DEBUG_EXIT_IOBASE = '0xf4';

/** The path of qemu-system-x86_64, installing Debian's package first if it is missing. */
export function locateQemu(log: (line: string) => void): string {
  return locateOrInstall(QEMU_BINARY, QEMU_APT_PACKAGE, log);
}

/** The first line of `qemu-system-x86_64 --version`, e.g. "QEMU emulator version 7.2.22 (…)". */
export function qemuVersion(binary: string): string {
  const text = execFileSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return text.split('\n')[0]?.trim() ?? 'unknown';
}

export interface MicrovmOptions {
  kernel: string;
  cmdline: string;
  memSizeMib: number;
  vcpus: number;
}

/**
 * Arguments for a microvm with the serial console on stdout and no other devices.
 * `-cpu host,-arch-capabilities` because plain `-cpu host` aborts on an MSR on PVM hosts (see HOST.md).
 */
export function microvmArgs(o: MicrovmOptions): string[] {
  return [
    '-M', 'microvm', '-enable-kvm', '-cpu', 'host,-arch-capabilities',
    '-m', `${o.memSizeMib}M`, '-smp', String(o.vcpus),
    '-nodefaults', '-no-user-config', '-nographic', '-serial', 'stdio',
    '-kernel', o.kernel, '-append', o.cmdline,
    '-device', `isa-debug-exit,iobase=${DEBUG_EXIT_IOBASE},iosize=4`,
  ];
}

/** The guest's exit status from QEMU's exit code under isa-debug-exit, or undefined if QEMU ended otherwise. */
export function guestStatusFromQemuExit(code: number | null): number | undefined {
  if (code === null || (code & 1) === 0) return undefined;
  return code >> 1;
}
