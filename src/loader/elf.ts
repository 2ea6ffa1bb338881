// A strict, read-only parser for 64-bit little-endian x86-64 ELF executables: header, program headers and
// notes. It does not load anything into guest memory (pvh-loader.ts and kernel-loader.ts do) and it does not
// resolve symbols or relocations.
// Spec: System V ABI, "ELF-64 Object File Format" 1.5, and the gABI chapter on notes
// (https://refspecs.linuxfoundation.org/elf/gabi4+/ch5.pheader.html).

import { KernelImageError, hex } from './errors.js';

export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const EV_CURRENT = 1;
export const ET_EXEC = 2;
export const EM_X86_64 = 62;
export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const SHT_NOTE = 7;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const SHDR_SIZE = 64;
const NOTE_HEADER_SIZE = 12;
/** The largest address a 64-bit segment may reach (exclusive). */
const ADDRESS_SPACE_END = 1n << 64n;

export interface Elf64Segment {
  type: number;
  flags: number;
  offset: number;
  /** Virtual addresses of kernels live in the top 2 GiB, beyond Number's safe range, so they stay bigint. */
  vaddr: bigint;
  paddr: bigint;
  filesz: number;
  memsz: number;
  align: bigint;
}

export interface ElfNote {
  /** The owner name without its NUL terminator, e.g. "Xen". */
  name: string;
  type: number;
  /** A copy of the descriptor bytes. */
  desc: Uint8Array;
}

export interface Elf64Image {
  type: number;
  machine: number;
  entry: bigint;
  segments: Elf64Segment[];
  /** PT_LOAD segments only, in file order. */
  loadSegments: Elf64Segment[];
  /** Notes from PT_NOTE segments, or from SHT_NOTE sections when the image has no PT_NOTE segment. */
  notes: ElfNote[];
}

function formatError(what: string): KernelImageError {
  return new KernelImageError('ERR_KERNEL_FORMAT', `malformed ELF image: ${what}; rebuild or re-link the kernel`);
}

/** A u64 field that must be usable as a byte count or file offset. */
function safeU64(view: DataView, at: number, field: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(`${field} ${hex(v)} is too large`);
  return Number(v);
}

/** INVARIANT: every (offset, size) pair read from the image passes through here before it is used. */
function checkFileRange(fileSize: number, offset: number, size: number, what: string): void {
  if (offset > fileSize || size > fileSize - offset) {
    throw formatError(`${what} [${hex(offset)}, +${hex(size)}) extends past the end of the ${fileSize}-byte file`);
  }
}

/*
 * Elf64_Ehdr layout (64 bytes):
 *   0x00  16  e_ident: 7f 'E' 'L' 'F', [4] class (2 = 64-bit), [5] data (1 = LE), [6] version (1)
 *   0x10   2  e_type        0x12   2  e_machine (62 = x86-64)   0x14   4  e_version
 *   0x18   8  e_entry       0x20   8  e_phoff                   0x28   8  e_shoff
 *   0x30   4  e_flags       0x34   2  e_ehsize                  0x36   2  e_phentsize (56)
 *   0x38   2  e_phnum       0x3a   2  e_shentsize (64)          0x3c   2  e_shnum
 *   0x3e   2  e_shstrndx
 */
export function isElf(image: Uint8Array): boolean {
  return image.length >= 4 && image[0] === 0x7f && image[1] === 0x45 && image[2] === 0x4c && image[3] === 0x46;
}

export function parseElf64(image: Uint8Array): Elf64Image {
  if (!isElf(image)) throw formatError('missing the \\x7fELF magic');
  if (image.length < EHDR_SIZE) throw formatError(`file is ${image.length} bytes, shorter than the 64-byte ELF64 header`);
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (image[4] !== ELFCLASS64) throw formatError(`class ${image[4]} is not ELFCLASS64 (2); build a 64-bit kernel`);
  if (image[5] !== ELFDATA2LSB) throw formatError(`data encoding ${image[5]} is not little-endian (1)`);
  if (image[6] !== EV_CURRENT) throw formatError(`ident version ${image[6]} is not 1`);
  const type = view.getUint16(0x10, true);
  const machine = view.getUint16(0x12, true);
  if (type !== ET_EXEC) throw formatError(`e_type ${type} is not ET_EXEC (2); link the kernel as a static executable`);
  if (machine !== EM_X86_64) throw formatError(`e_machine ${machine} is not EM_X86_64 (62)`);
  if (view.getUint32(0x14, true) !== EV_CURRENT) throw formatError('e_version is not 1');
  if (view.getUint16(0x34, true) < EHDR_SIZE) throw formatError('e_ehsize is smaller than 64');

  const segments = parseProgramHeaders(image, view);
  const noteSegments = segments.filter((s) => s.type === PT_NOTE);
  let notes: ElfNote[] = [];
  for (const s of noteSegments) notes.push(...parseNotes(image, s.offset, s.filesz, s.align === 8n ? 8 : 4));
  const sectionNotes = parseSectionNotes(image, view);
  if (noteSegments.length === 0) notes = sectionNotes;
  return {
    type,
    machine,
    entry: view.getBigUint64(0x18, true),
    segments,
    loadSegments: segments.filter((s) => s.type === PT_LOAD),
    notes,
  };
}

