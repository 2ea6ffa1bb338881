// One probe function per firmware/kernel source of the platform record: CPUs, the firmware memory
// map, DMI/SMBIOS, ACPI table names, NUMA nodes and host identity. Each reads files under a
// SysfsRoot and reports an absent source with its reason; none of them invents a value.
// Interfaces: Documentation/ABI/stable/sysfs-devices-system-cpu, ABI/testing/sysfs-firmware-memmap,
// ABI/testing/sysfs-firmware-dmi-tables, ABI/testing/sysfs-firmware-acpi, ABI/stable/sysfs-devices-node.

import { parseCpuList } from './cpulist.js';
import type { AcpiTableEntry, CpuInfo, CpuModel, CpuTopologyEntry, DmiIds, DmiInfo, HostInfo, MemmapEntry, NumaNode, Probed } from './record.js';
import { SysfsRoot, numbered } from './sysfs.js';

const CPU_DIR = '/sys/devices/system/cpu';
const MEMMAP_DIR = '/sys/firmware/memmap';
const DMI_TABLES_DIR = '/sys/firmware/dmi/tables';
const DMI_ID_DIR = '/sys/class/dmi/id';
const ACPI_TABLES_DIR = '/sys/firmware/acpi/tables';
const NODE_DIR = '/sys/devices/system/node';

/** Cap on each DMI blob; SMBIOS tables are a few KiB on real machines. */
export const DMI_BLOB_CAP_BYTES = 1 << 20;

function cpuList(sys: SysfsRoot, p: string): Probed<number[]> {
  const t = sys.text(p);
  if (!t.present) return t;
  const cpus = parseCpuList(t.value);
  return cpus ? { present: true, value: cpus } : { present: false, reason: `EINVAL: ${p} is not a cpulist: "${t.value}"` };
}

