// The guest's physical memory map on x86-64: where RAM is and what is reserved, for a given RAM size.
// One source of truth for the VMM (which regions to back with host memory), the PVH memmap and the Linux
// e820 table. It writes nothing into guest memory.

import { type Gpa, gpa } from '../../memory/gpa.js';
import { BootLayoutError } from './errors.js';
import { EBDA_START, HIMEM_START, MMIO_HOLE_END, MMIO_HOLE_START } from './layout.js';

/** Memory types as e820 and hvm_memmap_table_entry both spell them. */
export const E820_RAM = 1;
export const E820_RESERVED = 2;

export interface MemoryMapEntry {
  addr: Gpa;
  size: number;
  type: typeof E820_RAM | typeof E820_RESERVED;
}

/** The smallest guest this layout supports: low RAM, the reserved EBDA/ROM area, and some RAM above 1 MiB. */
export const MIN_GUEST_RAM = 2 * HIMEM_START;

/**
 * The RAM regions the VMM backs with host memory for `memSizeBytes` of RAM: [0, min(mem, hole)) and, when RAM
 * is larger than the space below the MMIO hole, the rest at [4 GiB, ...). [EBDA_START, 1 MiB) is backed too
 * (the MP table lives there) but reported to the guest as reserved.
 */
export function ramRegionsForSize(memSizeBytes: number): Array<{ start: Gpa; size: number }> {
  if (!Number.isSafeInteger(memSizeBytes) || memSizeBytes < MIN_GUEST_RAM) {
    throw new BootLayoutError('ERR_BOOT_LAYOUT', `guest RAM of ${memSizeBytes} bytes is too small; give the VM at least ${MIN_GUEST_RAM} bytes`);
  }
  const low = Math.min(memSizeBytes, MMIO_HOLE_START);
  const regions = [{ start: gpa(0), size: low }];
  if (memSizeBytes > low) regions.push({ start: gpa(MMIO_HOLE_END), size: memSizeBytes - low });
  return regions;
}

/**
 * The memory map the guest sees, in ascending address order:
 *   RAM      [0, EBDA_START)
 *   reserved [EBDA_START, 1 MiB)           EBDA, VGA hole and BIOS area; the MP table is here
 *   RAM      [1 MiB, min(mem, MMIO hole))
 *   RAM      [4 GiB, 4 GiB + the rest)     only when RAM does not fit below the hole
 */
export function buildMemoryMap(memSizeBytes: number): MemoryMapEntry[] {
  const regions = ramRegionsForSize(memSizeBytes);
  const lowEnd = regions[0]!.size;
  const map: MemoryMapEntry[] = [
    { addr: gpa(0), size: EBDA_START, type: E820_RAM },
    { addr: gpa(EBDA_START), size: HIMEM_START - EBDA_START, type: E820_RESERVED },
    { addr: gpa(HIMEM_START), size: lowEnd - HIMEM_START, type: E820_RAM },
  ];
  const high = regions[1];
  if (high) map.push({ addr: high.start, size: high.size, type: E820_RAM });
  return map;
}

/** The end (exclusive) of the RAM that starts at 1 MiB: where kernels and initrds below 4 GiB must fit. */
export function lowRamEnd(memSizeBytes: number): Gpa {
  return gpa(Math.min(memSizeBytes, MMIO_HOLE_START));
}
