// Encoders for x86 descriptor-table entries (GDT segment and system descriptors, 64-bit IDT gates) and the
// identity-mapped page tables the VMM-built long-mode entries use. Encoding only: which entries go where is
// decided by long-mode.ts, pvh.ts and linux64-entry.ts.
// Spec: Intel SDM Vol. 3A, 3.4.5 (segment descriptors), 7.2.3 (TSS descriptor in 64-bit mode),
// 6.14.1 (64-bit IDT gates), 4.5 (4-level paging).

import type { GuestMemory } from '../../memory/guest-memory.js';
import type { Segment } from './cpu-state.js';
import { PDE_START, PDPTE_START, PML4_START } from './layout.js';

/** Segment/system descriptor type values (the 4-bit type field). */
export const SEG_TYPE_DATA_RW_ACCESSED = 0x3;
export const SEG_TYPE_CODE_XR_ACCESSED = 0xb;
export const SYS_TYPE_TSS_AVAILABLE = 0x9;
export const SYS_TYPE_TSS_BUSY = 0xb;
export const SYS_TYPE_INTERRUPT_GATE = 0xe;

/**
 * An 8-byte segment descriptor as a u64, from the KVM-style fields (limit in bytes when g=0, in 4 KiB units'
 * worth of bytes when g=1, as KVM reports it).
 *   bits  0-15 limit[15:0]    bits 16-39 base[23:0]    bits 40-43 type   bit 44 S   bits 45-46 DPL   bit 47 P
 *   bits 48-51 limit[19:16]   bit 52 AVL   bit 53 L   bit 54 D/B   bit 55 G   bits 56-63 base[31:24]
 */
export function encodeSegmentDescriptor(seg: Segment): bigint {
  const limit = BigInt(seg.g ? Math.floor(seg.limit / 4096) : seg.limit) & 0xfffffn;
  const base = seg.base & 0xffffffffn;
  return (limit & 0xffffn)
    | ((base & 0xffffffn) << 16n)
    | (BigInt(seg.type & 0xf) << 40n)
    | (BigInt(seg.s & 1) << 44n)
    | (BigInt(seg.dpl & 3) << 45n)
    | (BigInt(seg.present & 1) << 47n)
    | ((limit >> 16n) << 48n)
    | (BigInt(seg.avl & 1) << 52n)
    | (BigInt(seg.l & 1) << 53n)
    | (BigInt(seg.db & 1) << 54n)
    | (BigInt(seg.g & 1) << 55n)
    | ((base >> 24n) << 56n);
}

/** Writes a 16-byte 64-bit system descriptor (TSS/LDT): the 8-byte form, then base[63:32] and a zero dword. */
export function writeSystemDescriptor64(mem: GuestMemory, at: number, seg: Segment): void {
  mem.writeU64(at, encodeSegmentDescriptor(seg));
  mem.writeU64(at + 8, (seg.base >> 32n) & 0xffffffffn);
}

/** Writes consecutive 8-byte descriptors starting at `at`. */
export function writeDescriptors(mem: GuestMemory, at: number, descriptors: readonly bigint[]): void {
  descriptors.forEach((d, i) => mem.writeU64(at + 8 * i, d));
}

/** The KVM segment for a busy TSS, as TR holds it after `ltr`. */
export function tssSegment(selector: number, base: number, limit: number): Segment {
  return {
    base: BigInt(base), limit, selector, type: SYS_TYPE_TSS_BUSY,
    present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0,
  };
}

/*
 * 64-bit interrupt gate layout (16 bytes):
 *   0x00 2 offset[15:0]   0x02 2 selector   0x04 1 IST (bits 0-2)   0x05 1 type (bits 0-3) | DPL << 5 | P << 7
 *   0x06 2 offset[31:16]  0x08 4 offset[63:32]   0x0c 4 reserved
 */
export function encodeInterruptGate64(handler: bigint, selector: number, dpl: number, ist = 0): Uint8Array {
  const gate = new Uint8Array(16);
  const v = new DataView(gate.buffer);
  v.setUint16(0, Number(handler & 0xffffn), true);
  v.setUint16(2, selector, true);
  v.setUint8(4, ist & 7);
  v.setUint8(5, 0x80 | ((dpl & 3) << 5) | SYS_TYPE_INTERRUPT_GATE);
  v.setUint16(6, Number((handler >> 16n) & 0xffffn), true);
  v.setUint32(8, Number((handler >> 32n) & 0xffffffffn), true);
  return gate;
}

export const PTE_PRESENT = 1n << 0n;
export const PTE_RW = 1n << 1n;
export const PTE_USER = 1n << 2n;
export const PTE_PS = 1n << 7n;
/** How many 1 GiB page directories the identity map has: the first 4 GiB. */
export const IDENTITY_MAP_PDS = 4;

/**
 * Identity-maps [0, 4 GiB) with 2 MiB pages: PML4[0] → PDPT at PDPTE_START, PDPT[0..3] → the page directories
 * at PDE_START + i * 4 KiB, each PD entry a 2 MiB page. Every other PML4/PDPT entry is zeroed.
 * With `user`, every level has U=1 so CPL3 code can use the same map.
 */
export function writeIdentityPageTables(mem: GuestMemory, opts: { user: boolean }): void {
  const flags = PTE_PRESENT | PTE_RW | (opts.user ? PTE_USER : 0n);
  mem.fill(PML4_START, 4096, 0);
  mem.fill(PDPTE_START, 4096, 0);
  mem.writeU64(PML4_START, BigInt(PDPTE_START) | flags);
  for (let pd = 0; pd < IDENTITY_MAP_PDS; pd++) {
    const pdAddr = PDE_START + pd * 4096;
    mem.writeU64(PDPTE_START + pd * 8, BigInt(pdAddr) | flags);
    const table = mem.view(pdAddr, 4096);
    for (let i = 0; i < 512; i++) {
      const page = (BigInt(pd) << 30n) | (BigInt(i) << 21n);
      table.setBigUint64(i * 8, page | flags | PTE_PS, true);
    }
  }
}
