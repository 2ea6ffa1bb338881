// Slicing the record for a partition, and the text and summary views of it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PlatformRecordError } from './errors.js';
import { buildFakeSysfs } from './fake-sysfs.js';
import { probePlatform } from './probe.js';
import { decodePlatformRecord, encodePlatformRecord } from './record.js';
import { platformSummary, renderPlatformText } from './render.js';
import { sliceForPartition } from './slice.js';
import { formatCpuList, parseCpuList } from './cpulist.js';

function fakeRecord(opts: Parameters<typeof buildFakeSysfs>[0] = {}) {
  const fake = buildFakeSysfs(opts);
  try {
    return probePlatform({ sysfsRoot: fake.root, kvmDevice: '/nonexistent/kvm', now: () => new Date('2026-01-01T00:00:00Z') });
  } finally {
    fake.cleanup();
  }
}

describe('sliceForPartition', () => {
  it('keeps only the partition CPUs in topology and NUMA, and records the partition', () => {
    const full = fakeRecord();
    const s = sliceForPartition(full, { cpus: [2, 1], memBudgetMib: 512 });
    assert.ok(s.cpus.present && full.cpus.present);
    assert.deepEqual(s.cpus.value.topology.map((t) => t.cpu), [1, 2]);
    assert.deepEqual(s.cpus.value.online, [1, 2]);
    assert.deepEqual(s.cpus.value.topology.map((t) => t.coreSiblings), [[1], [2]]);
    assert.ok(s.numa.present);
    assert.deepEqual(s.numa.value.map((n) => n.cpus), [[1], [2]]);
    assert.deepEqual(s.partition, { cpus: [1, 2], memBudgetMib: 512, hostCpus: [0, 1, 2, 3] });
    assert.deepStrictEqual([s.memmap, s.dmi, s.acpi, s.kvm, s.host], [full.memmap, full.dmi, full.acpi, full.kvm, full.host]);
    assert.equal(full.cpus.value.topology.length, 4, 'the full record is not modified');
    assert.deepStrictEqual(decodePlatformRecord(encodePlatformRecord(s)), s, 'a slice round-trips with its partition section');
  });

  it('no CPU outside the partition survives anywhere (property)', () => {
    const full = fakeRecord();
    fc.assert(fc.property(fc.subarray([0, 1, 2, 3], { minLength: 1 }), (cpus) => {
      const s = sliceForPartition(full, { cpus, memBudgetMib: 1 });
      const seen = JSON.stringify({ c: s.cpus, n: s.numa }).match(/\d+/g) ?? [];
      assert.ok(s.cpus.present);
      for (const t of s.cpus.value.topology) assert.ok(cpus.includes(t.cpu));
      for (const t of s.cpus.value.topology) for (const x of [...t.threadSiblings, ...t.coreSiblings]) assert.ok(cpus.includes(x));
      assert.ok(s.numa.present && s.numa.value.every((n) => n.cpus.every((c) => cpus.includes(c))));
      assert.ok(seen.length > 0);
    }), { numRuns: 100 });
  });

  it('refuses CPUs the record does not have, and bad budgets', () => {
    const full = fakeRecord();
    assert.throws(() => sliceForPartition(full, { cpus: [1, 9], memBudgetMib: 512 }), (e: unknown) => e instanceof PlatformRecordError && e.code === 'ERR_PLATFORM_SLICE' && /CPU 9 is not in the platform record/.test(e.message));
    assert.throws(() => sliceForPartition(full, { cpus: [], memBudgetMib: 512 }), { code: 'ERR_PLATFORM_SLICE' });
    assert.throws(() => sliceForPartition(full, { cpus: [0], memBudgetMib: 0 }), { code: 'ERR_PLATFORM_SLICE' });
    assert.throws(() => sliceForPartition(full, { cpus: [0.5], memBudgetMib: 1 }), { code: 'ERR_PLATFORM_SLICE' });
  });
});

describe('renderPlatformText and platformSummary', () => {
  it('shows every section, with reasons for absent ones', () => {
    const text = renderPlatformText(sliceForPartition(fakeRecord({ dmi: false }), { cpus: [0, 1], memBudgetMib: 256 }));
    assert.match(text, /Partition: CPUs 0-1 of 0-3, memory budget 256 MiB/);
    assert.match(text, /CPUs: Fake Xeon \(GenuineIntel family 6 model 85 stepping 7, 3 flags\)/);
    assert.match(text, /0x000000100000 {2}0x00007fffffff {2}2047 MiB {2}System RAM/);
    assert.match(text, /table: absent \(ENOENT: \/sys\/firmware\/dmi\/tables\/DMI\)/);
    assert.match(text, /ACPI tables: APIC \(72 B\), DSDT \(1000 B\), dynamic\/SSDT1 \(12 B\)/);
    assert.match(text, /NUMA nodes:/);
    assert.match(text, /KVM: module kvm_intel, device absent/);
  });

  it('summarizes', () => {
    assert.deepEqual(platformSummary(fakeRecord()), {
      cpuModel: 'Fake Xeon', cpuCount: 4, numaNodeCount: 2, kvmFlavor: 'kvm_intel', kvmApiVersion: null, capturedAt: '2026-01-01T00:00:00.000Z',
    });
  });
});

describe('cpulist', () => {
  it('parses and formats kernel cpulists (property)', () => {
    assert.deepEqual(parseCpuList('0-3,8,10-11\n'), [0, 1, 2, 3, 8, 10, 11]);
    assert.deepEqual(parseCpuList(''), []);
    for (const bad of ['a', '3-1', '1,,2', '-1']) assert.equal(parseCpuList(bad), null);
    fc.assert(fc.property(fc.uniqueArray(fc.nat(200), { maxLength: 30 }), (cpus) => {
      assert.deepEqual(parseCpuList(formatCpuList(cpus)), [...cpus].sort((a, b) => a - b));
    }), { numRuns: 500 });
  });
});
