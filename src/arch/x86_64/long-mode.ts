// The direct long-mode entry of swapvisor's guest kit: the VMM builds a GDT with kernel and user segments,
// a TSS with an all-zero I/O permission bitmap, an IDT pointing into the guest's vector table, and identity
// page tables with the U bit, then starts the boot vCPU in 64-bit mode at CPL0. This is not Linux's 64-bit
// boot protocol (linux64-entry.ts) and not PVH (pvh.ts). The contract is written up in docs/boot-protocol.md.
// Spec: Intel SDM Vol. 3A chapters 3, 6, 7 and 9.8.5 (initializing IA-32e mode).

import { gpa, type Gpa } from '../../memory/gpa.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import {
  type BootCpuState, EFER_LMA, EFER_LME, flatSegment, unusableSegment, X86_CR0_ET, X86_CR0_MP, X86_CR0_NE,
  X86_CR0_PE, X86_CR0_PG, X86_CR0_WP, X86_CR4_PAE,
} from './cpu-state.js';
import {
  encodeInterruptGate64, encodeSegmentDescriptor, SEG_TYPE_CODE_XR_ACCESSED, SEG_TYPE_DATA_RW_ACCESSED,
  SYS_TYPE_TSS_AVAILABLE, tssSegment, writeDescriptors, writeIdentityPageTables, writeSystemDescriptor64,
} from './descriptors.js';
import { BootLayoutError } from './errors.js';
import {
  BOOT_GDT_START, BOOT_IDT_START, BOOT_STACK_TOP, BOOT_TSS_START, GDT_KERNEL_CODE, GDT_KERNEL_DATA, GDT_TSS,
  GDT_USER_CODE, GDT_USER_DATA, PML4_START, START_INFO_START,
} from './layout.js';

/** The 104-byte 64-bit TSS, where its I/O bitmap starts. */
export const TSS64_SIZE = 0x68;
/** One bit per port for all 65536 ports. */
export const IO_BITMAP_SIZE = 8192;
/** The TSS limit covers the TSS, the bitmap and the 0xff byte the CPU may read past the bitmap's last byte. */
export const BOOT_TSS_LIMIT = TSS64_SIZE + IO_BITMAP_SIZE + 1 - 1;
/** Null, 4 segments, and a 16-byte TSS descriptor. */
export const BOOT_GDT_ENTRIES = 7;
export const IDT_VECTORS = 256;
export const IDT_GATE_SIZE = 16;
/** Each vector's stub in the guest's vector table is this many bytes: gate i targets vectorTable + 16 * i. */
export const VECTOR_STUB_SIZE = 16;
/** The breakpoint vector, reachable from CPL3 with int3 (the guest kit's system call). */
export const BREAKPOINT_VECTOR = 3;
/** APIC ids are 8 bits and the MP table gives the IOAPIC the id after the last vCPU. */
export const MAX_VCPUS = 254;

export interface LongModeEntryOptions {
  /** The 64-bit kernel entry point (CPL0). */
  entry64: Gpa;
  /** The guest's table of 256 16-byte interrupt stubs. */
  vectorTable: Gpa;
  /** How many vCPUs the VM has; validated here, the APs' own state is the guest's business. */
  vcpuCount: number;
}

/** The segments as the boot vCPU holds them; the GDT bytes are encoded from the same values. */
export const KERNEL_CODE64 = flatSegment(GDT_KERNEL_CODE, SEG_TYPE_CODE_XR_ACCESSED, { l: 1 });
export const KERNEL_DATA = flatSegment(GDT_KERNEL_DATA, SEG_TYPE_DATA_RW_ACCESSED, { db: 1 });
export const USER_DATA = flatSegment(GDT_USER_DATA | 3, SEG_TYPE_DATA_RW_ACCESSED, { db: 1, dpl: 3 });
export const USER_CODE64 = flatSegment(GDT_USER_CODE | 3, SEG_TYPE_CODE_XR_ACCESSED, { l: 1, dpl: 3 });

/*
 * GDT at BOOT_GDT_START (limit 0x37):
 *   0x00 null
 *   0x08 kernel code64  DPL0 L=1  (0x00af9b000000ffff)
 *   0x10 kernel data    DPL0      (0x00cf93000000ffff)
 *   0x18 user data      DPL3      (0x00cff3000000ffff)
 *   0x20 user code64    DPL3 L=1  (0x00affb000000ffff)
 *   0x28 64-bit available TSS, 16 bytes: base BOOT_TSS_START, limit BOOT_TSS_LIMIT, G=0
 */
