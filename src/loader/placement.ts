// Where kernel segments and the initrd go in guest RAM, checked before anything is written, so a bad image
// fails with a KernelImageError instead of a guest-memory fault halfway through loading.
// Not a general allocator: it knows the two shapes the loaders need.

import { type Gpa, gpa } from '../memory/gpa.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { lowRamEnd } from '../arch/x86_64/memory-map.js';
import { HIMEM_START } from '../arch/x86_64/layout.js';
import type { Elf64Image } from './elf.js';
import { KernelImageError, hex } from './errors.js';

export const PAGE_SIZE = 4096;

export interface LoadedRange {
  start: Gpa;
  size: number;
  what: 'kernel' | 'initrd';
}

export function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
}

export function alignDown(value: number, align: number): number {
  return Math.floor(value / align) * align;
}

/** The highest end address (exclusive) of the given ranges, or HIMEM_START if there are none. */
export function rangesEnd(ranges: readonly LoadedRange[]): number {
  return ranges.reduce((end, r) => Math.max(end, r.start + r.size), HIMEM_START);
}

/**
 * Copies every PT_LOAD segment to its physical address and zeroes [filesz, memsz).
 * INVARIANT: p_paddr and p_memsz come from the image; every segment is checked to lie in one RAM region
 * at or above 1 MiB before the first byte is written.
 */
export function loadElfSegments(mem: GuestMemory, image: Uint8Array, elf: Elf64Image): LoadedRange[] {
  const segments = elf.loadSegments.filter((s) => s.memsz > 0);
  if (segments.length === 0) {
    throw new KernelImageError('ERR_KERNEL_FORMAT', 'ELF image has no PT_LOAD segment with memory; there is nothing to load');
  }
  for (const s of segments) {
    const where = `segment at paddr ${hex(s.paddr)} (+${hex(s.memsz)})`;
    if (s.paddr < BigInt(HIMEM_START)) {
      throw new KernelImageError('ERR_KERNEL_PLACEMENT', `${where} is below 1 MiB, where the boot structures live; link the kernel at or above ${hex(HIMEM_START)}`);
    }
    if (s.paddr + BigInt(s.memsz) > BigInt(mem.end) || !mem.checkRange(Number(s.paddr), s.memsz)) {
      throw new KernelImageError('ERR_KERNEL_PLACEMENT', `${where} is not inside guest RAM (RAM ends at ${hex(mem.end)}); give the VM more memory or link the kernel lower`);
    }
  }
  return segments.map((s) => {
    const start = Number(s.paddr);
    mem.write(start, image.subarray(s.offset, s.offset + s.filesz));
    mem.fill(start + s.filesz, s.memsz - s.filesz, 0);
    return { start: gpa(start), size: s.memsz, what: 'kernel' as const };
  });
}

/**
 * Copies the initrd to the top of RAM below min(maxEnd, the MMIO hole), page-aligned, above everything in
 * `kernel`. Returns its range.
 */
export function placeInitrd(mem: GuestMemory, initrd: Uint8Array, kernel: readonly LoadedRange[], maxEnd = Number.MAX_SAFE_INTEGER): LoadedRange {
  if (initrd.byteLength === 0) {
    throw new KernelImageError('ERR_KERNEL_PLACEMENT', 'initrd is empty; pass no initrd instead of an empty one');
  }
  const top = Math.min(lowRamEnd(mem.size), maxEnd);
  const start = alignDown(top - initrd.byteLength, PAGE_SIZE);
  const floor = alignUp(rangesEnd(kernel), PAGE_SIZE);
  if (start < floor || !mem.checkRange(start, initrd.byteLength)) {
    throw new KernelImageError('ERR_KERNEL_PLACEMENT', `initrd of ${initrd.byteLength} bytes does not fit between the kernel's end (${hex(floor)}) and ${hex(top)}; give the VM more memory or use a smaller initrd`);
  }
  mem.write(start, initrd);
  return { start: gpa(start), size: initrd.byteLength, what: 'initrd' };
}
