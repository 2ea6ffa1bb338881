// The platform record: what firmware and the kernel reported about this machine at an instance's
// first start (the patent's "saved POST information"), and its codec over the state envelope.
// One section per source, each versioned and read tolerantly. Probing lives in probe.ts.

import {
  type FieldReader, type StateObject, type StateTree, StateFormatError, StateKind, decodeEnvelope, encodeEnvelope, readSection,
} from '../../state/index.js';

/** A source that was read, or why it could not be: never a made-up value. */
export type Probed<T> = { present: true; value: T } | { present: false; reason: string };

export interface HostInfo {
  /** ISO 8601, when the probe ran. */
  capturedAt: string;
  kernelRelease: Probed<string>;
  hostname: Probed<string>;
  /** /proc/sys/kernel/random/boot_id: tells a record from this boot from an older one. */
  bootId: Probed<string>;
}

export interface CpuTopologyEntry {
  cpu: number;
  online: boolean;
  /** null when the kernel did not expose the file (e.g. an offline CPU has no topology/). */
  packageId: number | null;
  dieId: number | null;
  coreId: number | null;
  threadSiblings: number[];
  coreSiblings: number[];
}

export interface CpuModel {
  vendorId: string;
  modelName: string;
  family: number | null;
  model: number | null;
  stepping: number | null;
  flags: string[];
}

export interface CpuInfo {
  online: number[];
  possible: number[];
  present: number[];
  topology: CpuTopologyEntry[];
  model: Probed<CpuModel>;
}

/** One /sys/firmware/memmap entry; `end` is inclusive, as the kernel reports it. */
export interface MemmapEntry {
  index: number;
  start: bigint;
  end: bigint;
  type: string;
}

export interface DmiIds {
  sysVendor: string | null;
  productName: string | null;
  biosVendor: string | null;
  biosVersion: string | null;
  boardName: string | null;
}

export interface DmiInfo {
  entryPoint: Probed<Uint8Array>;
  table: Probed<Uint8Array>;
  ids: Probed<DmiIds>;
}

/** An ACPI table's name relative to /sys/firmware/acpi/tables ("DSDT", "dynamic/SSDT1") and size. */
export interface AcpiTableEntry {
  name: string;
  sizeBytes: number;
}

export interface NumaNode {
  node: number;
  cpus: number[];
  memTotalKib: number | null;
}

export type KvmModule = 'kvm_pvm' | 'kvm_intel' | 'kvm_amd' | 'none';

export interface KvmCapValue {
  name: string;
  cap: number;
  /** KVM_CHECK_EXTENSION's result: 0 = absent, otherwise present (some caps return a count). */
  value: number;
}

export interface KvmCpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

export interface KvmDeviceInfo {
  path: string;
  apiVersion: number;
  vcpuMmapSize: number;
  caps: KvmCapValue[];
  supportedCpuid: KvmCpuidEntry[];
  msrIndexList: number[];
}

export interface KvmInfo {
  module: KvmModule;
  device: Probed<KvmDeviceInfo>;
}

/** Present only in a slice: the partition the slice was cut for. */
export interface PartitionInfo {
  cpus: number[];
  memBudgetMib: number;
  /** The CPUs the full record described, so a slice still says what it was cut from. */
  hostCpus: number[];
}

export interface PlatformRecord {
  host: HostInfo;
  cpus: Probed<CpuInfo>;
  memmap: Probed<MemmapEntry[]>;
  dmi: DmiInfo;
  acpi: Probed<AcpiTableEntry[]>;
  numa: Probed<NumaNode[]>;
  kvm: KvmInfo;
  partition: PartitionInfo | null;
}

/** Section ids and their current versions. Ids and field names are forever. */
export const PLATFORM_SECTIONS = {
  host: { id: 'platform/host', v: 1 },
  cpus: { id: 'platform/cpus', v: 1 },
  memmap: { id: 'platform/memmap', v: 1 },
  dmi: { id: 'platform/dmi', v: 1 },
  acpi: { id: 'platform/acpi', v: 1 },
  numa: { id: 'platform/numa', v: 1 },
  kvm: { id: 'platform/kvm', v: 1 },
  partition: { id: 'platform/partition', v: 1 },
} as const;

// ---- encoding ----

/** A Probed value as fields: { present: true, ...fields } or { present: false, reason }. So no source may
 *  use "present" or "reason" as a field name of its own. */
function probed<T>(p: Probed<T>, enc: (v: T) => StateObject): StateObject {
  return p.present ? { present: true, ...enc(p.value) } : { present: false, reason: p.reason };
}

const hex = (n: bigint): string => `0x${n.toString(16)}`;

