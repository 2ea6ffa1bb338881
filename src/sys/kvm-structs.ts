// DataView codecs for the KVM structs swapvisor reads and writes field by field.
// Structs that are only saved and restored whole (xsave, lapic, events, ...) stay opaque bytes.
// Reference: <linux/kvm.h>, <asm/kvm.h>; Documentation/virt/kvm/api.rst.

import type { DescriptorTable, GeneralRegisters, Segment, SpecialRegisters } from '../arch/x86_64/cpu-state.js';
import { GP_REGISTER_NAMES } from '../arch/x86_64/cpu-state.js';
import {
  SIZEOF_KVM_CPUID2_HEADER, SIZEOF_KVM_CPUID_ENTRY2, SIZEOF_KVM_IOEVENTFD, SIZEOF_KVM_IRQFD,
  SIZEOF_KVM_MSRS_HEADER, SIZEOF_KVM_MSR_ENTRY, SIZEOF_KVM_REGS, SIZEOF_KVM_SREGS, SIZEOF_KVM_USERSPACE_MEMORY_REGION,
} from './kvm-abi.js';

const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

// struct kvm_regs: 18 u64 in the order rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags.
export function encodeRegs(regs: GeneralRegisters): Uint8Array {
  const b = new Uint8Array(SIZEOF_KVM_REGS);
  const v = dv(b);
  GP_REGISTER_NAMES.forEach((name, i) => v.setBigUint64(i * 8, BigInt.asUintN(64, regs[name]), true));
  return b;
}

export function decodeRegs(b: Uint8Array): GeneralRegisters {
  const v = dv(b);
  const out = {} as GeneralRegisters;
  GP_REGISTER_NAMES.forEach((name, i) => { out[name] = v.getBigUint64(i * 8, true); });
  return out;
}

// struct kvm_segment (24 bytes):
//   0 u64 base | 8 u32 limit | 12 u16 selector | 14 u8 type | 15 present | 16 dpl | 17 db
//   18 s | 19 l | 20 g | 21 avl | 22 unusable | 23 padding
function writeSegment(v: DataView, off: number, s: Segment): void {
  v.setBigUint64(off, s.base, true);
  v.setUint32(off + 8, s.limit >>> 0, true);
  v.setUint16(off + 12, s.selector, true);
  const bytes = [s.type, s.present, s.dpl, s.db, s.s, s.l, s.g, s.avl, s.unusable];
  bytes.forEach((x, i) => v.setUint8(off + 14 + i, x));
}

function readSegment(v: DataView, off: number): Segment {
  const u8 = (i: number): number => v.getUint8(off + 14 + i);
  return {
    base: v.getBigUint64(off, true), limit: v.getUint32(off + 8, true), selector: v.getUint16(off + 12, true),
    type: u8(0), present: u8(1), dpl: u8(2), db: u8(3), s: u8(4), l: u8(5), g: u8(6), avl: u8(7), unusable: u8(8),
  };
}

// struct kvm_dtable (16 bytes): 0 u64 base | 8 u16 limit | 10 u16 padding[3]
function writeDtable(v: DataView, off: number, t: DescriptorTable): void {
  v.setBigUint64(off, t.base, true);
  v.setUint16(off + 8, t.limit, true);
}
function readDtable(v: DataView, off: number): DescriptorTable {
  return { base: v.getBigUint64(off, true), limit: v.getUint16(off + 8, true) };
}

const SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;

// struct kvm_sregs (312 bytes):
//   0 eight kvm_segment (cs ds es fs gs ss tr ldt) | 192 gdt | 208 idt
//   224 cr0 | 232 cr2 | 240 cr3 | 248 cr4 | 256 cr8 | 264 efer | 272 apic_base
//   280 u64 interrupt_bitmap[4]
export const SREGS_CR0 = 224;
export const SREGS_CR3 = 240;
export const SREGS_CR4 = 248;
export const SREGS_EFER = 264;
export const SREGS_APIC_BASE = 272;

/** Overwrites the fields a loader controls in a kvm_sregs obtained from KVM_GET_SREGS. */
export function patchSregs(b: Uint8Array, s: SpecialRegisters): Uint8Array {
  if (b.byteLength !== SIZEOF_KVM_SREGS) throw new RangeError('kvm_sregs must be 312 bytes');
  const v = dv(b);
  SEGMENTS.forEach((name, i) => writeSegment(v, i * 24, s[name]));
  writeDtable(v, 192, s.gdt);
  writeDtable(v, 208, s.idt);
  v.setBigUint64(SREGS_CR0, s.cr0, true);
  v.setBigUint64(SREGS_CR3, s.cr3, true);
  v.setBigUint64(SREGS_CR4, s.cr4, true);
  v.setBigUint64(SREGS_EFER, s.efer, true);
  return b;
}

export function decodeSregs(b: Uint8Array): SpecialRegisters {
  const v = dv(b);
  const seg = Object.fromEntries(SEGMENTS.map((name, i) => [name, readSegment(v, i * 24)])) as Record<(typeof SEGMENTS)[number], Segment>;
  return {
    ...seg,
    gdt: readDtable(v, 192), idt: readDtable(v, 208),
    cr0: v.getBigUint64(SREGS_CR0, true), cr3: v.getBigUint64(SREGS_CR3, true),
    cr4: v.getBigUint64(SREGS_CR4, true), efer: v.getBigUint64(SREGS_EFER, true),
  };
}

