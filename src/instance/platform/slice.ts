// Cutting the platform record down to one instance's partition: only its CPUs remain in the
// topology and the NUMA cpulists, and a "platform/partition" section says what it was cut for.
// Memory map, DMI, ACPI and KVM facts describe the whole machine and are kept as they are.

import { PlatformRecordError } from './errors.js';
import type { CpuInfo, PlatformRecord } from './record.js';

export interface PartitionSpec {
  cpus: number[];
  memBudgetMib: number;
}

function checkSpec(spec: PartitionSpec): number[] {
  if (!Array.isArray(spec.cpus) || spec.cpus.length === 0 || !spec.cpus.every((c) => Number.isInteger(c) && c >= 0)) {
    throw new PlatformRecordError('ERR_PLATFORM_SLICE', `a partition needs at least one CPU, given as non-negative integers; got ${JSON.stringify(spec.cpus)}`);
  }
  if (!Number.isFinite(spec.memBudgetMib) || spec.memBudgetMib <= 0) {
    throw new PlatformRecordError('ERR_PLATFORM_SLICE', `a partition's memory budget must be a positive number of MiB; got ${spec.memBudgetMib}`);
  }
  return [...new Set(spec.cpus)].sort((a, b) => a - b);
}

function sliceCpus(cpus: CpuInfo, keep: ReadonlySet<number>): CpuInfo {
  const only = (l: readonly number[]): number[] => l.filter((c) => keep.has(c));
  return {
    online: only(cpus.online),
    possible: only(cpus.possible),
    present: only(cpus.present),
    topology: cpus.topology.filter((t) => keep.has(t.cpu)).map((t) => ({
      ...t, threadSiblings: only(t.threadSiblings), coreSiblings: only(t.coreSiblings),
    })),
    model: cpus.model,
  };
}

/** The record as the instance owning `spec.cpus` sees it. Throws ERR_PLATFORM_SLICE for CPUs the record does not know. */
export function sliceForPartition(record: PlatformRecord, spec: PartitionSpec): PlatformRecord {
  const cpus = checkSpec(spec);
  if (!record.cpus.present) {
    throw new PlatformRecordError('ERR_PLATFORM_SLICE', `cannot cut a partition from a record without CPU topology (${record.cpus.reason}); remove platform.rec to probe again on a host that exposes /sys/devices/system/cpu`);
  }
  const known = new Set(record.cpus.value.topology.map((t) => t.cpu));
  const unknown = cpus.filter((c) => !known.has(c));
  if (unknown.length > 0) {
    throw new PlatformRecordError('ERR_PLATFORM_SLICE', `CPU ${unknown.join(', ')} is not in the platform record (it has CPUs ${[...known].sort((a, b) => a - b).join(', ')}); choose partition CPUs this machine has`);
  }
  const keep = new Set(cpus);
  return {
    ...record,
    cpus: { present: true, value: sliceCpus(record.cpus.value, keep) },
    numa: record.numa.present
      ? { present: true, value: record.numa.value.map((n) => ({ ...n, cpus: n.cpus.filter((c) => keep.has(c)) })) }
      : record.numa,
    partition: { cpus, memBudgetMib: spec.memBudgetMib, hostCpus: record.partition?.hostCpus ?? [...known].sort((a, b) => a - b) },
  };
}
