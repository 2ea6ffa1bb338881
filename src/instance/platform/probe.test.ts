// The platform probe against a fake sysfs tree (every source present, and every source absent)
// and against this real machine.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { describe, it } from 'node:test';
import { FAKE_DMI_TABLE, FAKE_SMBIOS_ENTRY, buildFakeSysfs } from './fake-sysfs.js';
import { probePlatform } from './probe.js';

const NO_KVM = '/nonexistent/swapvisor-test-kvm';

describe('probePlatform on a fake sysfs tree', () => {
  it('reads every source', () => {
    const fake = buildFakeSysfs();
    try {
      const r = probePlatform({ sysfsRoot: fake.root, kvmDevice: NO_KVM, now: () => new Date('2026-01-02T03:04:05Z') });
      assert.equal(r.host.capturedAt, '2026-01-02T03:04:05.000Z');
      assert.deepEqual(r.host.kernelRelease, { present: true, value: '6.1.0-fake' });
      assert.deepEqual(r.host.hostname, { present: true, value: 'fakehost' });
      assert.ok(r.cpus.present);
      const c = r.cpus.value;
      assert.deepEqual([c.online, c.possible, c.present], [[0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3]]);
      assert.deepEqual(c.topology.map((t) => [t.cpu, t.online, t.packageId, t.coreId]), [[0, true, 0, 0], [1, true, 0, 1], [2, true, 1, 0], [3, false, null, null]]);
      assert.deepEqual(c.topology[2].coreSiblings, [2, 3]);
      assert.deepEqual(c.model, { present: true, value: { vendorId: 'GenuineIntel', modelName: 'Fake Xeon', family: 6, model: 85, stepping: 7, flags: ['fpu', 'vmx', 'sse2'] } });
      assert.ok(r.memmap.present);
      assert.deepEqual(r.memmap.value.map((e) => [e.start, e.end, e.type]), [[0n, 0x9fbffn, 'System RAM'], [0x9fc00n, 0xfffffn, 'Reserved'], [0x100000n, 0x7fffffffn, 'System RAM']]);
      assert.deepEqual(r.dmi.entryPoint, { present: true, value: FAKE_SMBIOS_ENTRY });
      assert.deepEqual(r.dmi.table, { present: true, value: FAKE_DMI_TABLE });
      assert.deepEqual(r.dmi.ids, { present: true, value: { sysVendor: 'Fake Vendor', productName: 'Fake Box', biosVendor: 'Fake BIOS Inc.', biosVersion: '1.2.3', boardName: null } });
      assert.deepEqual(r.acpi, { present: true, value: [{ name: 'APIC', sizeBytes: 72 }, { name: 'DSDT', sizeBytes: 1000 }, { name: 'dynamic/SSDT1', sizeBytes: 12 }] });
      assert.deepEqual(r.numa, { present: true, value: [{ node: 0, cpus: [0, 1], memTotalKib: 1048576 }, { node: 1, cpus: [2, 3], memTotalKib: 2097152 }] });
      assert.equal(r.kvm.module, 'kvm_intel');
      assert.equal(r.kvm.device.present, false);
      assert.ok(!r.kvm.device.present && r.kvm.device.reason.includes(NO_KVM));
      assert.equal(r.partition, null);
    } finally {
      fake.cleanup();
    }
    assert.equal(existsSync(fake.root), false, 'the fake tree is cleaned up');
  });

  it('records missing sources as absent with the path, never a made-up value', () => {
    const fake = buildFakeSysfs({ dmi: false, memmap: false, acpi: false, numa: false, kvmModule: null });
    try {
      const r = probePlatform({ sysfsRoot: fake.root, kvmDevice: NO_KVM });
      assert.deepEqual(r.memmap, { present: false, reason: 'ENOENT: /sys/firmware/memmap' });
      assert.deepEqual(r.dmi.table, { present: false, reason: 'ENOENT: /sys/firmware/dmi/tables/DMI' });
      assert.deepEqual(r.dmi.entryPoint, { present: false, reason: 'ENOENT: /sys/firmware/dmi/tables/smbios_entry_point' });
      assert.deepEqual(r.dmi.ids, { present: false, reason: 'ENOENT: /sys/class/dmi/id' });
      assert.deepEqual(r.acpi, { present: false, reason: 'ENOENT: /sys/firmware/acpi/tables' });
      assert.deepEqual(r.numa, { present: false, reason: 'ENOENT: /sys/devices/system/node' });
      assert.equal(r.kvm.module, 'none');
    } finally {
      fake.cleanup();
    }
  });

  it('records an empty root as absent everywhere', () => {
    const fake = buildFakeSysfs();
    fake.cleanup();
    const r = probePlatform({ sysfsRoot: fake.root, kvmDevice: NO_KVM });
    assert.deepEqual(r.cpus, { present: false, reason: 'ENOENT: /sys/devices/system/cpu/possible' });
    assert.deepEqual(r.host.kernelRelease, { present: false, reason: 'ENOENT: /proc/sys/kernel/osrelease' });
  });
});

describe('probePlatform on this machine', () => {
  it('finds the CPUs Node sees and KVM API 12', { skip: !existsSync('/dev/kvm') && 'no /dev/kvm' }, () => {
    const r = probePlatform();
    assert.ok(r.cpus.present, r.cpus.present ? '' : r.cpus.reason);
    const online = r.cpus.value.topology.filter((t) => t.online).map((t) => t.cpu);
    assert.equal(online.length, os.cpus().length);
    assert.deepEqual(r.cpus.value.online, online);
    assert.ok(r.cpus.value.model.present);
    assert.equal(r.cpus.value.model.value.modelName, os.cpus()[0].model.trim());
    assert.ok(r.kvm.device.present, r.kvm.device.present ? '' : r.kvm.device.reason);
    const d = r.kvm.device.value;
    assert.equal(d.apiVersion, 12);
    assert.ok(d.vcpuMmapSize >= 4096);
    assert.ok(d.supportedCpuid.some((e) => e.function === 0), 'CPUID leaf 0 is supported');
    assert.ok(d.msrIndexList.length > 0);
    assert.equal(d.caps.find((c) => c.name === 'KVM_CAP_IRQCHIP')?.value, 1);
    assert.notEqual(r.kvm.module, 'none');
    assert.ok(r.host.kernelRelease.present && r.host.kernelRelease.value === os.release());
    assert.ok(r.host.hostname.present && r.host.hostname.value === os.hostname());
  });
});
