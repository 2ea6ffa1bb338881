import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { filterCpuid } from './cpuid.js';
import type { CpuidEntry } from '../../sys/kvm-structs.js';

const leaf = (fn: number, regs: Partial<CpuidEntry> = {}): CpuidEntry => ({ function: fn, index: 0, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0, ...regs });

test('leaf 1 carries the APIC id, the vCPU count, the hypervisor bit and TSC-deadline', () => {
  const [l1] = filterCpuid([leaf(1, { ebx: 0xffff_0800, ecx: 0 })], { vcpuId: 3, vcpuCount: 4, tscDeadline: true });
  assert.equal(l1!.ebx >>> 24, 3);
  assert.equal((l1!.ebx >>> 16) & 0xff, 4);
  assert.equal(l1!.ebx & 0xffff, 0x0800);
  assert.equal(l1!.ecx >>> 31, 1);
  assert.equal((l1!.ecx >>> 24) & 1, 1);
  assert.equal((l1!.edx >>> 28) & 1, 1);
});

test('TSC-deadline is cleared when KVM cannot emulate it; HTT off for one vCPU', () => {
  const [l1] = filterCpuid([leaf(1, { ecx: 1 << 24, edx: 1 << 28 })], { vcpuId: 0, vcpuCount: 1, tscDeadline: false });
  assert.equal((l1!.ecx >>> 24) & 1, 0);
  assert.equal((l1!.edx >>> 28) & 1, 0);
});

test('the PMU leaf is hidden and topology leaves name this vCPU', () => {
  const out = filterCpuid([leaf(0xa, { eax: 0x0703_0804 }), leaf(0xb, { edx: 9 }), leaf(0x1f, { edx: 9 })], { vcpuId: 1, vcpuCount: 2, tscDeadline: false });
  assert.deepEqual([out[0]!.eax, out[1]!.edx, out[2]!.edx], [0, 1, 1]);
});

test('every register stays an unsigned 32-bit value and other leaves pass through', () => {
  const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
  fc.assert(fc.property(fc.array(fc.record({ function: u32, index: u32, flags: u32, eax: u32, ebx: u32, ecx: u32, edx: u32 })), fc.integer({ min: 0, max: 31 }), (entries, id) => {
    const out = filterCpuid(entries, { vcpuId: id, vcpuCount: 32, tscDeadline: true });
    assert.equal(out.length, entries.length);
    out.forEach((e, i) => {
      for (const r of [e.eax, e.ebx, e.ecx, e.edx]) assert.ok(Number.isInteger(r) && r >= 0 && r <= 0xffff_ffff);
      if (![1, 4, 0xa, 0xb, 0x1f].includes(e.function)) assert.deepEqual(e, entries[i]);
    });
  }));
});
