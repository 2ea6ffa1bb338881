// A small fake /sys and /proc tree for tests of the platform probe: a 4-CPU, 2-node machine with a
// firmware memory map, ACPI tables and (optionally) DMI. Test support only; production never calls it.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface FakeSysfsOptions {
  dmi?: boolean;
  memmap?: boolean;
  acpi?: boolean;
  numa?: boolean;
  /** Which module directory to create under /sys/module. */
  kvmModule?: 'kvm_pvm' | 'kvm_intel' | 'kvm_amd' | null;
}

export const FAKE_SMBIOS_ENTRY = Uint8Array.from([0x5f, 0x53, 0x4d, 0x33, 0x5f, 0x01, 0x18, 0x03]);
export const FAKE_DMI_TABLE = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);

function put(root: string, p: string, data: string | Uint8Array): void {
  const abs = path.join(root, p);
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, data);
}

/** Builds the tree in a fresh temp dir; call `cleanup` when done. */
export function buildFakeSysfs(opts: FakeSysfsOptions = {}): { root: string; cleanup: () => void } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'swapvisor-fake-sysfs-'));
  const cpu = '/sys/devices/system/cpu';
  put(root, `${cpu}/possible`, '0-3\n');
  put(root, `${cpu}/present`, '0-3\n');
  put(root, `${cpu}/online`, '0-2\n');
  for (let c = 0; c < 4; c++) {
    if (c > 0) put(root, `${cpu}/cpu${c}/online`, c === 3 ? '0\n' : '1\n');
    if (c === 3) continue; // an offline CPU has no topology/ directory
    put(root, `${cpu}/cpu${c}/topology/physical_package_id`, `${c >> 1}\n`);
    put(root, `${cpu}/cpu${c}/topology/die_id`, '0\n');
    put(root, `${cpu}/cpu${c}/topology/core_id`, `${c & 1}\n`);
    put(root, `${cpu}/cpu${c}/topology/thread_siblings_list`, `${c}\n`);
    put(root, `${cpu}/cpu${c}/topology/core_siblings_list`, c < 2 ? '0-1\n' : '2-3\n');
  }
  put(root, `${cpu}/cpufreq/.keep`, '');
  put(root, '/proc/cpuinfo', 'processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nmodel name\t: Fake Xeon\nstepping\t: 7\nflags\t\t: fpu vmx sse2\n\nprocessor\t: 1\nvendor_id\t: Other\n');
  put(root, '/proc/sys/kernel/osrelease', '6.1.0-fake\n');
  put(root, '/proc/sys/kernel/hostname', 'fakehost\n');
  put(root, '/proc/sys/kernel/random/boot_id', '11111111-2222-3333-4444-555555555555\n');
  if (opts.memmap ?? true) {
    const entries = [['0x0', '0x9fbff', 'System RAM'], ['0x9fc00', '0xfffff', 'Reserved'], ['0x100000', '0x7fffffff', 'System RAM']];
    entries.forEach(([s, e, t], i) => {
      put(root, `/sys/firmware/memmap/${i}/start`, `${s}\n`);
      put(root, `/sys/firmware/memmap/${i}/end`, `${e}\n`);
      put(root, `/sys/firmware/memmap/${i}/type`, `${t}\n`);
    });
  }
  if (opts.dmi ?? true) {
    put(root, '/sys/firmware/dmi/tables/smbios_entry_point', FAKE_SMBIOS_ENTRY);
    put(root, '/sys/firmware/dmi/tables/DMI', FAKE_DMI_TABLE);
    put(root, '/sys/class/dmi/id/sys_vendor', 'Fake Vendor\n');
    put(root, '/sys/class/dmi/id/product_name', 'Fake Box\n');
    put(root, '/sys/class/dmi/id/bios_vendor', 'Fake BIOS Inc.\n');
    put(root, '/sys/class/dmi/id/bios_version', '1.2.3\n');
    // board_name deliberately missing
  }
  if (opts.acpi ?? true) {
    put(root, '/sys/firmware/acpi/tables/APIC', new Uint8Array(72));
    put(root, '/sys/firmware/acpi/tables/DSDT', new Uint8Array(1000));
    put(root, '/sys/firmware/acpi/tables/dynamic/SSDT1', new Uint8Array(12));
    mkdirSync(path.join(root, '/sys/firmware/acpi/tables/data'), { recursive: true });
  }
  if (opts.numa ?? true) {
    put(root, '/sys/devices/system/node/node0/cpulist', '0-1\n');
    put(root, '/sys/devices/system/node/node0/meminfo', 'Node 0 MemTotal:        1048576 kB\nNode 0 MemFree: 1 kB\n');
    put(root, '/sys/devices/system/node/node1/cpulist', '2-3\n');
    put(root, '/sys/devices/system/node/node1/meminfo', 'Node 1 MemTotal:        2097152 kB\n');
    put(root, '/sys/devices/system/node/online', '0-1\n');
  }
  const mod = opts.kvmModule === undefined ? 'kvm_intel' : opts.kvmModule;
  if (mod) put(root, `/sys/module/${mod}/initstate`, 'live\n');
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