/*
 * Elf64_Phdr layout (56 bytes):
 *   0x00 4 p_type   0x04 4 p_flags   0x08 8 p_offset   0x10 8 p_vaddr
 *   0x18 8 p_paddr  0x20 8 p_filesz  0x28 8 p_memsz    0x30 8 p_align
 */
function parseProgramHeaders(image: Uint8Array, view: DataView): Elf64Segment[] {
  const phoff = safeU64(view, 0x20, 'e_phoff');
  const phentsize = view.getUint16(0x36, true);
  const phnum = view.getUint16(0x38, true);
  if (phnum === 0) throw formatError('no program headers (e_phnum = 0); there is nothing to load');
  if (phentsize !== PHDR_SIZE) throw formatError(`e_phentsize ${phentsize} is not 56`);
  checkFileRange(image.length, phoff, phnum * PHDR_SIZE, 'program header table');
  const segments: Elf64Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * PHDR_SIZE;
    const seg: Elf64Segment = {
      type: view.getUint32(at, true),
      flags: view.getUint32(at + 4, true),
      offset: safeU64(view, at + 8, `segment ${i} p_offset`),
      vaddr: view.getBigUint64(at + 16, true),
      paddr: view.getBigUint64(at + 24, true),
      filesz: safeU64(view, at + 32, `segment ${i} p_filesz`),
      memsz: safeU64(view, at + 40, `segment ${i} p_memsz`),
      align: view.getBigUint64(at + 48, true),
    };
    if (seg.type === PT_LOAD || seg.type === PT_NOTE) {
      checkFileRange(image.length, seg.offset, seg.filesz, `segment ${i}`);
    }
    if (seg.type === PT_LOAD) {
      if (seg.filesz > seg.memsz) throw formatError(`segment ${i} has p_filesz ${hex(seg.filesz)} > p_memsz ${hex(seg.memsz)}`);
      const memsz = BigInt(seg.memsz);
      if (seg.paddr + memsz > ADDRESS_SPACE_END || seg.vaddr + memsz > ADDRESS_SPACE_END) {
        throw formatError(`segment ${i} wraps around the end of the 64-bit address space`);
      }
    }
    segments.push(seg);
  }
  return segments;
}

/*
 * Elf64_Shdr layout (64 bytes), only the fields read here:
 *   0x04 4 sh_type   0x18 8 sh_offset   0x20 8 sh_size   0x30 8 sh_addralign
 */
function parseSectionNotes(image: Uint8Array, view: DataView): ElfNote[] {
  const shnum = view.getUint16(0x3c, true);
  if (shnum === 0) return [];
  const shoff = safeU64(view, 0x28, 'e_shoff');
  const shentsize = view.getUint16(0x3a, true);
  if (shentsize !== SHDR_SIZE) throw formatError(`e_shentsize ${shentsize} is not 64`);
  checkFileRange(image.length, shoff, shnum * SHDR_SIZE, 'section header table');
  const notes: ElfNote[] = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * SHDR_SIZE;
    if (view.getUint32(at + 4, true) !== SHT_NOTE) continue;
    const offset = safeU64(view, at + 0x18, `section ${i} sh_offset`);
    const size = safeU64(view, at + 0x20, `section ${i} sh_size`);
    checkFileRange(image.length, offset, size, `note section ${i}`);
    notes.push(...parseNotes(image, offset, size, view.getBigUint64(at + 0x30, true) === 8n ? 8 : 4));
  }
  return notes;
}

/*
 * Note entry layout (repeated, each field aligned to `align`, 4 in practice):
 *   0x00 4 n_namesz (including the NUL)   0x04 4 n_descsz   0x08 4 n_type
 *   0x0c n_namesz bytes of name, padded   then n_descsz bytes of desc, padded
 */
function parseNotes(image: Uint8Array, offset: number, size: number, align: number): ElfNote[] {
  const view = new DataView(image.buffer, image.byteOffset + offset, size);
  const notes: ElfNote[] = [];
  const up = (n: number): number => Math.ceil(n / align) * align;
  let at = 0;
  while (size - at >= NOTE_HEADER_SIZE) {
    const namesz = view.getUint32(at, true);
    const descsz = view.getUint32(at + 4, true);
    const type = view.getUint32(at + 8, true);
    const nameAt = at + NOTE_HEADER_SIZE;
    const descAt = nameAt + up(namesz);
    if (descAt > size || descsz > size - descAt) {
      throw formatError(`note at file offset ${hex(offset + at)} (namesz ${namesz}, descsz ${descsz}) overruns its ${size}-byte container`);
    }
    let nameEnd = nameAt + namesz;
    while (nameEnd > nameAt && image[offset + nameEnd - 1] === 0) nameEnd--;
    let name = '';
    for (let i = nameAt; i < nameEnd; i++) name += String.fromCharCode(image[offset + i]!);
    notes.push({ name, type, desc: image.slice(offset + descAt, offset + descAt + descsz) });
    at = descAt + up(descsz);
  }
  return notes;
}

/** The first note with this owner and type, or undefined. */
export function findNote(elf: Elf64Image, name: string, type: number): ElfNote | undefined {
  return elf.notes.find((n) => n.name === name && n.type === type);
}
