// Builders of tiny kernel images for the loader tests: an ELF64 writer and a fake bzImage with only the
// setup-header fields the loader reads. Test support only; nothing in the loaders imports this.

export interface NoteSpec {
  name: string;
  type: number;
  desc: Uint8Array;
}

export interface SegmentSpec {
  type?: number;
  paddr: bigint;
  vaddr?: bigint;
  data: Uint8Array;
  memsz?: number;
  flags?: number;
}

export interface ElfSpec {
  segments: SegmentSpec[];
  /** Notes placed in a PT_NOTE segment (or only in an SHT_NOTE section when `notesAsSection`). */
  notes?: NoteSpec[];
  notesAsSection?: boolean;
  entry?: bigint;
}

export function encodeNotes(notes: readonly NoteSpec[]): Uint8Array {
  const parts: number[] = [];
  const pad = (): void => { while (parts.length % 4) parts.push(0); };
  const u32 = (v: number): void => { parts.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff); };
  for (const n of notes) {
    u32(n.name.length + 1);
    u32(n.desc.length);
    u32(n.type);
    for (const c of n.name) parts.push(c.charCodeAt(0));
    parts.push(0);
    pad();
    parts.push(...n.desc);
    pad();
  }
  return Uint8Array.from(parts);
}

export function u64le(...values: bigint[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => v.setBigUint64(i * 8, x, true));
  return out;
}

export function u32le(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => v.setUint32(i * 4, x, true));
  return out;
}

/**
 * Layout of the built file: ELF header (64), program headers (56 each), segment data in order, the note
 * blob, then (with notesAsSection) a section header table of a null section and one SHT_NOTE section.
 */
export function buildElf(spec: ElfSpec): Uint8Array {
  const notes = spec.notes ? encodeNotes(spec.notes) : undefined;
  const withNoteSegment = notes !== undefined && !spec.notesAsSection;
  const phnum = spec.segments.length + (withNoteSegment ? 1 : 0);
  let offset = 64 + phnum * 56;
  const dataOffsets = spec.segments.map((s) => { const at = offset; offset += s.data.length; return at; });
  const notesOffset = offset;
  offset += notes?.length ?? 0;
  const shoff = spec.notesAsSection && notes ? offset : 0;
  if (shoff) offset += 2 * 64;
  const out = new Uint8Array(offset);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, 2, true);
  v.setUint16(18, 62, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, spec.entry ?? spec.segments[0]?.paddr ?? 0n, true);
  v.setBigUint64(32, 64n, true);
  v.setBigUint64(40, BigInt(shoff), true);
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, phnum, true);
  v.setUint16(58, 64, true);
  v.setUint16(60, shoff ? 2 : 0, true);
  spec.segments.forEach((s, i) => {
    const at = 64 + i * 56;
    v.setUint32(at, s.type ?? 1, true);
    v.setUint32(at + 4, s.flags ?? 7, true);
    v.setBigUint64(at + 8, BigInt(dataOffsets[i]!), true);
    v.setBigUint64(at + 16, s.vaddr ?? s.paddr, true);
    v.setBigUint64(at + 24, s.paddr, true);
    v.setBigUint64(at + 32, BigInt(s.data.length), true);
    v.setBigUint64(at + 40, BigInt(s.memsz ?? s.data.length), true);
    v.setBigUint64(at + 48, 0x1000n, true);
    out.set(s.data, dataOffsets[i]!);
  });
  if (notes) {
    out.set(notes, notesOffset);
    if (withNoteSegment) {
      const at = 64 + spec.segments.length * 56;
      v.setUint32(at, 4, true);
      v.setUint32(at + 4, 4, true);
      v.setBigUint64(at + 8, BigInt(notesOffset), true);
      v.setBigUint64(at + 32, BigInt(notes.length), true);
      v.setBigUint64(at + 40, BigInt(notes.length), true);
      v.setBigUint64(at + 48, 4n, true);
    } else {
      const at = shoff + 64;
      v.setUint32(at + 4, 7, true);
      v.setBigUint64(at + 0x18, BigInt(notesOffset), true);
      v.setBigUint64(at + 0x20, BigInt(notes.length), true);
      v.setBigUint64(at + 0x30, 4n, true);
    }
  }
  return out;
}

export interface BzImageSpec {
  setupSects?: number;
  version?: number;
  loadflags?: number;
  xloadflags?: number;
  relocatable?: boolean;
  kernelAlignment?: number;
  prefAddress?: bigint;
  initSize?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
  /** Protected-mode kernel size in bytes (filled with a recognisable pattern). */
  kernelSize?: number;
}

/** A fake bzImage: setup sectors holding only the setup header, then the "protected-mode kernel". */
export function buildBzImage(spec: BzImageSpec = {}): Uint8Array {
  const sects = spec.setupSects ?? 4;
  const setupSize = ((sects === 0 ? 4 : sects) + 1) * 512;
  const kernelSize = spec.kernelSize ?? 0x3000;
  const out = new Uint8Array(setupSize + kernelSize);
  const v = new DataView(out.buffer);
  v.setUint8(0x1f1, sects);
  v.setUint16(0x1fe, 0xaa55, true);
  v.setUint8(0x200, 0xeb);
  v.setUint8(0x201, 0x6a); // header ends at 0x26c
  v.setUint32(0x202, 0x53726448, true);
  v.setUint16(0x206, spec.version ?? 0x020f, true);
  v.setUint8(0x211, spec.loadflags ?? 0x01);
  v.setUint32(0x214, 0x100000, true);
  v.setUint32(0x22c, spec.initrdAddrMax ?? 0x7fffffff, true);
  v.setUint32(0x230, spec.kernelAlignment ?? 0x200000, true);
  v.setUint8(0x234, (spec.relocatable ?? true) ? 1 : 0);
  v.setUint16(0x236, spec.xloadflags ?? 0x3, true);
  v.setUint32(0x238, spec.cmdlineSize ?? 2047, true);
  v.setBigUint64(0x258, spec.prefAddress ?? 0x1000000n, true);
  v.setUint32(0x260, spec.initSize ?? 0x10000, true);
  for (let i = setupSize; i < out.length; i++) out[i] = (i * 7) & 0xff;
  return out;
}
