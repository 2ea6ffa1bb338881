// QEMU as the benchmarks' peer: finds (or installs from apt) qemu-system-x86_64 and builds the microvm
// command line that boots a guest-kit ELF through its PVH note. It does not run or time QEMU itself.

import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { BenchRunError } from './errors.js';

export const QEMU_BINARY = 'qemu-system-x86_64';
const QEMU_APT_PACKAGE = 'qemu-system-x86';
/** isa-debug-exit at this port turns the guest's exit status s into QEMU's exit code (s << 1) | 1. */
const DEBUG_EXIT_IOBASE = '0xf4';

function findOnPath(binary: string): string | undefined {
  const dirs = (process.env['PATH'] ?? '').split(path.delimiter).filter((d) => d.length > 0);
  for (const dir of [...dirs, '/usr/bin']) {
    const candidate = path.join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; keep looking.
    }
  }
  return undefined;
}

function aptInstall(log: (line: string) => void): boolean {
  log(`${QEMU_BINARY} not found; installing ${QEMU_APT_PACKAGE} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = (): boolean =>
    spawnSync('apt-get', ['install', '-y', QEMU_APT_PACKAGE], { stdio: ['ignore', 2, 2], env }).status === 0;
  if (install()) return true;
  log('apt-get install failed; running apt-get update and trying once more');
  spawnSync('apt-get', ['update'], { stdio: ['ignore', 2, 2], env });
  return install();
}

/** The path of qemu-system-x86_64, installing Debian's package first if it is missing. */
export function locateQemu(log: (line: string) => void): string {
  const found = findOnPath(QEMU_BINARY);
  if (found) return found;
  if (aptInstall(log)) {
    const installed = findOnPath(QEMU_BINARY);
    if (installed) return installed;
  }
  throw new BenchRunError(`${QEMU_BINARY} is missing and \`apt-get install -y ${QEMU_APT_PACKAGE}\` did not provide it; install it by hand`);
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
