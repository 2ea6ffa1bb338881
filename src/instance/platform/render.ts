// The platform record for people: the text of `swapvisor host info --platform` and a small summary
// object for the API. Read-only views; nothing here probes or changes the record.

import { formatCpuList } from './cpulist.js';
import type { KvmModule, PlatformRecord, Probed } from './record.js';

export interface PlatformSummary {
  cpuModel: string | null;
  cpuCount: number;
  numaNodeCount: number;
  kvmFlavor: KvmModule;
  kvmApiVersion: number | null;
  capturedAt: string;
}

export function platformSummary(r: PlatformRecord): PlatformSummary {
  return {
    cpuModel: r.cpus.present && r.cpus.value.model.present ? r.cpus.value.model.value.modelName : null,
    cpuCount: r.cpus.present ? r.cpus.value.topology.length : 0,
    numaNodeCount: r.numa.present ? r.numa.value.length : 0,
    kvmFlavor: r.kvm.module,
    kvmApiVersion: r.kvm.device.present ? r.kvm.device.value.apiVersion : null,
    capturedAt: r.host.capturedAt,
  };
}

const absent = (p: { reason: string }): string => `absent (${p.reason})`;
const orAbsent = (p: Probed<string>): string => (p.present ? p.value : absent(p));
const orDash = (v: number | string | null): string => (v === null ? '-' : String(v));

/** Rows as left-aligned columns, two spaces apart, indented. */
function table(header: string[], rows: string[][], indent = '  '): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => indent + cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

/** The largest unit that states the size exactly, else the largest that fits, to one decimal. */
function sizeText(bytes: bigint): string {
  const units: Array<[string, bigint]> = [['GiB', 1n << 30n], ['MiB', 1n << 20n], ['KiB', 1n << 10n]];
  for (const [u, n] of units) if (bytes >= n && bytes % n === 0n) return `${bytes / n} ${u}`;
  for (const [u, n] of units) if (bytes >= n) return `${(Number(bytes) / Number(n)).toFixed(1)} ${u}`;
  return `${bytes} B`;
}

function cpuLines(r: PlatformRecord): string[] {
  if (!r.cpus.present) return [`CPUs: ${absent(r.cpus)}`];
  const c = r.cpus.value;
  const m = c.model;
  const model = m.present
    ? `${m.value.modelName || '(no model name)'} (${m.value.vendorId} family ${orDash(m.value.family)} model ${orDash(m.value.model)} stepping ${orDash(m.value.stepping)}, ${m.value.flags.length} flags)`
    : absent(m);
  return [
    `CPUs: ${model}`,
    `  online ${formatCpuList(c.online) || '-'}, possible ${formatCpuList(c.possible) || '-'}, present ${formatCpuList(c.present) || '-'}`,
    ...table(['CPU', 'ONLINE', 'PACKAGE', 'DIE', 'CORE', 'THREAD SIBLINGS', 'CORE SIBLINGS'], c.topology.map((t) => [
      String(t.cpu), t.online ? 'yes' : 'no', orDash(t.packageId), orDash(t.dieId), orDash(t.coreId),
      formatCpuList(t.threadSiblings) || '-', formatCpuList(t.coreSiblings) || '-',
    ])),
  ];
}

function memmapLines(r: PlatformRecord): string[] {
  if (!r.memmap.present) return [`Firmware memory map: ${absent(r.memmap)}`];
  const hex = (n: bigint): string => `0x${n.toString(16).padStart(12, '0')}`;
  return ['Firmware memory map:', ...table(['START', 'END (INCL.)', 'SIZE', 'TYPE'], r.memmap.value.map((e) => [
    hex(e.start), hex(e.end), sizeText(e.end - e.start + 1n), e.type,
  ]))];
}

function dmiLines(r: PlatformRecord): string[] {
  const d = r.dmi;
  const blob = (p: Probed<Uint8Array>): string => (p.present ? `${p.value.length} bytes` : absent(p));
  const lines = ['DMI/SMBIOS:', `  entry point: ${blob(d.entryPoint)}`, `  table: ${blob(d.table)}`];
  if (!d.ids.present) return [...lines, `  ids: ${absent(d.ids)}`];
  const i = d.ids.value;
  return [...lines, `  system: ${orDash(i.sysVendor)} ${orDash(i.productName)}`, `  bios: ${orDash(i.biosVendor)} ${orDash(i.biosVersion)}`, `  board: ${orDash(i.boardName)}`];
}

function acpiLines(r: PlatformRecord): string[] {
  if (!r.acpi.present) return [`ACPI tables: ${absent(r.acpi)}`];
  if (r.acpi.value.length === 0) return ['ACPI tables: none'];
  return [`ACPI tables: ${r.acpi.value.map((t) => `${t.name} (${t.sizeBytes} B)`).join(', ')}`];
}

function numaLines(r: PlatformRecord): string[] {
  if (!r.numa.present) return [`NUMA nodes: ${absent(r.numa)}`];
  return ['NUMA nodes:', ...table(['NODE', 'CPUS', 'MEMORY'], r.numa.value.map((n) => [
    String(n.node), formatCpuList(n.cpus) || '-', n.memTotalKib === null ? '-' : sizeText(BigInt(n.memTotalKib) * 1024n),
  ]))];
}

/** `label` then the words, wrapped at about 100 columns with continuation lines indented. */
function wrapWords(label: string, words: readonly string[]): string[] {
  if (words.length === 0) return [`${label} none`];
  const lines: string[] = [];
  let line = label;
  for (const w of words) {
    if (line.length + 1 + w.length > 100 && line.trim() !== label.trim()) {
      lines.push(line);
      line = '   ';
    }
    line += ` ${w}`;
  }
  return [...lines, line];
}

function kvmLines(r: PlatformRecord): string[] {
  const k = r.kvm;
  if (!k.device.present) return [`KVM: module ${k.module}, device ${absent(k.device)}`];
  const d = k.device.value;
  const have = d.caps.filter((c) => c.value !== 0).map((c) => (c.value === 1 ? c.name : `${c.name}=${c.value}`));
  const lack = d.caps.filter((c) => c.value === 0).map((c) => c.name);
  return [
    `KVM: module ${k.module}, ${d.path}, API version ${d.apiVersion}, vCPU mmap ${d.vcpuMmapSize} bytes, ${d.supportedCpuid.length} CPUID entries, ${d.msrIndexList.length} MSRs`,
    ...wrapWords('  capabilities present:', have),
    ...wrapWords('  capabilities absent:', lack),
  ];
}

export function renderPlatformText(r: PlatformRecord): string {
  const h = r.host;
  const head = [`Platform record captured ${h.capturedAt || '(unknown time)'} on ${orAbsent(h.hostname)}, kernel ${orAbsent(h.kernelRelease)}`];
  if (r.partition) {
    head.push(`Partition: CPUs ${formatCpuList(r.partition.cpus)} of ${formatCpuList(r.partition.hostCpus)}, memory budget ${r.partition.memBudgetMib} MiB`);
  }
  const blocks = [head, cpuLines(r), memmapLines(r), dmiLines(r), acpiLines(r), numaLines(r), kvmLines(r)];
  return `${blocks.map((b) => b.join('\n')).join('\n\n')}\n`;
}
