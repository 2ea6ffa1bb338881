// Checks every ABI constant and struct layout swapvisor hard-codes against the kernel headers:
// a C probe generated from the tables below is compiled against <linux/kvm.h> with `cc`, prints
// each C expression as JSON, and each value must equal the TypeScript one. Adding a constant to
// kvm-abi.ts needs one line in ABI_C_EXPR (the completeness test fails until it is there).
// The codecs in kvm-structs.ts are then round-tripped with fast-check and their byte offsets
// checked against the probe's offsetof() values.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { GP_REGISTER_NAMES, type GeneralRegisters, type Segment, type SpecialRegisters } from '../arch/x86_64/cpu-state.js';
import { KVM_FPU_FCW, KVM_FPU_MXCSR } from '../arch/x86_64/fpu.js';
import * as abi from './kvm-abi.js';
import {
  SREGS_APIC_BASE, SREGS_CR0, SREGS_CR3, SREGS_CR4, SREGS_EFER, type CpuidEntry, type MsrEntry, allocCpuid2,
  decodeCpuid2, decodeMsrs, decodeRegs, decodeSregs, encodeCpuid2, encodeIoeventfd, encodeIrqfd, encodeMemoryRegion,
  encodeMsrs, encodeRegs, patchSregs,
} from './kvm-structs.js';
import * as nat from './native.js';
import { EAGAIN, EFAULT, EINTR } from './vcpu-thread.js';

// ---------------------------------------------------------------------------------------------
// The tables. Each row: a key, the C expression the probe evaluates, and the TypeScript value.

const sizeOf = (struct: string): string => `sizeof(struct ${struct})`;
const off = (struct: string, field: string): string => `offsetof(struct ${struct}, ${field})`;
/** Offset of a member of one kvm_run exit-union struct, relative to the union's start. */
const runUnion = (member: string): string => `(offsetof(struct kvm_run, ${member}) - offsetof(struct kvm_run, hw))`;

/**
 * C expression for every export of kvm-abi.ts. A name that is not listed here is a macro of the
 * same name in <linux/kvm.h> (see MACRO_NAMES); everything else is spelled out.
 */
const ABI_C_EXPR: Record<string, string> = {
  SIZEOF_KVM_REGS: sizeOf('kvm_regs'),
  SIZEOF_KVM_SREGS: sizeOf('kvm_sregs'),
  SIZEOF_KVM_SEGMENT: sizeOf('kvm_segment'),
  SIZEOF_KVM_FPU: sizeOf('kvm_fpu'),
  SIZEOF_KVM_LAPIC_STATE: sizeOf('kvm_lapic_state'),
  SIZEOF_KVM_XSAVE: sizeOf('kvm_xsave'),
  SIZEOF_KVM_XCRS: sizeOf('kvm_xcrs'),
  SIZEOF_KVM_VCPU_EVENTS: sizeOf('kvm_vcpu_events'),
  SIZEOF_KVM_DEBUGREGS: sizeOf('kvm_debugregs'),
  SIZEOF_KVM_MP_STATE: sizeOf('kvm_mp_state'),
  SIZEOF_KVM_IRQCHIP: sizeOf('kvm_irqchip'),
  SIZEOF_KVM_PIT_STATE2: sizeOf('kvm_pit_state2'),
  SIZEOF_KVM_PIT_CONFIG: sizeOf('kvm_pit_config'),
  SIZEOF_KVM_CLOCK_DATA: sizeOf('kvm_clock_data'),
  SIZEOF_KVM_USERSPACE_MEMORY_REGION: sizeOf('kvm_userspace_memory_region'),
  SIZEOF_KVM_IRQ_LEVEL: sizeOf('kvm_irq_level'),
  SIZEOF_KVM_IOEVENTFD: sizeOf('kvm_ioeventfd'),
  SIZEOF_KVM_IRQFD: sizeOf('kvm_irqfd'),
  SIZEOF_KVM_COALESCED_MMIO_ZONE: sizeOf('kvm_coalesced_mmio_zone'),
  SIZEOF_KVM_CPUID2_HEADER: sizeOf('kvm_cpuid2'),
  SIZEOF_KVM_CPUID_ENTRY2: sizeOf('kvm_cpuid_entry2'),
  SIZEOF_KVM_MSRS_HEADER: sizeOf('kvm_msrs'),
  SIZEOF_KVM_MSR_ENTRY: sizeOf('kvm_msr_entry'),
  SIZEOF_KVM_MSR_LIST_HEADER: sizeOf('kvm_msr_list'),
  KVM_RUN_REQUEST_INTERRUPT_WINDOW: off('kvm_run', 'request_interrupt_window'),
  KVM_RUN_IMMEDIATE_EXIT: off('kvm_run', 'immediate_exit'),
  KVM_RUN_EXIT_REASON: off('kvm_run', 'exit_reason'),
  KVM_RUN_READY_FOR_INTERRUPT_INJECTION: off('kvm_run', 'ready_for_interrupt_injection'),
  KVM_RUN_IF_FLAG: off('kvm_run', 'if_flag'),
  KVM_RUN_FLAGS: off('kvm_run', 'flags'),
  KVM_RUN_CR8: off('kvm_run', 'cr8'),
  KVM_RUN_APIC_BASE: off('kvm_run', 'apic_base'),
  KVM_RUN_EXIT_DATA: off('kvm_run', 'hw'),
};

