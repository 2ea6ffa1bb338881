// Loads a Linux bzImage through the x86 boot protocol's 64-bit entry: parses the setup header, copies the
// protected-mode kernel to an aligned address, places the initrd, and builds the zero page (struct
// boot_params) with the command line and e820 map. It does not run the real-mode setup code and does not
// support the 16- or 32-bit entries.
// Spec: Linux Documentation/arch/x86/boot.rst; arch/x86/include/uapi/asm/bootparam.h for boot_params.

import { gpa } from '../memory/gpa.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { writeCmdline } from '../arch/x86_64/cmdline.js';
import { HIMEM_START, ZERO_PAGE_START } from '../arch/x86_64/layout.js';
import { setupLinux64Entry } from '../arch/x86_64/linux64-entry.js';
import { buildMemoryMap, lowRamEnd } from '../arch/x86_64/memory-map.js';
import { KernelImageError, hex } from './errors.js';
import { type LoadedRange, alignUp, placeInitrd } from './placement.js';
import type { KernelBootOptions, KernelLoadResult } from './pvh-loader.js';

export const HDRS_MAGIC = 0x53726448; // "HdrS"
export const BOOT_FLAG = 0xaa55;
/** xloadflags appeared in 2.12, and with it the 64-bit entry we use. */
export const MIN_BOOT_PROTOCOL = 0x020c;
export const LOADED_HIGH = 1 << 0;
export const XLF_KERNEL_64 = 1 << 0;
export const TYPE_OF_LOADER_UNDEFINED = 0xff;
export const ZERO_PAGE_SIZE = 4096;
export const E820_MAX_ENTRIES_ZEROPAGE = 128;
/** startup_64 is this far into the protected-mode kernel. */
export const STARTUP_64_OFFSET = 0x200;
/** The setup header ends at most here in boot_params (the padding before edd_mbr_sig_buffer). */
const SETUP_HEADER_LIMIT = 0x290;
const DEFAULT_SETUP_SECTS = 4;
const SECTOR_SIZE = 512;

/*
 * Setup header fields read here (offsets in the image and in boot_params alike):
 *   0x1f1 1 setup_sects (0 means 4)   0x1fe 2 boot_flag (0xaa55)   0x201 1 header length - 0x202 (jump's 2nd byte)
 *   0x202 4 header "HdrS"             0x206 2 version              0x211 1 loadflags (bit 0 LOADED_HIGH)
 *   0x214 4 code32_start              0x218 4 ramdisk_image        0x21c 4 ramdisk_size
 *   0x228 4 cmd_line_ptr              0x22c 4 initrd_addr_max (last byte, inclusive)
 *   0x230 4 kernel_alignment          0x234 1 relocatable_kernel   0x236 2 xloadflags (bit 0 XLF_KERNEL_64)
 *   0x238 4 cmdline_size (without NUL) 0x258 8 pref_address        0x260 4 init_size
 */
export interface SetupHeader {
  setupSects: number;
  version: number;
  loadflags: number;
  initrdAddrMax: number;
  kernelAlignment: number;
  relocatable: boolean;
  xloadflags: number;
  cmdlineSize: number;
  prefAddress: bigint;
  initSize: number;
  /** Where the setup header ends in the image (exclusive), clamped to boot_params' space for it. */
  headerEnd: number;
}

function formatError(what: string): KernelImageError {
  return new KernelImageError('ERR_KERNEL_FORMAT', `malformed bzImage: ${what}`);
}

export function isBzImage(image: Uint8Array): boolean {
  return image.length >= 0x206 && new DataView(image.buffer, image.byteOffset, 0x206).getUint32(0x202, true) === HDRS_MAGIC;
}

export function parseSetupHeader(image: Uint8Array): SetupHeader {
  if (image.length < SETUP_HEADER_LIMIT) throw formatError(`${image.length} bytes is too short to hold a setup header`);
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (v.getUint32(0x202, true) !== HDRS_MAGIC) throw formatError('no "HdrS" magic at 0x202');
  if (v.getUint16(0x1fe, true) !== BOOT_FLAG) throw formatError(`boot_flag is ${hex(v.getUint16(0x1fe, true))}, not 0xaa55`);
  const version = v.getUint16(0x206, true);
  if (version < MIN_BOOT_PROTOCOL) {
    throw new KernelImageError('ERR_KERNEL_UNSUPPORTED', `boot protocol ${version >> 8}.${(version & 0xff).toString().padStart(2, '0')} has no 64-bit entry; use a kernel with protocol 2.12 or later (Linux 3.8+)`);
  }
  const rawSects = v.getUint8(0x1f1);
  return {
    setupSects: rawSects === 0 ? DEFAULT_SETUP_SECTS : rawSects,
    version,
    loadflags: v.getUint8(0x211),
    initrdAddrMax: v.getUint32(0x22c, true),
    kernelAlignment: v.getUint32(0x230, true),
    relocatable: v.getUint8(0x234) !== 0,
    xloadflags: v.getUint16(0x236, true),
    cmdlineSize: v.getUint32(0x238, true),
    prefAddress: v.getBigUint64(0x258, true),
    initSize: v.getUint32(0x260, true),
    headerEnd: Math.min(0x202 + v.getUint8(0x201), SETUP_HEADER_LIMIT),
  };
}

/**
 * The protected-mode kernel's load address: pref_address when the kernel is relocatable and the image fits
 * there, else the first kernel_alignment boundary at or above 1 MiB; a non-relocatable kernel goes at 1 MiB.
 */
