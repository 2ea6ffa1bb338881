// Loads an ELF kernel through its Xen PVH entry (XEN_ELFNOTE_PHYS32_ENTRY): segments by physical address,
// hvm_start_info with the memory map, command line and initrd, and the 32-bit paging-off entry state.
// It does not detect formats (kernel-loader.ts does) and does not write the MP table.
// Spec: Xen docs/misc/pvh.pandoc; xen/include/public/elfnote.h.

import { type Gpa, gpa } from '../memory/gpa.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { BootCpuState } from '../arch/x86_64/cpu-state.js';
import { buildMemoryMap } from '../arch/x86_64/memory-map.js';
import { setupPvhEntry } from '../arch/x86_64/pvh.js';
import { type BootModule, writeStartInfo } from '../arch/x86_64/start-info.js';
import { type Elf64Image, findNote } from './elf.js';
import { KernelImageError, hex } from './errors.js';
import { type LoadedRange, loadElfSegments, placeInitrd } from './placement.js';

export const XEN_ELFNOTE_OWNER = 'Xen';
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;

export interface KernelBootOptions {
  cmdline: string;
  initrd?: Uint8Array;
}

export interface KernelLoadResult {
  bootCpu: BootCpuState;
  loadedRanges: LoadedRange[];
}

/**
 * The PVH entry point from the Xen PHYS32_ENTRY note, or undefined if the image has none.
 * Linux emits the descriptor as a pointer-sized value (8 bytes on x86-64), others as 4 bytes; both are accepted.
 */
export function findPvhEntry(elf: Elf64Image): Gpa | undefined {
  const note = findNote(elf, XEN_ELFNOTE_OWNER, XEN_ELFNOTE_PHYS32_ENTRY);
  if (!note) return undefined;
  const d = note.desc;
  const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
  let entry: bigint;
  if (d.byteLength === 4) entry = BigInt(view.getUint32(0, true));
  else if (d.byteLength === 8) entry = view.getBigUint64(0, true);
  else throw new KernelImageError('ERR_KERNEL_FORMAT', `Xen PHYS32_ENTRY note has a ${d.byteLength}-byte descriptor; expected 4 or 8`);
  if (entry >= 1n << 32n) {
    throw new KernelImageError('ERR_KERNEL_FORMAT', `PVH entry ${hex(entry)} is not a 32-bit physical address`);
  }
  return gpa(Number(entry));
}

/**
 * Loads the segments and the initrd, writes hvm_start_info and returns common results; shared by the PVH
 * and direct long-mode paths, which differ only in the entry state.
 */
export function loadElfWithStartInfo(mem: GuestMemory, image: Uint8Array, elf: Elf64Image, opts: KernelBootOptions): LoadedRange[] {
  const loadedRanges = loadElfSegments(mem, image, elf);
  const modules: BootModule[] = [];
  if (opts.initrd) {
    const initrd = placeInitrd(mem, opts.initrd, loadedRanges);
    loadedRanges.push(initrd);
    modules.push({ paddr: initrd.start, size: initrd.size });
  }
  writeStartInfo(mem, { cmdline: opts.cmdline, memoryMap: buildMemoryMap(mem.size), modules });
  return loadedRanges;
}

/** Checked before loading: an entry point outside the image's own segments would run garbage. */
export function checkEntryInside(elf: Elf64Image, entry: Gpa, what: string): void {
  const inside = (s: Elf64Image['loadSegments'][number]): boolean =>
    BigInt(entry) >= s.paddr && BigInt(entry) < s.paddr + BigInt(s.memsz);
  if (!elf.loadSegments.some(inside)) {
    throw new KernelImageError('ERR_KERNEL_FORMAT', `${what} ${hex(entry)} is not inside any loaded segment; the image's entry note is wrong`);
  }
}

/** Loads a PVH-capable ELF kernel. Throws ERR_KERNEL_UNSUPPORTED if it has no PHYS32_ENTRY note. */
export function loadPvhKernel(mem: GuestMemory, image: Uint8Array, elf: Elf64Image, opts: KernelBootOptions): KernelLoadResult {
  const entry = findPvhEntry(elf);
  if (entry === undefined) {
    throw new KernelImageError('ERR_KERNEL_UNSUPPORTED', 'ELF has no Xen PHYS32_ENTRY (type 18) note; rebuild the kernel with CONFIG_PVH=y');
  }
  checkEntryInside(elf, entry, 'PVH entry');
  const loadedRanges = loadElfWithStartInfo(mem, image, elf, opts);
  return { bootCpu: setupPvhEntry(mem, entry), loadedRanges };
}