/** The first processor block of /proc/cpuinfo, as the model of the machine's CPUs. */
export function probeCpuModel(sys: SysfsRoot): Probed<CpuModel> {
  const t = sys.text('/proc/cpuinfo', 4 << 20);
  if (!t.present) return t;
  const fields = new Map<string, string>();
  for (const line of t.value.split('\n')) {
    if (line.trim() === '') {
      if (fields.size > 0) break;
      continue;
    }
    const i = line.indexOf(':');
    if (i > 0) fields.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  if (fields.size === 0) return { present: false, reason: 'EINVAL: /proc/cpuinfo has no processor block' };
  const int = (k: string): number | null => {
    const v = fields.get(k);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
  };
  return {
    present: true,
    value: {
      vendorId: fields.get('vendor_id') ?? '', modelName: fields.get('model name') ?? '',
      family: int('cpu family'), model: int('model'), stepping: int('stepping'),
      flags: (fields.get('flags') ?? '').split(/\s+/).filter((f) => f !== ''),
    },
  };
}

function probeCpuTopology(sys: SysfsRoot, cpu: number, online: ReadonlySet<number>): CpuTopologyEntry {
  const dir = `${CPU_DIR}/cpu${cpu}`;
  // cpu0 usually has no "online" file (it cannot be unplugged); the online list is then the truth.
  const onlineFile = sys.intOrNull(`${dir}/online`);
  const siblings = (name: string): number[] => {
    const t = sys.textOrNull(`${dir}/topology/${name}`);
    return (t === null ? null : parseCpuList(t)) ?? [];
  };
  return {
    cpu,
    online: onlineFile === null ? online.has(cpu) : onlineFile === 1,
    packageId: sys.intOrNull(`${dir}/topology/physical_package_id`),
    dieId: sys.intOrNull(`${dir}/topology/die_id`),
    coreId: sys.intOrNull(`${dir}/topology/core_id`),
    threadSiblings: siblings('thread_siblings_list'),
    coreSiblings: siblings('core_siblings_list'),
  };
}

export function probeCpus(sys: SysfsRoot): Probed<CpuInfo> {
  const possible = cpuList(sys, `${CPU_DIR}/possible`);
  if (!possible.present) return possible;
  const online = cpuList(sys, `${CPU_DIR}/online`);
  if (!online.present) return online;
  const present = cpuList(sys, `${CPU_DIR}/present`);
  if (!present.present) return present;
  const dirs = sys.list(CPU_DIR);
  if (!dirs.present) return dirs;
  const onlineSet = new Set(online.value);
  return {
    present: true,
    value: {
      online: online.value, possible: possible.value, present: present.value,
      topology: numbered(dirs.value, 'cpu').map((cpu) => probeCpuTopology(sys, cpu, onlineSet)),
      model: probeCpuModel(sys),
    },
  };
}

export function probeMemmap(sys: SysfsRoot): Probed<MemmapEntry[]> {
  const dirs = sys.list(MEMMAP_DIR);
  if (!dirs.present) return dirs;
  const entries: MemmapEntry[] = [];
  for (const index of numbered(dirs.value, '')) {
    const d = `${MEMMAP_DIR}/${index}`;
    const start = sys.textOrNull(`${d}/start`);
    const end = sys.textOrNull(`${d}/end`);
    const type = sys.textOrNull(`${d}/type`);
    if (start === null || end === null || type === null || !/^0x[0-9a-f]+$/i.test(start) || !/^0x[0-9a-f]+$/i.test(end)) {
      return { present: false, reason: `EINVAL: ${d} lacks a readable start, end or type` };
    }
    entries.push({ index, start: BigInt(start), end: BigInt(end), type });
  }
  return { present: true, value: entries };
}

export function probeDmi(sys: SysfsRoot): DmiInfo {
  let ids: Probed<DmiIds>;
  if (sys.isDirectory(DMI_ID_DIR)) {
    const s = (name: string): string | null => sys.textOrNull(`${DMI_ID_DIR}/${name}`);
    ids = { present: true, value: { sysVendor: s('sys_vendor'), productName: s('product_name'), biosVendor: s('bios_vendor'), biosVersion: s('bios_version'), boardName: s('board_name') } };
  } else {
    ids = { present: false, reason: `ENOENT: ${DMI_ID_DIR}` };
  }
  return {
    entryPoint: sys.bytes(`${DMI_TABLES_DIR}/smbios_entry_point`, DMI_BLOB_CAP_BYTES),
    table: sys.bytes(`${DMI_TABLES_DIR}/DMI`, DMI_BLOB_CAP_BYTES),
    ids,
  };
}

/** Names and sizes of the ACPI tables (not their contents), recursing into dynamic/ and data/. */
export function probeAcpi(sys: SysfsRoot): Probed<AcpiTableEntry[]> {
  const top = sys.list(ACPI_TABLES_DIR);
  if (!top.present) return top;
  const out: AcpiTableEntry[] = [];
  const walk = (rel: string, names: readonly string[], depth: number): void => {
    for (const name of [...names].sort()) {
      const relName = rel === '' ? name : `${rel}/${name}`;
      const p = `${ACPI_TABLES_DIR}/${relName}`;
      if (sys.isDirectory(p)) {
        const sub = sys.list(p);
        if (sub.present && depth < 4) walk(relName, sub.value, depth + 1);
      } else {
        out.push({ name: relName, sizeBytes: sys.size(p) });
      }
    }
  };
  walk('', top.value, 0);
  return { present: true, value: out };
}

export function probeNuma(sys: SysfsRoot): Probed<NumaNode[]> {
  const dirs = sys.list(NODE_DIR);
  if (!dirs.present) return dirs;
  const nodes: NumaNode[] = [];
  for (const node of numbered(dirs.value, 'node')) {
    const d = `${NODE_DIR}/node${node}`;
    const cpus = cpuList(sys, `${d}/cpulist`);
    if (!cpus.present) return cpus;
    const meminfo = sys.textOrNull(`${d}/meminfo`);
    const m = meminfo === null ? null : /MemTotal:\s+(\d+)\s*kB/.exec(meminfo);
    nodes.push({ node, cpus: cpus.value, memTotalKib: m ? Number(m[1]) : null });
  }
  return { present: true, value: nodes };
}

export function probeHost(sys: SysfsRoot, now: Date): HostInfo {
  return {
    capturedAt: now.toISOString(),
    kernelRelease: sys.text('/proc/sys/kernel/osrelease'),
    hostname: sys.text('/proc/sys/kernel/hostname'),
    bootId: sys.text('/proc/sys/kernel/random/boot_id'),
  };
}
