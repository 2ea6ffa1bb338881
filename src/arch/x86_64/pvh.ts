// The CPU state for the Xen PVH 32-bit entry: protected mode with paging off, flat 32-bit segments, a busy
// 32-bit TSS in TR and EBX pointing at hvm_start_info. Paging is left off on purpose: on PVM hosts, 32-bit
// paging built by the VMM triple-faults, while the guest's own switch to long mode works.
// It writes a small GDT so a guest that reloads its segment registers before loading its own GDT still works.
// Spec: Xen docs/misc/pvh.pandoc ("Initial register state").

import type { GuestMemory } from '../../memory/guest-memory.js';
import type { Gpa } from '../../memory/gpa.js';
import {
  type BootCpuState, flatSegment, unusableSegment, X86_CR0_ET, X86_CR0_PE,
} from './cpu-state.js';
import {
  encodeSegmentDescriptor, SEG_TYPE_CODE_XR_ACCESSED, SEG_TYPE_DATA_RW_ACCESSED, tssSegment, writeDescriptors,
} from './descriptors.js';
import { BOOT_GDT_START, START_INFO_START } from './layout.js';

export const PVH_GDT_CODE32 = 0x08;
export const PVH_GDT_DATA32 = 0x10;
export const PVH_GDT_TSS32 = 0x18;
/** A minimal 32-bit TSS (104 bytes); its base is 0 because the ABI leaves base and limit unspecified. */
export const PVH_TSS_LIMIT = 0x67;
const PVH_GDT_ENTRIES = 4;

export const PVH_CODE32 = flatSegment(PVH_GDT_CODE32, SEG_TYPE_CODE_XR_ACCESSED, { db: 1 });
export const PVH_DATA32 = flatSegment(PVH_GDT_DATA32, SEG_TYPE_DATA_RW_ACCESSED, { db: 1 });

/*
 * GDT at BOOT_GDT_START for the PVH entry (limit 0x1f):
 *   0x00 null
 *   0x08 flat 32-bit code, execute/read  (0x00cf9b000000ffff)
 *   0x10 flat 32-bit data, read/write    (0x00cf93000000ffff)
 *   0x18 32-bit busy TSS, base 0, limit 0x67 (0x00008b0000000067)
 */
export function writePvhGdt(mem: GuestMemory): void {
  writeDescriptors(mem, BOOT_GDT_START, [
    0n,
    encodeSegmentDescriptor(PVH_CODE32),
    encodeSegmentDescriptor(PVH_DATA32),
    encodeSegmentDescriptor(tssSegment(PVH_GDT_TSS32, 0, PVH_TSS_LIMIT)),
  ]);
}

/** Writes the PVH GDT and returns the entry state: rip = the PHYS32_ENTRY address, ebx = START_INFO_START. */
export function setupPvhEntry(mem: GuestMemory, entry32: Gpa): BootCpuState {
  writePvhGdt(mem);
  return {
    regs: {
      rip: BigInt(entry32),
      rbx: BigInt(START_INFO_START),
      rflags: 0x2n,
    },
    sregs: {
      cs: { ...PVH_CODE32 },
      ds: { ...PVH_DATA32 },
      es: { ...PVH_DATA32 },
      fs: { ...PVH_DATA32 },
      gs: { ...PVH_DATA32 },
      ss: { ...PVH_DATA32 },
      tr: tssSegment(PVH_GDT_TSS32, 0, PVH_TSS_LIMIT),
      ldt: unusableSegment(),
      gdt: { base: BigInt(BOOT_GDT_START), limit: PVH_GDT_ENTRIES * 8 - 1 },
      idt: { base: 0n, limit: 0 },
      cr0: X86_CR0_PE | X86_CR0_ET,
      cr3: 0n,
      cr4: 0n,
      efer: 0n,
    },
  };
}