/** kvm-abi.ts exports that are spelled exactly like a <linux/kvm.h> macro. */
const MACRO_NAMES = Object.keys(abi).filter((k) => !(k in ABI_C_EXPR));

interface Row {
  key: string;
  c: string;
  ts: number;
}

const abiRows: Row[] = Object.entries(abi).map(([key, ts]) => ({ key, c: ABI_C_EXPR[key] ?? key, ts: ts as number }));

/** Layouts hard-coded outside kvm-abi.ts: the codecs, fpu.ts, the exit decoders, the coalesced ring. */
const layoutRows: Row[] = [
  // kvm_regs (kvm-structs.ts encodeRegs/decodeRegs: GP_REGISTER_NAMES order, 8 bytes each)
  ...GP_REGISTER_NAMES.map((r, i) => ({ key: `kvm_regs.${r}`, c: off('kvm_regs', r), ts: i * 8 })),
  // kvm_sregs (kvm-structs.ts)
  ...(['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const).map((s, i) => ({ key: `kvm_sregs.${s}`, c: off('kvm_sregs', s), ts: i * 24 })),
  { key: 'kvm_sregs.gdt', c: off('kvm_sregs', 'gdt'), ts: 192 },
  { key: 'kvm_sregs.idt', c: off('kvm_sregs', 'idt'), ts: 208 },
  { key: 'kvm_sregs.cr0', c: off('kvm_sregs', 'cr0'), ts: SREGS_CR0 },
  { key: 'kvm_sregs.cr2', c: off('kvm_sregs', 'cr2'), ts: 232 },
  { key: 'kvm_sregs.cr3', c: off('kvm_sregs', 'cr3'), ts: SREGS_CR3 },
  { key: 'kvm_sregs.cr4', c: off('kvm_sregs', 'cr4'), ts: SREGS_CR4 },
  { key: 'kvm_sregs.cr8', c: off('kvm_sregs', 'cr8'), ts: 256 },
  { key: 'kvm_sregs.efer', c: off('kvm_sregs', 'efer'), ts: SREGS_EFER },
  { key: 'kvm_sregs.apic_base', c: off('kvm_sregs', 'apic_base'), ts: SREGS_APIC_BASE },
  { key: 'kvm_sregs.interrupt_bitmap', c: off('kvm_sregs', 'interrupt_bitmap'), ts: 280 },
  // kvm_segment
  { key: 'kvm_segment.base', c: off('kvm_segment', 'base'), ts: 0 },
  { key: 'kvm_segment.limit', c: off('kvm_segment', 'limit'), ts: 8 },
  { key: 'kvm_segment.selector', c: off('kvm_segment', 'selector'), ts: 12 },
  ...(['type', 'present', 'dpl', 'db', 's', 'l', 'g', 'avl', 'unusable'] as const)
    .map((f, i) => ({ key: `kvm_segment.${f}`, c: off('kvm_segment', f), ts: 14 + i })),
  // kvm_dtable
  { key: 'kvm_dtable.base', c: off('kvm_dtable', 'base'), ts: 0 },
  { key: 'kvm_dtable.limit', c: off('kvm_dtable', 'limit'), ts: 8 },
  { key: 'sizeof kvm_dtable', c: sizeOf('kvm_dtable'), ts: 16 },
  // kvm_userspace_memory_region
  { key: 'kvm_userspace_memory_region.slot', c: off('kvm_userspace_memory_region', 'slot'), ts: 0 },
  { key: 'kvm_userspace_memory_region.flags', c: off('kvm_userspace_memory_region', 'flags'), ts: 4 },
  { key: 'kvm_userspace_memory_region.guest_phys_addr', c: off('kvm_userspace_memory_region', 'guest_phys_addr'), ts: 8 },
  { key: 'kvm_userspace_memory_region.memory_size', c: off('kvm_userspace_memory_region', 'memory_size'), ts: 16 },
  { key: 'kvm_userspace_memory_region.userspace_addr', c: off('kvm_userspace_memory_region', 'userspace_addr'), ts: 24 },
  // kvm_cpuid2 / kvm_cpuid_entry2
  { key: 'kvm_cpuid2.nent', c: off('kvm_cpuid2', 'nent'), ts: 0 },
  { key: 'kvm_cpuid2.entries', c: off('kvm_cpuid2', 'entries'), ts: abi.SIZEOF_KVM_CPUID2_HEADER },
  ...(['function', 'index', 'flags', 'eax', 'ebx', 'ecx', 'edx'] as const)
    .map((f, i) => ({ key: `kvm_cpuid_entry2.${f}`, c: off('kvm_cpuid_entry2', f), ts: i * 4 })),
  // kvm_msrs / kvm_msr_entry / kvm_msr_list
  { key: 'kvm_msrs.nmsrs', c: off('kvm_msrs', 'nmsrs'), ts: 0 },
  { key: 'kvm_msrs.entries', c: off('kvm_msrs', 'entries'), ts: abi.SIZEOF_KVM_MSRS_HEADER },
  { key: 'kvm_msr_entry.index', c: off('kvm_msr_entry', 'index'), ts: 0 },
  { key: 'kvm_msr_entry.data', c: off('kvm_msr_entry', 'data'), ts: 8 },
  { key: 'kvm_msr_list.nmsrs', c: off('kvm_msr_list', 'nmsrs'), ts: 0 },
  { key: 'kvm_msr_list.indices', c: off('kvm_msr_list', 'indices'), ts: 4 },
  // kvm_ioeventfd / kvm_irqfd
  { key: 'kvm_ioeventfd.datamatch', c: off('kvm_ioeventfd', 'datamatch'), ts: 0 },
  { key: 'kvm_ioeventfd.addr', c: off('kvm_ioeventfd', 'addr'), ts: 8 },
  { key: 'kvm_ioeventfd.len', c: off('kvm_ioeventfd', 'len'), ts: 16 },
  { key: 'kvm_ioeventfd.fd', c: off('kvm_ioeventfd', 'fd'), ts: 20 },
  { key: 'kvm_ioeventfd.flags', c: off('kvm_ioeventfd', 'flags'), ts: 24 },
  { key: 'kvm_irqfd.fd', c: off('kvm_irqfd', 'fd'), ts: 0 },
  { key: 'kvm_irqfd.gsi', c: off('kvm_irqfd', 'gsi'), ts: 4 },
  { key: 'kvm_irqfd.flags', c: off('kvm_irqfd', 'flags'), ts: 8 },
  { key: 'kvm_irqfd.resamplefd', c: off('kvm_irqfd', 'resamplefd'), ts: 12 },
  // kvm.ts: registerCoalescedMmio, irqLine, createPit2, getIrqchip
  { key: 'kvm_coalesced_mmio_zone.addr', c: off('kvm_coalesced_mmio_zone', 'addr'), ts: 0 },
  { key: 'kvm_coalesced_mmio_zone.size', c: off('kvm_coalesced_mmio_zone', 'size'), ts: 8 },
  { key: 'kvm_coalesced_mmio_zone.pio', c: off('kvm_coalesced_mmio_zone', 'pio'), ts: 12 },
  { key: 'kvm_irq_level.irq', c: off('kvm_irq_level', 'irq'), ts: 0 },
  { key: 'kvm_irq_level.level', c: off('kvm_irq_level', 'level'), ts: 4 },
  { key: 'kvm_pit_config.flags', c: off('kvm_pit_config', 'flags'), ts: 0 },
  { key: 'kvm_irqchip.chip_id', c: off('kvm_irqchip', 'chip_id'), ts: 0 },
  { key: 'kvm_mp_state.mp_state', c: off('kvm_mp_state', 'mp_state'), ts: 0 },
  // src/vmm/coalesced-ring.ts
  { key: 'kvm_coalesced_mmio_ring.first', c: off('kvm_coalesced_mmio_ring', 'first'), ts: 0 },
  { key: 'kvm_coalesced_mmio_ring.last', c: off('kvm_coalesced_mmio_ring', 'last'), ts: 4 },
  { key: 'kvm_coalesced_mmio_ring.coalesced_mmio', c: off('kvm_coalesced_mmio_ring', 'coalesced_mmio'), ts: 8 },
  { key: 'kvm_coalesced_mmio.phys_addr', c: off('kvm_coalesced_mmio', 'phys_addr'), ts: 0 },
  { key: 'kvm_coalesced_mmio.len', c: off('kvm_coalesced_mmio', 'len'), ts: 8 },
  { key: 'kvm_coalesced_mmio.pio', c: off('kvm_coalesced_mmio', 'pio'), ts: 12 },
  { key: 'kvm_coalesced_mmio.data', c: off('kvm_coalesced_mmio', 'data'), ts: 16 },
  { key: 'sizeof kvm_coalesced_mmio', c: sizeOf('kvm_coalesced_mmio'), ts: 24 },
  {
    key: 'KVM_COALESCED_MMIO_MAX (4 KiB page)',
    c: '((4096 - sizeof(struct kvm_coalesced_mmio_ring)) / sizeof(struct kvm_coalesced_mmio))',
    ts: Math.floor((4096 - 8) / 24),
  },
  // src/arch/x86_64/fpu.ts
  { key: 'kvm_fpu.fcw', c: off('kvm_fpu', 'fcw'), ts: KVM_FPU_FCW },
  { key: 'kvm_fpu.mxcsr', c: off('kvm_fpu', 'mxcsr'), ts: KVM_FPU_MXCSR },
  // kvm_run exit union, relative to KVM_RUN_EXIT_DATA (src/vmm/vcpu.ts, src/vmm/exits.ts)
  { key: 'kvm_run.io.direction', c: runUnion('io.direction'), ts: 0 },
  { key: 'kvm_run.io.size', c: runUnion('io.size'), ts: 1 },
  { key: 'kvm_run.io.port', c: runUnion('io.port'), ts: 2 },
  { key: 'kvm_run.io.count', c: runUnion('io.count'), ts: 4 },
  { key: 'kvm_run.io.data_offset', c: runUnion('io.data_offset'), ts: 8 },
  { key: 'kvm_run.mmio.phys_addr', c: runUnion('mmio.phys_addr'), ts: 0 },
  { key: 'kvm_run.mmio.data', c: runUnion('mmio.data'), ts: 8 },
  { key: 'kvm_run.mmio.len', c: runUnion('mmio.len'), ts: 16 },
  { key: 'kvm_run.mmio.is_write', c: runUnion('mmio.is_write'), ts: 20 },
  { key: 'kvm_run.internal.suberror', c: runUnion('internal.suberror'), ts: 0 },
  { key: 'kvm_run.internal.ndata', c: runUnion('internal.ndata'), ts: 4 },
  { key: 'kvm_run.internal.data', c: runUnion('internal.data'), ts: 8 },
  { key: 'kvm_run.fail_entry.hardware_entry_failure_reason', c: runUnion('fail_entry.hardware_entry_failure_reason'), ts: 0 },
  { key: 'kvm_run.fail_entry.cpu', c: runUnion('fail_entry.cpu'), ts: 8 },
  { key: 'kvm_run.system_event.type', c: runUnion('system_event.type'), ts: 0 },
  { key: 'kvm_run.system_event.ndata', c: runUnion('system_event.ndata'), ts: 4 },
  { key: 'kvm_run.system_event.data', c: runUnion('system_event.data'), ts: 8 },
];

/** native.ts and vcpu-thread.ts constants, against the libc headers. */
const libcRows: Row[] = [
  ...(['O_RDONLY', 'O_RDWR', 'O_NONBLOCK', 'PROT_READ', 'PROT_WRITE', 'MAP_SHARED', 'MAP_PRIVATE', 'MAP_POPULATE',
    'MAP_NORESERVE', 'MADV_DONTNEED', 'SOCK_STREAM', 'SOCK_SEQPACKET', 'SOCK_NONBLOCK', 'EFD_NONBLOCK',
    'MFD_ALLOW_SEALING'] as const).map((k) => ({ key: k, c: k, ts: nat[k] })),
  { key: 'EINTR', c: 'EINTR', ts: EINTR },
  { key: 'EAGAIN', c: 'EAGAIN', ts: EAGAIN },
  { key: 'EFAULT', c: 'EFAULT', ts: EFAULT },
];

const ALL_ROWS = [...abiRows, ...layoutRows, ...libcRows];

// ---------------------------------------------------------------------------------------------
// The probe.

function probeSource(rows: readonly Row[]): string {
  const lines = rows.map((r) => `  P(${JSON.stringify(r.key)}, ${r.c});`);
  return [
    '#define _GNU_SOURCE',
    '#include <errno.h>',
    '#include <fcntl.h>',
    '#include <stddef.h>',
    '#include <stdio.h>',
    '#include <sys/eventfd.h>',
    '#include <sys/mman.h>',
    '#include <sys/socket.h>',
    '#include <linux/kvm.h>',
    'static int first = 1;',
    'static void emit(const char *k, unsigned long long v) {',
    '  printf("%s\\n  \\"%s\\": %llu", first ? "{" : ",", k, v);',
    '  first = 0;',
    '}',
    '#define P(k, expr) emit(k, (unsigned long long)(expr))',
    'int main(void) {',
    ...lines,
    '  printf("\\n}\\n");',
    '  return 0;',
    '}',
    '',
  ].join('\n');
}

let probeDir: string | undefined;
let probe: Record<string, number> = {};

function c(key: string): number {
  const v = probe[key];
  assert.equal(typeof v, 'number', `the probe printed no value for ${key}`);
  return v as number;
}

before(() => {
  probeDir = mkdtempSync(path.join(tmpdir(), 'swapvisor-kvm-abi-'));
  const src = path.join(probeDir, 'probe.c');
  const exe = path.join(probeDir, 'probe');
  writeFileSync(src, probeSource(ALL_ROWS));
  // -Werror: an unknown macro or field must fail the build, not silently become 0.
  execFileSync('cc', ['-std=gnu11', '-Wall', '-Werror', '-o', exe, src], { stdio: ['ignore', 'pipe', 'pipe'] });
  probe = JSON.parse(execFileSync(exe, { encoding: 'utf8' })) as Record<string, number>;
});

after(() => {
  if (probeDir) rmSync(probeDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('kvm-abi.ts against <linux/kvm.h>', () => {
  it('the probe covers every export of kvm-abi.ts, and every export is a number', () => {
    for (const [k, v] of Object.entries(abi)) assert.equal(typeof v, 'number', `${k} is not a number`);
    // Everything without an explicit C expression must look like a kernel macro name.
    for (const k of MACRO_NAMES) assert.match(k, /^KVM_[A-Z0-9_]+$/, `${k} needs an entry in ABI_C_EXPR`);
    assert.ok(abiRows.length >= 130, `only ${abiRows.length} kvm-abi.ts exports probed`);
  });

  it('ioctl request numbers, struct sizes, capabilities, exit reasons and flags match', () => {
    const mismatches = abiRows.filter((r) => c(r.key) !== r.ts)
      .map((r) => `${r.key}: ts=0x${r.ts.toString(16)} kernel(${r.c})=0x${c(r.key).toString(16)}`);
    assert.deepEqual(mismatches, []);
  });

  it('struct layouts used by the codecs, fpu.ts and the exit decoders match', () => {
    const mismatches = layoutRows.filter((r) => c(r.key) !== r.ts).map((r) => `${r.key}: ts=${r.ts} kernel=${c(r.key)}`);
    assert.deepEqual(mismatches, []);
  });

  it('native.ts and vcpu-thread.ts constants match the libc headers', () => {
    const mismatches = libcRows.filter((r) => c(r.key) !== r.ts).map((r) => `${r.key}: ts=${r.ts} libc=${c(r.key)}`);
    assert.deepEqual(mismatches, []);
  });

  it('the ioctl encoder yields the numbers spelled out in api.rst', () => {
    // Independent of the probe: a few hand-checked values from Documentation/virt/kvm/api.rst.
    assert.equal(abi.KVM_GET_API_VERSION, 0xae00);
    assert.equal(abi.KVM_RUN, 0xae80);
    assert.equal(abi.KVM_GET_REGS, 0x8090ae81);
    assert.equal(abi.KVM_SET_USER_MEMORY_REGION, 0x4020ae46);
    assert.equal(abi.KVM_GET_SUPPORTED_CPUID, 0xc008ae05);
  });
});

// ---------------------------------------------------------------------------------------------
// Codecs.

const u64 = fc.bigUintN(64);
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u8 = fc.integer({ min: 0, max: 0xff });

const arbRegs: fc.Arbitrary<GeneralRegisters> = fc.record(
  Object.fromEntries(GP_REGISTER_NAMES.map((n) => [n, u64])) as Record<keyof GeneralRegisters, fc.Arbitrary<bigint>>,
);

const arbSegment: fc.Arbitrary<Segment> = fc.record({
  base: u64, limit: u32, selector: u16, type: u8, present: u8, dpl: u8, db: u8, s: u8, l: u8, g: u8, avl: u8, unusable: u8,
});

const arbSregs: fc.Arbitrary<SpecialRegisters> = fc.record({
  cs: arbSegment, ds: arbSegment, es: arbSegment, fs: arbSegment, gs: arbSegment, ss: arbSegment, tr: arbSegment, ldt: arbSegment,
  gdt: fc.record({ base: u64, limit: u16 }), idt: fc.record({ base: u64, limit: u16 }),
  cr0: u64, cr3: u64, cr4: u64, efer: u64,
});

const arbCpuid: fc.Arbitrary<CpuidEntry> = fc.record({ function: u32, index: u32, flags: u32, eax: u32, ebx: u32, ecx: u32, edx: u32 });
const arbMsr: fc.Arbitrary<MsrEntry> = fc.record({ index: u32, data: u64 });

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

describe('kvm-structs.ts codecs', () => {
  it('encodeRegs/decodeRegs round-trip any 64-bit values', () => {
    fc.assert(fc.property(arbRegs, (regs) => {
      const b = encodeRegs(regs);
      assert.equal(b.byteLength, c('SIZEOF_KVM_REGS'));
      assert.deepEqual(decodeRegs(b), regs);
    }));
  });

  it('encodeRegs stores negative bigints as their two\'s complement', () => {
    const regs = Object.fromEntries(GP_REGISTER_NAMES.map((n) => [n, -1n])) as GeneralRegisters;
    const back = decodeRegs(encodeRegs(regs));
    for (const n of GP_REGISTER_NAMES) assert.equal(back[n], 0xffff_ffff_ffff_ffffn);
  });

  it('encodeRegs puts each register at its kvm_regs offset', () => {
    const regs = Object.fromEntries(GP_REGISTER_NAMES.map((n, i) => [n, 0x1111_0000_0000_0000n + BigInt(i)])) as GeneralRegisters;
    const v = view(encodeRegs(regs));
    for (const n of GP_REGISTER_NAMES) assert.equal(v.getBigUint64(c(`kvm_regs.${n}`), true), regs[n], n);
  });

  it('patchSregs/decodeSregs round-trip random segments, tables and control registers', () => {
    fc.assert(fc.property(arbSregs, fc.uint8Array({ minLength: 312, maxLength: 312 }), (s, initial) => {
      const b = patchSregs(Uint8Array.from(initial), s);
      assert.deepEqual(decodeSregs(b), s);
    }));
  });

  it('patchSregs keeps the bytes KVM owns (cr2, cr8, apic_base, interrupt bitmap, padding)', () => {
    fc.assert(fc.property(arbSregs, fc.uint8Array({ minLength: 312, maxLength: 312 }), (s, initial) => {
      const b = patchSregs(Uint8Array.from(initial), s);
      const kept: Array<[number, number]> = [
        [c('kvm_sregs.cr2'), 8], [c('kvm_sregs.cr8'), 8], [c('kvm_sregs.apic_base'), 8],
        [c('kvm_sregs.interrupt_bitmap'), c('SIZEOF_KVM_SREGS') - c('kvm_sregs.interrupt_bitmap')],
        [c('kvm_sregs.gdt') + 10, 6], [c('kvm_sregs.idt') + 10, 6],
        ...[0, 1, 2, 3, 4, 5, 6, 7].map((i): [number, number] => [i * 24 + 23, 1]),
      ];
      for (const [o, n] of kept) assert.deepEqual(b.subarray(o, o + n), initial.subarray(o, o + n), `byte ${o}`);
    }));
  });

  it('patchSregs writes each field at its kvm_sregs/kvm_segment offset', () => {
    const seg = (k: number): Segment => ({
      base: 0xb000_0000_0000_0000n + BigInt(k), limit: 0x1000_0000 + k, selector: 0x100 + k, type: 0x10 + k, present: 0x20 + k,
      dpl: 0x30 + k, db: 0x40 + k, s: 0x50 + k, l: 0x60 + k, g: 0x70 + k, avl: 0x80 + k, unusable: 0x90 + k,
    });
    const names = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
    const s = {
      ...Object.fromEntries(names.map((n, k) => [n, seg(k)])),
      gdt: { base: 0x6d6d_0000_0000_0001n, limit: 0x1234 }, idt: { base: 0x6e6e_0000_0000_0002n, limit: 0x5678 },
      cr0: 0xc0n, cr3: 0xc3n, cr4: 0xc4n, efer: 0xeeeen,
    } as SpecialRegisters;
    const v = view(patchSregs(new Uint8Array(c('SIZEOF_KVM_SREGS')), s));
    names.forEach((n, k) => {
      const o = c(`kvm_sregs.${n}`);
      const want = seg(k);
      assert.equal(v.getBigUint64(o + c('kvm_segment.base'), true), want.base);
      assert.equal(v.getUint32(o + c('kvm_segment.limit'), true), want.limit);
      assert.equal(v.getUint16(o + c('kvm_segment.selector'), true), want.selector);
      for (const f of ['type', 'present', 'dpl', 'db', 's', 'l', 'g', 'avl', 'unusable'] as const) {
        assert.equal(v.getUint8(o + c(`kvm_segment.${f}`)), want[f], `${n}.${f}`);
      }
    });
    assert.equal(v.getBigUint64(c('kvm_sregs.gdt') + c('kvm_dtable.base'), true), s.gdt.base);
    assert.equal(v.getUint16(c('kvm_sregs.gdt') + c('kvm_dtable.limit'), true), s.gdt.limit);
    assert.equal(v.getBigUint64(c('kvm_sregs.idt') + c('kvm_dtable.base'), true), s.idt.base);
    assert.equal(v.getUint16(c('kvm_sregs.idt') + c('kvm_dtable.limit'), true), s.idt.limit);
    for (const r of ['cr0', 'cr3', 'cr4', 'efer'] as const) assert.equal(v.getBigUint64(c(`kvm_sregs.${r}`), true), s[r], r);
  });

  it('patchSregs rejects a buffer that is not a kvm_sregs', () => {
    fc.assert(fc.property(arbSregs, fc.integer({ min: 0, max: 1024 }).filter((n) => n !== 312), (s, n) => {
      assert.throws(() => patchSregs(new Uint8Array(n), s), RangeError);
    }), { numRuns: 20 });
  });

  it('encodeCpuid2/decodeCpuid2 round-trip random entry lists', () => {
    fc.assert(fc.property(fc.array(arbCpuid, { maxLength: 80 }), (entries) => {
      const b = encodeCpuid2(entries);
      assert.equal(b.byteLength, c('SIZEOF_KVM_CPUID2_HEADER') + entries.length * c('SIZEOF_KVM_CPUID_ENTRY2'));
      assert.equal(view(b).getUint32(c('kvm_cpuid2.nent'), true), entries.length);
      assert.deepEqual(decodeCpuid2(b), entries);
    }));
  });

  it('encodeCpuid2 puts each field at its kvm_cpuid_entry2 offset and leaves padding zero', () => {
    const entries: CpuidEntry[] = [0, 1, 2].map((i) => ({
      function: 0x8000_0000 + i, index: 0x10 + i, flags: 0x20 + i, eax: 0xa0a0_0000 + i, ebx: 0xb0b0_0000 + i, ecx: 0xc0c0_0000 + i, edx: 0xd0d0_0000 + i,
    }));
    const b = encodeCpuid2(entries);
    const v = view(b);
    entries.forEach((e, i) => {
      const base = c('kvm_cpuid2.entries') + i * c('SIZEOF_KVM_CPUID_ENTRY2');
      for (const f of ['function', 'index', 'flags', 'eax', 'ebx', 'ecx', 'edx'] as const) {
        assert.equal(v.getUint32(base + c(`kvm_cpuid_entry2.${f}`), true), e[f], `entry ${i} ${f}`);
      }
      const pad = base + c('kvm_cpuid_entry2.edx') + 4;
      assert.deepEqual([...b.subarray(pad, base + c('SIZEOF_KVM_CPUID_ENTRY2'))], new Array(12).fill(0));
    });
  });

  it('allocCpuid2 sizes the buffer and sets nent to the capacity', () => {
    const b = allocCpuid2(7);
    assert.equal(b.byteLength, c('SIZEOF_KVM_CPUID2_HEADER') + 7 * c('SIZEOF_KVM_CPUID_ENTRY2'));
    assert.equal(view(b).getUint32(c('kvm_cpuid2.nent'), true), 7);
    assert.equal(decodeCpuid2(b).length, 7);
  });

  it('encodeMsrs/decodeMsrs round-trip random MSR lists', () => {
    fc.assert(fc.property(fc.array(arbMsr, { maxLength: 80 }), (entries) => {
      const b = encodeMsrs(entries);
      assert.equal(b.byteLength, c('SIZEOF_KVM_MSRS_HEADER') + entries.length * c('SIZEOF_KVM_MSR_ENTRY'));
      assert.equal(view(b).getUint32(c('kvm_msrs.nmsrs'), true), entries.length);
      assert.deepEqual(decodeMsrs(b, entries.length), entries);
    }));
  });

  it('encodeMsrs puts index and data at their kvm_msr_entry offsets', () => {
    const entries: MsrEntry[] = [{ index: 0xc000_0080, data: 0xdead_beef_0000_0d00n }, { index: 0x10, data: 0xffff_ffff_ffff_ffffn }];
    const v = view(encodeMsrs(entries));
    entries.forEach((e, i) => {
      const base = c('kvm_msrs.entries') + i * c('SIZEOF_KVM_MSR_ENTRY');
      assert.equal(v.getUint32(base + c('kvm_msr_entry.index'), true), e.index);
      assert.equal(v.getBigUint64(base + c('kvm_msr_entry.data'), true), e.data);
    });
  });

  it('encodeMemoryRegion, encodeIoeventfd and encodeIrqfd put each field at its C offset', () => {
    const r = view(encodeMemoryRegion({ slot: 3, flags: 1, guestPhysAddr: 0x1_0000_0000, memorySize: 0x4000_0000, userspaceAddr: 0x7f12_3456_7000n }));
    assert.equal(r.byteLength, c('SIZEOF_KVM_USERSPACE_MEMORY_REGION'));
    assert.equal(r.getUint32(c('kvm_userspace_memory_region.slot'), true), 3);
    assert.equal(r.getUint32(c('kvm_userspace_memory_region.flags'), true), 1);
    assert.equal(r.getBigUint64(c('kvm_userspace_memory_region.guest_phys_addr'), true), 0x1_0000_0000n);
    assert.equal(r.getBigUint64(c('kvm_userspace_memory_region.memory_size'), true), 0x4000_0000n);
    assert.equal(r.getBigUint64(c('kvm_userspace_memory_region.userspace_addr'), true), 0x7f12_3456_7000n);

    const e = view(encodeIoeventfd({ datamatch: 0x1122_3344_5566_7788n, addr: 0x3f8, len: 1, fd: 42, flags: abi.KVM_IOEVENTFD_FLAG_PIO }));
    assert.equal(e.byteLength, c('SIZEOF_KVM_IOEVENTFD'));
    assert.equal(e.getBigUint64(c('kvm_ioeventfd.datamatch'), true), 0x1122_3344_5566_7788n);
    assert.equal(e.getBigUint64(c('kvm_ioeventfd.addr'), true), 0x3f8n);
    assert.equal(e.getUint32(c('kvm_ioeventfd.len'), true), 1);
    assert.equal(e.getInt32(c('kvm_ioeventfd.fd'), true), 42);
    assert.equal(e.getUint32(c('kvm_ioeventfd.flags'), true), c('KVM_IOEVENTFD_FLAG_PIO'));

    const q = view(encodeIrqfd({ fd: 7, gsi: 4, flags: abi.KVM_IRQFD_FLAG_DEASSIGN, resamplefd: 9 }));
    assert.equal(q.byteLength, c('SIZEOF_KVM_IRQFD'));
    assert.equal(q.getUint32(c('kvm_irqfd.fd'), true), 7);
    assert.equal(q.getUint32(c('kvm_irqfd.gsi'), true), 4);
    assert.equal(q.getUint32(c('kvm_irqfd.flags'), true), c('KVM_IRQFD_FLAG_DEASSIGN'));
    assert.equal(q.getUint32(c('kvm_irqfd.resamplefd'), true), 9);
    assert.equal(view(encodeIrqfd({ fd: 7, gsi: 4, flags: 0 })).getUint32(c('kvm_irqfd.resamplefd'), true), 0);
  });
});