function cpusFields(c: CpuInfo): StateObject {
  return {
    onlineCpus: c.online, possibleCpus: c.possible, presentCpus: c.present,
    topology: c.topology.map((t) => ({
      cpu: t.cpu, online: t.online, packageId: t.packageId, dieId: t.dieId, coreId: t.coreId,
      threadSiblings: t.threadSiblings, coreSiblings: t.coreSiblings,
    })),
    model: probed(c.model, (m) => ({ vendorId: m.vendorId, modelName: m.modelName, family: m.family, model: m.model, stepping: m.stepping, flags: m.flags })),
  };
}

function kvmFields(k: KvmInfo): StateObject {
  return {
    module: k.module,
    device: probed(k.device, (d) => ({
      path: d.path, apiVersion: d.apiVersion, vcpuMmapSize: d.vcpuMmapSize,
      caps: d.caps.map((c) => ({ name: c.name, cap: c.cap, value: c.value })),
      supportedCpuid: d.supportedCpuid.map((e) => ({ function: e.function, index: e.index, flags: e.flags, eax: e.eax, ebx: e.ebx, ecx: e.ecx, edx: e.edx })),
      msrIndexList: d.msrIndexList,
    })),
  };
}

export function platformRecordToTree(r: PlatformRecord): StateTree {
  const S = PLATFORM_SECTIONS;
  const str = (v: string): StateObject => ({ value: v });
  const sections: Record<string, { v: number; f: StateObject }> = {
    [S.host.id]: { v: S.host.v, f: { capturedAt: r.host.capturedAt, kernelRelease: probed(r.host.kernelRelease, str), hostname: probed(r.host.hostname, str), bootId: probed(r.host.bootId, str) } },
    [S.cpus.id]: { v: S.cpus.v, f: probed(r.cpus, cpusFields) },
    [S.memmap.id]: { v: S.memmap.v, f: probed(r.memmap, (m) => ({ entries: m.map((e) => ({ index: e.index, start: hex(e.start), end: hex(e.end), type: e.type })) })) },
    [S.dmi.id]: {
      v: S.dmi.v,
      f: {
        entryPoint: probed(r.dmi.entryPoint, (b) => ({ bytes: b })),
        table: probed(r.dmi.table, (b) => ({ bytes: b })),
        ids: probed(r.dmi.ids, (d) => ({ sysVendor: d.sysVendor, productName: d.productName, biosVendor: d.biosVendor, biosVersion: d.biosVersion, boardName: d.boardName })),
      },
    },
    [S.acpi.id]: { v: S.acpi.v, f: probed(r.acpi, (t) => ({ tables: t.map((e) => ({ name: e.name, sizeBytes: e.sizeBytes })) })) },
    [S.numa.id]: { v: S.numa.v, f: probed(r.numa, (n) => ({ nodes: n.map((e) => ({ node: e.node, cpus: e.cpus, memTotalKib: e.memTotalKib })) })) },
    [S.kvm.id]: { v: S.kvm.v, f: kvmFields(r.kvm) },
  };
  if (r.partition) {
    sections[S.partition.id] = { v: S.partition.v, f: { cpus: r.partition.cpus, memBudgetMib: r.partition.memBudgetMib, hostCpus: r.partition.hostCpus } };
  }
  return { sections };
}

export function encodePlatformRecord(r: PlatformRecord): Uint8Array {
  return encodeEnvelope(StateKind.PlatformRecord, platformRecordToTree(r));
}

// ---- decoding ----

const MISSING = (id: string): string => `section ${id} is missing from the record (written by a swapvisor that did not capture it)`;

function readProbed<T>(r: FieldReader, dec: (r: FieldReader) => T): Probed<T> {
  if (r.boolean('present', false)) return { present: true, value: dec(r) };
  return { present: false, reason: r.string('reason', `${r.path} was not recorded`) };
}

function parseHex(r: FieldReader, name: string): bigint {
  const s = r.string(name, '0x0');
  if (!/^0x[0-9a-f]{1,16}$/i.test(s)) {
    throw new StateFormatError('ERR_STATE_CONTENT', `state field ${r.path}.${name} should be a hex address like "0x9fc00" but is "${s}"; the record is corrupt, capture it again`);
  }
  return BigInt(s);
}

function readCpus(r: FieldReader): CpuInfo {
  return {
    online: r.numbers('onlineCpus', []), possible: r.numbers('possibleCpus', []), present: r.numbers('presentCpus', []),
    topology: r.objects('topology').map((t) => ({
      cpu: t.number('cpu', -1), online: t.boolean('online', true), packageId: t.numberOrNull('packageId', null),
      dieId: t.numberOrNull('dieId', null), coreId: t.numberOrNull('coreId', null),
      threadSiblings: t.numbers('threadSiblings', []), coreSiblings: t.numbers('coreSiblings', []),
    })),
    model: readProbed(r.object('model'), (m) => ({
      vendorId: m.string('vendorId', ''), modelName: m.string('modelName', ''), family: m.numberOrNull('family', null),
      model: m.numberOrNull('model', null), stepping: m.numberOrNull('stepping', null), flags: m.strings('flags', []),
    })),
  };
}

