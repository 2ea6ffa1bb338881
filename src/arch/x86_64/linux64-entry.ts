// The CPU state for Linux's 64-bit boot protocol entry (bzImage, startup_64 at load address + 0x200): long
// mode with identity page tables, a GDT holding __BOOT_CS (0x10) and __BOOT_DS (0x18), interrupts off and
// RSI pointing at boot_params. It does not parse the bzImage (src/loader/bzimage.ts does).
// Spec: Linux Documentation/arch/x86/boot.rst, "64-bit Boot Protocol".

import type { Gpa } from '../../memory/gpa.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { type BootCpuState, flatSegment, unusableSegment } from './cpu-state.js';
import {
  encodeSegmentDescriptor, SEG_TYPE_CODE_XR_ACCESSED, SEG_TYPE_DATA_RW_ACCESSED, SYS_TYPE_TSS_AVAILABLE,
  tssSegment, writeDescriptors, writeIdentityPageTables, writeSystemDescriptor64,
} from './descriptors.js';
import { BOOT_GDT_START, BOOT_STACK_TOP, ZERO_PAGE_START } from './layout.js';
import { longModeControlRegisters } from './long-mode.js';

export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;
export const LINUX_GDT_TSS = 0x20;
/** TR must hold a usable busy TSS on VT-x; Linux loads its own before it needs one, so a minimal one at 0. */
const LINUX_TSS_LIMIT = 0x67;
/** Null, unused, code, data, and a 16-byte TSS descriptor. */
const LINUX_GDT_ENTRIES = 6;

export const LINUX_BOOT_CS = flatSegment(BOOT_CS, SEG_TYPE_CODE_XR_ACCESSED, { l: 1 });
export const LINUX_BOOT_DS = flatSegment(BOOT_DS, SEG_TYPE_DATA_RW_ACCESSED, { db: 1 });

/*
 * GDT at BOOT_GDT_START for the Linux 64-bit entry (limit 0x2f):
 *   0x00 null
 *   0x08 null (unused, matching the kernel's own GDT layout)
 *   0x10 __BOOT_CS: flat code64, execute/read  (0x00af9b000000ffff)
 *   0x18 __BOOT_DS: flat data, read/write      (0x00cf93000000ffff)
 *   0x20 64-bit available TSS, 16 bytes, base 0, limit 0x67
 */
export function writeLinuxBootGdt(mem: GuestMemory): void {
  writeDescriptors(mem, BOOT_GDT_START, [
    0n, 0n, encodeSegmentDescriptor(LINUX_BOOT_CS), encodeSegmentDescriptor(LINUX_BOOT_DS),
  ]);
  const tss = { ...tssSegment(LINUX_GDT_TSS, 0, LINUX_TSS_LIMIT), type: SYS_TYPE_TSS_AVAILABLE };
  writeSystemDescriptor64(mem, BOOT_GDT_START + LINUX_GDT_TSS, tss);
}

/**
 * Writes the GDT and identity page tables (no U bit) and returns the entry state:
 * rip = startup64, rsi = ZERO_PAGE_START, rflags = 0x2 (IF clear).
 */
export function setupLinux64Entry(mem: GuestMemory, startup64: Gpa): BootCpuState {
  writeLinuxBootGdt(mem);
  writeIdentityPageTables(mem, { user: false });
  return {
    regs: {
      rip: BigInt(startup64),
      rsi: BigInt(ZERO_PAGE_START),
      rsp: BigInt(BOOT_STACK_TOP),
      rflags: 0x2n,
    },
    sregs: {
      cs: { ...LINUX_BOOT_CS },
      ds: { ...LINUX_BOOT_DS },
      es: { ...LINUX_BOOT_DS },
      fs: { ...LINUX_BOOT_DS },
      gs: { ...LINUX_BOOT_DS },
      ss: { ...LINUX_BOOT_DS },
      tr: tssSegment(LINUX_GDT_TSS, 0, LINUX_TSS_LIMIT),
      ldt: unusableSegment(),
      gdt: { base: BigInt(BOOT_GDT_START), limit: LINUX_GDT_ENTRIES * 8 - 1 },
      idt: { base: 0n, limit: 0 },
      ...longModeControlRegisters(),
    },
  };
}