function chooseLoadAddress(mem: GuestMemory, hdr: SetupHeader, footprint: number): number {
  const ramEnd = lowRamEnd(mem.size);
  const fits = (a: number): boolean => a >= HIMEM_START && a + footprint <= ramEnd && mem.checkRange(a, footprint);
  const candidates: number[] = [];
  if (hdr.relocatable) {
    const align = hdr.kernelAlignment;
    if (align === 0 || (align & (align - 1)) !== 0 || align > 0x4000_0000) {
      throw formatError(`kernel_alignment ${hex(align)} is not a power of two up to 1 GiB`);
    }
    if (hdr.prefAddress < 1n << 52n) candidates.push(alignUp(Number(hdr.prefAddress), align));
    candidates.push(alignUp(HIMEM_START, align));
  } else {
    candidates.push(HIMEM_START);
  }
  const chosen = candidates.find(fits);
  if (chosen === undefined) {
    throw new KernelImageError('ERR_KERNEL_PLACEMENT', `kernel needs ${hex(footprint)} bytes (init_size) at ${candidates.map(hex).join(' or ')} but low RAM ends at ${hex(ramEnd)}; give the VM more memory`);
  }
  return chosen;
}

/*
 * struct boot_params (the zero page, 4096 bytes) fields written here, beyond the copied setup header:
 *   0x0c0 4 ext_ramdisk_image   0x0c4 4 ext_ramdisk_size   0x0c8 4 ext_cmd_line_ptr   (upper 32 bits: 0 here)
 *   0x1e8 1 e820_entries        0x1ef 1 sentinel (0)       0x1f1 ... setup header (see above)
 *   0x2d0 128 * 20 e820_table: { u64 addr, u64 size, u32 type } packed
 */
function writeZeroPage(mem: GuestMemory, image: Uint8Array, hdr: SetupHeader, place: { loadAddr: number; cmdline: number; initrd?: LoadedRange }): void {
  mem.fill(ZERO_PAGE_START, ZERO_PAGE_SIZE, 0);
  mem.write(ZERO_PAGE_START + 0x1f1, image.subarray(0x1f1, hdr.headerEnd));
  const zp = mem.view(ZERO_PAGE_START, ZERO_PAGE_SIZE);
  zp.setUint8(0x210, TYPE_OF_LOADER_UNDEFINED);
  zp.setUint32(0x214, place.loadAddr, true);
  zp.setUint32(0x218, place.initrd ? place.initrd.start : 0, true);
  zp.setUint32(0x21c, place.initrd ? place.initrd.size : 0, true);
  zp.setUint32(0x228, place.cmdline, true);
  const map = buildMemoryMap(mem.size);
  if (map.length > E820_MAX_ENTRIES_ZEROPAGE) throw formatError('internal: e820 map too long');
  zp.setUint8(0x1e8, map.length);
  map.forEach((e, i) => {
    const at = 0x2d0 + i * 20;
    zp.setBigUint64(at, BigInt(e.addr), true);
    zp.setBigUint64(at + 8, BigInt(e.size), true);
    zp.setUint32(at + 16, e.type, true);
  });
}

/** Loads a bzImage for the 64-bit boot protocol entry. */
export function loadBzImage(mem: GuestMemory, image: Uint8Array, opts: KernelBootOptions): KernelLoadResult {
  const hdr = parseSetupHeader(image);
  if ((hdr.xloadflags & XLF_KERNEL_64) === 0) {
    throw new KernelImageError('ERR_KERNEL_UNSUPPORTED', 'bzImage lacks XLF_KERNEL_64 and so has no 64-bit entry; build a 64-bit (CONFIG_X86_64) kernel');
  }
  if ((hdr.loadflags & LOADED_HIGH) === 0) {
    throw new KernelImageError('ERR_KERNEL_UNSUPPORTED', 'image is a zImage (LOADED_HIGH clear), which loads below 1 MiB; use a bzImage');
  }
  const setupSize = (hdr.setupSects + 1) * SECTOR_SIZE;
  if (setupSize + STARTUP_64_OFFSET >= image.length) {
    throw formatError(`setup code (${hdr.setupSects} sectors) leaves no protected-mode kernel with a 64-bit entry in a ${image.length}-byte file`);
  }
  const kernel = image.subarray(setupSize);
  if (opts.cmdline.length > hdr.cmdlineSize) {
    throw new KernelImageError('ERR_KERNEL_UNSUPPORTED', `command line is ${opts.cmdline.length} bytes but this kernel accepts at most ${hdr.cmdlineSize} (cmdline_size); shorten it`);
  }
  const footprint = Math.max(hdr.initSize, kernel.length);
  const loadAddr = chooseLoadAddress(mem, hdr, footprint);
  const kernelRange: LoadedRange = { start: gpa(loadAddr), size: footprint, what: 'kernel' };
  const loadedRanges = [kernelRange];
  let initrd: LoadedRange | undefined;
  if (opts.initrd) {
    const maxEnd = hdr.initrdAddrMax === 0 ? 0x3800_0000 : hdr.initrdAddrMax + 1;
    initrd = placeInitrd(mem, opts.initrd, loadedRanges, maxEnd);
    loadedRanges.push(initrd);
  }
  mem.write(loadAddr, kernel);
  const cmdline = writeCmdline(mem, opts.cmdline, hdr.cmdlineSize);
  writeZeroPage(mem, image, hdr, { loadAddr, cmdline, initrd });
  return { bootCpu: setupLinux64Entry(mem, gpa(loadAddr + STARTUP_64_OFFSET)), loadedRanges };
}