// struct kvm_userspace_memory_region (32 bytes):
//   0 u32 slot | 4 u32 flags | 8 u64 guest_phys_addr | 16 u64 memory_size | 24 u64 userspace_addr
export function encodeMemoryRegion(r: { slot: number; flags: number; guestPhysAddr: number; memorySize: number; userspaceAddr: bigint }): Uint8Array {
  const b = new Uint8Array(SIZEOF_KVM_USERSPACE_MEMORY_REGION);
  const v = dv(b);
  v.setUint32(0, r.slot, true);
  v.setUint32(4, r.flags, true);
  v.setBigUint64(8, BigInt(r.guestPhysAddr), true);
  v.setBigUint64(16, BigInt(r.memorySize), true);
  v.setBigUint64(24, r.userspaceAddr, true);
  return b;
}

export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

// struct kvm_cpuid2: 0 u32 nent | 4 u32 padding | 8 entries[]
// struct kvm_cpuid_entry2 (40 bytes): 0 function | 4 index | 8 flags | 12 eax | 16 ebx | 20 ecx | 24 edx | 28 padding[3]
export function allocCpuid2(maxEntries: number): Uint8Array {
  const b = new Uint8Array(SIZEOF_KVM_CPUID2_HEADER + maxEntries * SIZEOF_KVM_CPUID_ENTRY2);
  dv(b).setUint32(0, maxEntries, true);
  return b;
}

export function decodeCpuid2(b: Uint8Array): CpuidEntry[] {
  const v = dv(b);
  const n = v.getUint32(0, true);
  const out: CpuidEntry[] = [];
  for (let i = 0; i < n; i++) {
    const o = SIZEOF_KVM_CPUID2_HEADER + i * SIZEOF_KVM_CPUID_ENTRY2;
    out.push({
      function: v.getUint32(o, true), index: v.getUint32(o + 4, true), flags: v.getUint32(o + 8, true),
      eax: v.getUint32(o + 12, true), ebx: v.getUint32(o + 16, true), ecx: v.getUint32(o + 20, true), edx: v.getUint32(o + 24, true),
    });
  }
  return out;
}

export function encodeCpuid2(entries: readonly CpuidEntry[]): Uint8Array {
  const b = allocCpuid2(entries.length);
  const v = dv(b);
  entries.forEach((e, i) => {
    const o = SIZEOF_KVM_CPUID2_HEADER + i * SIZEOF_KVM_CPUID_ENTRY2;
    [e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx].forEach((x, k) => v.setUint32(o + k * 4, x >>> 0, true));
  });
  return b;
}

export interface MsrEntry {
  index: number;
  data: bigint;
}

// struct kvm_msrs: 0 u32 nmsrs | 4 u32 pad | 8 entries[]
// struct kvm_msr_entry (16 bytes): 0 u32 index | 4 u32 reserved | 8 u64 data
export function encodeMsrs(entries: readonly MsrEntry[]): Uint8Array {
  const b = new Uint8Array(SIZEOF_KVM_MSRS_HEADER + entries.length * SIZEOF_KVM_MSR_ENTRY);
  const v = dv(b);
  v.setUint32(0, entries.length, true);
  entries.forEach((e, i) => {
    const o = SIZEOF_KVM_MSRS_HEADER + i * SIZEOF_KVM_MSR_ENTRY;
    v.setUint32(o, e.index, true);
    v.setBigUint64(o + 8, BigInt.asUintN(64, e.data), true);
  });
  return b;
}

export function decodeMsrs(b: Uint8Array, count: number): MsrEntry[] {
  const v = dv(b);
  const out: MsrEntry[] = [];
  for (let i = 0; i < count; i++) {
    const o = SIZEOF_KVM_MSRS_HEADER + i * SIZEOF_KVM_MSR_ENTRY;
    out.push({ index: v.getUint32(o, true), data: v.getBigUint64(o + 8, true) });
  }
  return out;
}

// struct kvm_ioeventfd (64 bytes):
//   0 u64 datamatch | 8 u64 addr | 16 u32 len | 20 s32 fd | 24 u32 flags | 28 u8 pad[36]
export function encodeIoeventfd(e: { datamatch: bigint; addr: number; len: number; fd: number; flags: number }): Uint8Array {
  const b = new Uint8Array(SIZEOF_KVM_IOEVENTFD);
  const v = dv(b);
  v.setBigUint64(0, e.datamatch, true);
  v.setBigUint64(8, BigInt(e.addr), true);
  v.setUint32(16, e.len, true);
  v.setInt32(20, e.fd, true);
  v.setUint32(24, e.flags, true);
  return b;
}

// struct kvm_irqfd (32 bytes): 0 u32 fd | 4 u32 gsi | 8 u32 flags | 12 u32 resamplefd | 16 u8 pad[16]
export function encodeIrqfd(e: { fd: number; gsi: number; flags: number; resamplefd?: number }): Uint8Array {
  const b = new Uint8Array(SIZEOF_KVM_IRQFD);
  const v = dv(b);
  v.setUint32(0, e.fd, true);
  v.setUint32(4, e.gsi, true);
  v.setUint32(8, e.flags, true);
  v.setUint32(12, e.resamplefd ?? 0, true);
  return b;
}