function readKvm(r: FieldReader): KvmInfo {
  const module = r.string('module', 'none');
  return {
    module: module === 'kvm_pvm' || module === 'kvm_intel' || module === 'kvm_amd' ? module : 'none',
    device: readProbed(r.object('device'), (d) => ({
      path: d.string('path', '/dev/kvm'), apiVersion: d.number('apiVersion', 0), vcpuMmapSize: d.number('vcpuMmapSize', 0),
      caps: d.objects('caps').map((c) => ({ name: c.string('name', ''), cap: c.number('cap', -1), value: c.number('value', 0) })),
      supportedCpuid: d.objects('supportedCpuid').map((e) => ({
        function: e.number('function', 0), index: e.number('index', 0), flags: e.number('flags', 0),
        eax: e.number('eax', 0), ebx: e.number('ebx', 0), ecx: e.number('ecx', 0), edx: e.number('edx', 0),
      })),
      msrIndexList: d.numbers('msrIndexList', []),
    })),
  };
}

/** Reads a section as Probed, or absent-with-reason when the writer did not include it. */
function sectionProbed<T>(tree: StateTree, id: string, dec: (r: FieldReader) => T): Probed<T> {
  const s = readSection(tree, id);
  return s ? readProbed(s, dec) : { present: false, reason: MISSING(id) };
}

export function platformRecordFromTree(tree: StateTree): PlatformRecord {
  const S = PLATFORM_SECTIONS;
  const str = (r: FieldReader): string => r.string('value', '');
  const host = readSection(tree, S.host.id);
  const dmi = readSection(tree, S.dmi.id);
  const kvm = readSection(tree, S.kvm.id);
  const part = readSection(tree, S.partition.id);
  const absent = (id: string): { present: false; reason: string } => ({ present: false, reason: MISSING(id) });
  return {
    host: {
      capturedAt: host?.string('capturedAt', '') ?? '',
      kernelRelease: host ? readProbed(host.object('kernelRelease'), str) : absent(S.host.id),
      hostname: host ? readProbed(host.object('hostname'), str) : absent(S.host.id),
      bootId: host ? readProbed(host.object('bootId'), str) : absent(S.host.id),
    },
    cpus: sectionProbed(tree, S.cpus.id, readCpus),
    memmap: sectionProbed(tree, S.memmap.id, (r) => r.objects('entries').map((e) => ({
      index: e.number('index', 0), start: parseHex(e, 'start'), end: parseHex(e, 'end'), type: e.string('type', ''),
    }))),
    dmi: {
      entryPoint: dmi ? readProbed(dmi.object('entryPoint'), (b) => b.bytes('bytes', new Uint8Array())) : absent(S.dmi.id),
      table: dmi ? readProbed(dmi.object('table'), (b) => b.bytes('bytes', new Uint8Array())) : absent(S.dmi.id),
      ids: dmi ? readProbed(dmi.object('ids'), (d) => ({
        sysVendor: d.stringOrNull('sysVendor', null), productName: d.stringOrNull('productName', null),
        biosVendor: d.stringOrNull('biosVendor', null), biosVersion: d.stringOrNull('biosVersion', null), boardName: d.stringOrNull('boardName', null),
      })) : absent(S.dmi.id),
    },
    acpi: sectionProbed(tree, S.acpi.id, (r) => r.objects('tables').map((t) => ({ name: t.string('name', ''), sizeBytes: t.number('sizeBytes', 0) }))),
    numa: sectionProbed(tree, S.numa.id, (r) => r.objects('nodes').map((n) => ({ node: n.number('node', 0), cpus: n.numbers('cpus', []), memTotalKib: n.numberOrNull('memTotalKib', null) }))),
    kvm: kvm ? readKvm(kvm) : { module: 'none', device: absent(S.kvm.id) },
    partition: part ? { cpus: part.numbers('cpus', []), memBudgetMib: part.number('memBudgetMib', 0), hostCpus: part.numbers('hostCpus', []) } : null,
  };
}

/** Decodes a platform record; malformed bytes throw StateFormatError (see src/state/errors.ts). */
export function decodePlatformRecord(bytes: Uint8Array, maxBytes?: number): PlatformRecord {
  return platformRecordFromTree(decodeEnvelope(bytes, { expectKind: StateKind.PlatformRecord, maxBytes }).content);
}
