// Loads a guest kernel of any supported kind into guest memory and says how to start the boot vCPU:
// a swapvisor guest-kit ELF (direct long-mode entry), a PVH ELF (32-bit entry) or a Linux bzImage (64-bit
// boot protocol). It also writes the MP table. It never touches vCPUs itself: vmm/ applies the returned state.
// The three paths are described in docs/boot-protocol.md.

import type { GuestMemory } from '../memory/guest-memory.js';
import { type Gpa, gpa } from '../memory/gpa.js';
import type { BootCpuState } from '../arch/x86_64/cpu-state.js';
import { BootLayoutError } from '../arch/x86_64/errors.js';
import { MAX_VCPUS, setupLongModeEntry } from '../arch/x86_64/long-mode.js';
import { writeMpTable } from '../arch/x86_64/mptable.js';
import { isBzImage, loadBzImage } from './bzimage.js';
import { type Elf64Image, findNote, isElf, parseElf64 } from './elf.js';
import { KernelImageError, hex } from './errors.js';
import type { LoadedRange } from './placement.js';
import { checkEntryInside, findPvhEntry, loadElfWithStartInfo, loadPvhKernel } from './pvh-loader.js';

export const SWAPVISOR_NOTE_OWNER = 'swapvisor';
export const SWAPVISOR_NOTE_ENTRY = 0x53560001;
/** desc: u64 entry64, u64 vectorTable. */
const SWAPVISOR_NOTE_DESC_SIZE = 16;

export type KernelKind = 'long-mode' | 'pvh' | 'bzimage';

export interface LoadKernelOptions {
  cmdline: string;
  initrd?: Uint8Array;
  vcpus: number;
  /** Which ELF entry to use; 'auto' prefers the swapvisor note, then PVH. Ignored for bzImages. */
  entry?: 'auto' | 'long-mode' | 'pvh';
  /** MP table routing of ISA IRQ 0: IOAPIC pin 2 as on PCs (default; the VMM must route GSI 2 to the PIT) or pin 0. */
  irq0ToPin2?: boolean;
  /** Appended to the command line for direct long-mode (guest-kit) entry only, e.g. `tsc_khz=...`. */
  longModeCmdlineSuffix?: string;
}

export interface LoadedKernel {
  kind: KernelKind;
  bootCpu: BootCpuState;
  mpTableWritten: boolean;
  /** The kernel's footprint (segments, or the bzImage's init_size) and the initrd, in guest physical memory. */
  loadedRanges: LoadedRange[];
}

export interface SwapvisorEntryNote {
  entry64: Gpa;
  vectorTable: Gpa;
}

/*
 * swapvisor entry note (owner "swapvisor", type 0x53560001), descriptor layout (16 bytes):
 *   0x00 8 entry64       the CPL0 64-bit entry point
 *   0x08 8 vectorTable   256 16-byte interrupt stubs; IDT gate i targets vectorTable + 16 * i
 */
export function findSwapvisorNote(elf: Elf64Image): SwapvisorEntryNote | undefined {
  const note = findNote(elf, SWAPVISOR_NOTE_OWNER, SWAPVISOR_NOTE_ENTRY);
  if (!note) return undefined;
  if (note.desc.byteLength !== SWAPVISOR_NOTE_DESC_SIZE) {
    throw new KernelImageError('ERR_KERNEL_FORMAT', `swapvisor entry note has a ${note.desc.byteLength}-byte descriptor; expected 16 (u64 entry64, u64 vectorTable)`);
  }
  const v = new DataView(note.desc.buffer, note.desc.byteOffset, note.desc.byteLength);
  const entry64 = v.getBigUint64(0, true);
  const vectorTable = v.getBigUint64(8, true);
  const limit = BigInt(Number.MAX_SAFE_INTEGER);
  if (entry64 > limit || vectorTable > limit) {
    throw new KernelImageError('ERR_KERNEL_FORMAT', `swapvisor note addresses ${hex(entry64)}/${hex(vectorTable)} are not identity-mapped physical addresses`);
  }
  return { entry64: gpa(Number(entry64)), vectorTable: gpa(Number(vectorTable)) };
}

function firstBytes(image: Uint8Array): string {
  return Array.from(image.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ') || '(empty)';
}

function loadElf(mem: GuestMemory, image: Uint8Array, opts: LoadKernelOptions): Omit<LoadedKernel, 'mpTableWritten'> {
  const elf = parseElf64(image);
  const want = opts.entry ?? 'auto';
  const swapvisor = want === 'pvh' ? undefined : findSwapvisorNote(elf);
  if (swapvisor) {
    checkEntryInside(elf, swapvisor.entry64, 'swapvisor entry64');
    checkEntryInside(elf, swapvisor.vectorTable, 'swapvisor vector table');
    const cmdline = opts.longModeCmdlineSuffix ? `${opts.cmdline} ${opts.longModeCmdlineSuffix}`.trim() : opts.cmdline;
    const loadedRanges = loadElfWithStartInfo(mem, image, elf, { ...opts, cmdline });
    const bootCpu = setupLongModeEntry(mem, { ...swapvisor, vcpuCount: opts.vcpus });
    return { kind: 'long-mode', bootCpu, loadedRanges };
  }
  if (want === 'long-mode') {
    throw new KernelImageError('ERR_KERNEL_UNSUPPORTED', 'long-mode entry requested but the ELF has no swapvisor note (owner "swapvisor", type 0x53560001); build it with the guest kit or use entry "pvh"');
  }
  if (findPvhEntry(elf) === undefined) {
    throw new KernelImageError('ERR_KERNEL_UNSUPPORTED', 'ELF has no PVH entry note and no swapvisor note: rebuild Linux with CONFIG_PVH=y, build the guest with the guest kit, or boot a bzImage instead');
  }
  return { kind: 'pvh', ...loadPvhKernel(mem, image, elf, opts) };
}

/**
 * Detects the image's format, loads it, writes the boot structures and the MP table, and returns the boot
 * vCPU's state. Throws KernelImageError for images it cannot boot (nothing useful has been started then;
 * guest memory may hold partial writes) and BootLayoutError for bad options such as an overlong cmdline.
 */
export function loadKernel(mem: GuestMemory, image: Uint8Array, opts: LoadKernelOptions): LoadedKernel {
  if (!Number.isInteger(opts.vcpus) || opts.vcpus < 1 || opts.vcpus > MAX_VCPUS) {
    throw new BootLayoutError('ERR_BOOT_LAYOUT', `vcpus ${opts.vcpus} is out of range; use 1 to ${MAX_VCPUS}`);
  }
  let loaded: Omit<LoadedKernel, 'mpTableWritten'>;
  if (isElf(image)) {
    loaded = loadElf(mem, image, opts);
  } else if (isBzImage(image)) {
    if (opts.entry === 'long-mode') {
      throw new KernelImageError('ERR_KERNEL_UNSUPPORTED', 'long-mode entry requested but the image is a bzImage; use entry "auto" to boot it through the Linux boot protocol');
    }
    loaded = { kind: 'bzimage', ...loadBzImage(mem, image, opts) };
  } else {
    throw new KernelImageError('ERR_KERNEL_FORMAT', `not an ELF or bzImage: first bytes ${firstBytes(image)}; pass a vmlinux with a PVH note, a bzImage, or a guest-kit ELF`);
  }
  // Always: Linux finds its APs and the IOAPIC through it, and a uniprocessor guest loses nothing.
  writeMpTable(mem, { vcpus: opts.vcpus, irq0ToPin2: opts.irq0ToPin2 ?? true });
  return { ...loaded, mpTableWritten: true };
}