export function writeBootGdt(mem: GuestMemory): void {
  writeDescriptors(mem, BOOT_GDT_START, [
    0n,
    encodeSegmentDescriptor(KERNEL_CODE64),
    encodeSegmentDescriptor(KERNEL_DATA),
    encodeSegmentDescriptor(USER_DATA),
    encodeSegmentDescriptor(USER_CODE64),
  ]);
  const tss = { ...tssSegment(GDT_TSS, BOOT_TSS_START, BOOT_TSS_LIMIT), type: SYS_TYPE_TSS_AVAILABLE };
  writeSystemDescriptor64(mem, BOOT_GDT_START + GDT_TSS, tss);
}

/*
 * 64-bit TSS at BOOT_TSS_START:
 *   0x00 4 reserved   0x04 8 rsp0 (BOOT_STACK_TOP)   0x0c 8 rsp1   0x14 8 rsp2   0x1c 8 reserved
 *   0x24 7*8 ist1..ist7 (0)   0x5c 8 reserved   0x64 2 reserved   0x66 2 I/O map base (0x68)
 *   0x68 8192 I/O permission bitmap, all zero: CPL3 may use every port
 *   0x2068 1 0xff terminator
 */
export function writeBootTss(mem: GuestMemory): void {
  mem.fill(BOOT_TSS_START, TSS64_SIZE + IO_BITMAP_SIZE, 0);
  mem.writeU64(BOOT_TSS_START + 0x04, BigInt(BOOT_STACK_TOP));
  mem.writeU16(BOOT_TSS_START + 0x66, TSS64_SIZE);
  mem.writeU8(BOOT_TSS_START + TSS64_SIZE + IO_BITMAP_SIZE, 0xff);
}

/** IDT at BOOT_IDT_START: 256 interrupt gates to vectorTable + 16 * i, selector 0x08, IST 0, DPL0 but #BP DPL3. */
export function writeBootIdt(mem: GuestMemory, vectorTable: Gpa): void {
  for (let i = 0; i < IDT_VECTORS; i++) {
    const dpl = i === BREAKPOINT_VECTOR ? 3 : 0;
    const handler = BigInt(vectorTable) + BigInt(i * VECTOR_STUB_SIZE);
    mem.write(BOOT_IDT_START + i * IDT_GATE_SIZE, encodeInterruptGate64(handler, GDT_KERNEL_CODE, dpl));
  }
}

/** The sregs shared by every VMM-built 64-bit entry: paging on with the identity tables, PAE, LME|LMA. */
export function longModeControlRegisters(): { cr0: bigint; cr3: bigint; cr4: bigint; efer: bigint } {
  return {
    cr0: X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP | X86_CR0_PG,
    cr3: BigInt(PML4_START),
    // PAE only: the guest kit is general-registers-only, and this is the state proven on PVM hosts.
    cr4: X86_CR4_PAE,
    efer: EFER_LME | EFER_LMA,
  };
}

/**
 * Writes the GDT, TSS, IDT and identity page tables, and returns the boot vCPU's state:
 * rip = entry64, rsp = BOOT_STACK_TOP, rbx = START_INFO_START (hvm_start_info, as for PVH), rflags = 0x2.
 * The caller writes hvm_start_info itself (start-info.ts).
 */
export function setupLongModeEntry(mem: GuestMemory, opts: LongModeEntryOptions): BootCpuState {
  if (!Number.isInteger(opts.vcpuCount) || opts.vcpuCount < 1 || opts.vcpuCount > MAX_VCPUS) {
    throw new BootLayoutError('ERR_BOOT_LAYOUT', `vcpuCount ${opts.vcpuCount} is out of range; use 1 to ${MAX_VCPUS}`);
  }
  const entry64 = gpa(opts.entry64);
  writeBootGdt(mem);
  writeBootTss(mem);
  writeBootIdt(mem, opts.vectorTable);
  writeIdentityPageTables(mem, { user: true });
  return {
    regs: {
      rip: BigInt(entry64),
      rsp: BigInt(BOOT_STACK_TOP),
      rbx: BigInt(START_INFO_START),
      rflags: 0x2n,
    },
    sregs: {
      cs: { ...KERNEL_CODE64 },
      ds: { ...KERNEL_DATA },
      es: { ...KERNEL_DATA },
      fs: { ...KERNEL_DATA },
      gs: { ...KERNEL_DATA },
      ss: { ...KERNEL_DATA },
      tr: tssSegment(GDT_TSS, BOOT_TSS_START, BOOT_TSS_LIMIT),
      ldt: unusableSegment(),
      gdt: { base: BigInt(BOOT_GDT_START), limit: BOOT_GDT_ENTRIES * 8 - 1 },
      idt: { base: BigInt(BOOT_IDT_START), limit: IDT_VECTORS * IDT_GATE_SIZE - 1 },
      ...longModeControlRegisters(),
    },
  };
}
