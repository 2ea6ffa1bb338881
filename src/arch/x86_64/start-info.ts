// Writes the PVH boot information, struct hvm_start_info (version 1), with its memory map, module list and
// command line. It does not choose where the initrd goes (the loaders do) and does not set up registers.
// Spec: Xen xen/include/public/arch-x86/hvm/start_info.h and docs/misc/pvh.pandoc.

import { type Gpa, gpa } from '../../memory/gpa.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { writeCmdline } from './cmdline.js';
import { BootLayoutError } from './errors.js';
import {
  START_INFO_MEMMAP_MAX_ENTRIES, START_INFO_MEMMAP_START, START_INFO_MODLIST_MAX_ENTRIES,
  START_INFO_MODLIST_START, START_INFO_START,
} from './layout.js';
import type { MemoryMapEntry } from './memory-map.js';

export const XEN_HVM_START_MAGIC_VALUE = 0x336ec578;
export const HVM_START_INFO_VERSION = 1;
export const HVM_START_INFO_SIZE = 56;
export const HVM_MODLIST_ENTRY_SIZE = 32;
export const HVM_MEMMAP_TABLE_ENTRY_SIZE = 24;

export interface BootModule {
  paddr: Gpa;
  size: number;
}

export interface StartInfoOptions {
  cmdline: string;
  memoryMap: readonly MemoryMapEntry[];
  /** At most START_INFO_MODLIST_MAX_ENTRIES; the initrd, when there is one, is the first. */
  modules?: readonly BootModule[];
  /** 0 (the default) means no ACPI tables. */
  rsdpPaddr?: Gpa;
}

/*
 * struct hvm_start_info layout (56 bytes, version 1), at START_INFO_START:
 *   0x00 4 magic (0x336ec578)   0x04 4 version (1)        0x08 4 flags (SIF_*, 0 here)
 *   0x0c 4 nr_modules           0x10 8 modlist_paddr      0x18 8 cmdline_paddr
 *   0x20 8 rsdp_paddr           0x28 8 memmap_paddr       0x30 4 memmap_entries
 *   0x34 4 reserved
 * struct hvm_modlist_entry (32 bytes), at START_INFO_MODLIST_START:
 *   0x00 8 paddr   0x08 8 size   0x10 8 cmdline_paddr (0: none)   0x18 8 reserved
 * struct hvm_memmap_table_entry (24 bytes), at START_INFO_MEMMAP_START:
 *   0x00 8 addr    0x08 8 size   0x10 4 type (1 RAM, 2 reserved)  0x14 4 reserved
 */
export function writeStartInfo(mem: GuestMemory, opts: StartInfoOptions): Gpa {
  const modules = opts.modules ?? [];
  if (opts.memoryMap.length > START_INFO_MEMMAP_MAX_ENTRIES) {
    throw new BootLayoutError('ERR_BOOT_LAYOUT', `memory map has ${opts.memoryMap.length} entries; at most ${START_INFO_MEMMAP_MAX_ENTRIES} fit`);
  }
  if (modules.length > START_INFO_MODLIST_MAX_ENTRIES) {
    throw new BootLayoutError('ERR_BOOT_LAYOUT', `${modules.length} boot modules given; at most ${START_INFO_MODLIST_MAX_ENTRIES} fit`);
  }
  const cmdlinePaddr = writeCmdline(mem, opts.cmdline);

  const mods = mem.view(START_INFO_MODLIST_START, START_INFO_MODLIST_MAX_ENTRIES * HVM_MODLIST_ENTRY_SIZE);
  new Uint8Array(mods.buffer, mods.byteOffset, mods.byteLength).fill(0);
  modules.forEach((m, i) => {
    mods.setBigUint64(i * HVM_MODLIST_ENTRY_SIZE, BigInt(m.paddr), true);
    mods.setBigUint64(i * HVM_MODLIST_ENTRY_SIZE + 8, BigInt(m.size), true);
  });

  const map = mem.view(START_INFO_MEMMAP_START, opts.memoryMap.length * HVM_MEMMAP_TABLE_ENTRY_SIZE);
  opts.memoryMap.forEach((e, i) => {
    const at = i * HVM_MEMMAP_TABLE_ENTRY_SIZE;
    map.setBigUint64(at, BigInt(e.addr), true);
    map.setBigUint64(at + 8, BigInt(e.size), true);
    map.setUint32(at + 16, e.type, true);
    map.setUint32(at + 20, 0, true);
  });

  const si = mem.view(START_INFO_START, HVM_START_INFO_SIZE);
  si.setUint32(0x00, XEN_HVM_START_MAGIC_VALUE, true);
  si.setUint32(0x04, HVM_START_INFO_VERSION, true);
  si.setUint32(0x08, 0, true);
  si.setUint32(0x0c, modules.length, true);
  si.setBigUint64(0x10, modules.length > 0 ? BigInt(START_INFO_MODLIST_START) : 0n, true);
  si.setBigUint64(0x18, BigInt(cmdlinePaddr), true);
  si.setBigUint64(0x20, BigInt(opts.rsdpPaddr ?? 0), true);
  si.setBigUint64(0x28, BigInt(START_INFO_MEMMAP_START), true);
  si.setUint32(0x30, opts.memoryMap.length, true);
  si.setUint32(0x34, 0, true);
  return gpa(START_INFO_START);
}
