// Writes an Intel MultiProcessor Specification 1.4 table at MPTABLE_START: the floating pointer followed by
// the configuration table (processors, an ISA bus, one IOAPIC and the ISA interrupt routing). Linux uses it
// to find application processors and the IOAPIC when there are no ACPI tables. It does not write ACPI.
// Spec: Intel MultiProcessor Specification, version 1.4 (May 1997), chapter 4.

import { type Gpa, gpa } from '../../memory/gpa.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { BootLayoutError } from './errors.js';
import { APIC_START, HIMEM_START, IOAPIC_START, MPTABLE_START } from './layout.js';

export const MPF_SIGNATURE = '_MP_';
export const MPC_SIGNATURE = 'PCMP';
export const MP_SPEC_REV_1_4 = 4;
export const MP_PROCESSOR = 0;
export const MP_BUS = 1;
export const MP_IOAPIC = 2;
export const MP_INTSRC = 3;
export const MP_LINTSRC = 4;
export const MP_INT = 0;
export const MP_NMI = 1;
export const MP_EXTINT = 3;
export const CPU_ENABLED = 1;
export const CPU_BOOTPROCESSOR = 2;
export const MPC_APIC_USABLE = 1;
export const APIC_VERSION = 0x14;
export const IOAPIC_VERSION = 0x11;
/** Family 6 as the CPU signature; FPU (bit 0) and APIC (bit 9) in the feature flags. */
const CPU_SIGNATURE = 0x600;
const CPU_FEATURES = 0x201;
const ISA_BUS_ID = 0;
const ISA_IRQS = 16;
/** Destination "all local APICs" in a local interrupt entry. */
const ALL_LOCAL_APICS = 0xff;
const MPF_SIZE = 16;
const MPC_HEADER_SIZE = 44;
const PROCESSOR_ENTRY_SIZE = 20;
const SMALL_ENTRY_SIZE = 8;

export interface MpTableOptions {
  vcpus: number;
  /**
   * Route ISA IRQ 0 (the PIT) to IOAPIC pin 2 as real PCs do (default). The VMM must then route GSI 2 to the
   * PIT in its KVM_SET_GSI_ROUTING table, as QEMU does; with false every ISA IRQ maps to the pin of its number.
   */
  irq0ToPin2?: boolean;
}

/** Bytes the whole structure takes for `vcpus` processors. */
export function mpTableSize(vcpus: number): number {
  const entries = vcpus * PROCESSOR_ENTRY_SIZE + (1 + 1 + ISA_IRQS + 2) * SMALL_ENTRY_SIZE;
  return MPF_SIZE + MPC_HEADER_SIZE + entries;
}

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (0x100 - sum) & 0xff;
}

function putAscii(view: DataView, at: number, text: string, width: number): void {
  for (let i = 0; i < width; i++) view.setUint8(at + i, i < text.length ? text.charCodeAt(i) : 0x20);
}

/**
 * Writes the floating pointer at MPTABLE_START and the configuration table right after it.
 * Returns the floating pointer's address.
 */
export function writeMpTable(mem: GuestMemory, opts: MpTableOptions): Gpa {
  const { vcpus } = opts;
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > 254) {
    throw new BootLayoutError('ERR_BOOT_LAYOUT', `MP table for ${vcpus} vCPUs: use 1 to 254 (APIC ids are 8 bits and the IOAPIC takes the next id)`);
  }
  const size = mpTableSize(vcpus);
  if (MPTABLE_START + size > HIMEM_START) {
    throw new BootLayoutError('ERR_BOOT_LAYOUT', `MP table of ${size} bytes does not fit below 1 MiB; use fewer vCPUs`);
  }
  if (!mem.checkRange(MPTABLE_START, size)) {
    throw new BootLayoutError('ERR_BOOT_LAYOUT', `guest RAM does not cover the MP table at 0x${MPTABLE_START.toString(16)}; back [0, 1 MiB) with RAM`);
  }
  const bytes = mem.slice(MPTABLE_START, size);
  bytes.fill(0);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tableAt = MPF_SIZE;
  let at = tableAt + MPC_HEADER_SIZE;
  let count = 0;
  const interrupt = (type: number, intType: number, srcIrq: number, dest: number, destPin: number): void => {
    view.setUint8(at, type);
    view.setUint8(at + 1, intType);
    view.setUint16(at + 2, 0, true);
    view.setUint8(at + 4, ISA_BUS_ID);
    view.setUint8(at + 5, srcIrq);
    view.setUint8(at + 6, dest);
    view.setUint8(at + 7, destPin);
    at += SMALL_ENTRY_SIZE; count++;
  };

  /*
   * Processor entry (20 bytes):
   *   0 1 type (0)   1 1 local APIC id   2 1 local APIC version   3 1 flags (EN bit 0, BP bit 1)
   *   4 4 CPU signature   8 4 feature flags   12 8 reserved
   */
  for (let id = 0; id < vcpus; id++) {
    view.setUint8(at, MP_PROCESSOR);
    view.setUint8(at + 1, id);
    view.setUint8(at + 2, APIC_VERSION);
    view.setUint8(at + 3, CPU_ENABLED | (id === 0 ? CPU_BOOTPROCESSOR : 0));
    view.setUint32(at + 4, CPU_SIGNATURE, true);
    view.setUint32(at + 8, CPU_FEATURES, true);
    at += PROCESSOR_ENTRY_SIZE; count++;
  }
  // Bus entry (8 bytes): 0 type (1), 1 bus id, 2..7 bus type string "ISA   ".
  view.setUint8(at, MP_BUS);
  view.setUint8(at + 1, ISA_BUS_ID);
  putAscii(view, at + 2, 'ISA', 6);
  at += SMALL_ENTRY_SIZE; count++;
  // IOAPIC entry (8 bytes): 0 type (2), 1 IOAPIC id, 2 version, 3 flags (EN bit 0), 4 u32 address.
  const ioapicId = vcpus;
  view.setUint8(at, MP_IOAPIC);
  view.setUint8(at + 1, ioapicId);
  view.setUint8(at + 2, IOAPIC_VERSION);
  view.setUint8(at + 3, MPC_APIC_USABLE);
  view.setUint32(at + 4, IOAPIC_START, true);
  at += SMALL_ENTRY_SIZE; count++;
  /*
   * I/O and local interrupt entries (8 bytes):
   *   0 1 type (3 or 4)   1 1 interrupt type (0 INT, 1 NMI, 3 ExtINT)   2 2 flags (0: conforms to the bus)
   *   4 1 source bus id   5 1 source bus IRQ   6 1 destination IOAPIC id / local APIC id   7 1 INTIN# / LINTIN#
   */
  const remap = opts.irq0ToPin2 ?? true;
  for (let irq = 0; irq < ISA_IRQS; irq++) {
    if (remap && irq === 2) continue; // pin 2 carries IRQ 0; IRQ 2 is the 8259 cascade and is never raised
    interrupt(MP_INTSRC, MP_INT, irq, ioapicId, remap && irq === 0 ? 2 : irq);
  }
  interrupt(MP_LINTSRC, MP_EXTINT, 0, ALL_LOCAL_APICS, 0);
  interrupt(MP_LINTSRC, MP_NMI, 0, ALL_LOCAL_APICS, 1);

  /*
   * Configuration table header (44 bytes), at MPTABLE_START + 16:
   *   0 4 "PCMP"   4 2 base table length   6 1 spec rev (4)   7 1 checksum   8 8 OEM id   16 12 product id
   *   28 4 OEM table pointer   32 2 OEM table size   34 2 entry count   36 4 local APIC address
   *   40 2 extended table length   42 1 extended table checksum   43 1 reserved
   */
  const tableLength = at - tableAt;
  putAscii(view, tableAt, MPC_SIGNATURE, 4);
  view.setUint16(tableAt + 4, tableLength, true);
  view.setUint8(tableAt + 6, MP_SPEC_REV_1_4);
  putAscii(view, tableAt + 8, 'SWAPVSR', 8);
  putAscii(view, tableAt + 16, 'SWAPVISOR', 12);
  view.setUint16(tableAt + 34, count, true);
  view.setUint32(tableAt + 36, APIC_START, true);
  view.setUint8(tableAt + 7, checksum(bytes.subarray(tableAt, tableAt + tableLength)));

  /*
   * Floating pointer (16 bytes), at MPTABLE_START:
   *   0 4 "_MP_"   4 4 configuration table address   8 1 length in 16-byte units (1)   9 1 spec rev (4)
   *   10 1 checksum   11 1 feature 1 (0: a configuration table is present)   12 1 feature 2 (IMCR bit 7: 0)
   *   13 3 reserved
   */
  putAscii(view, 0, MPF_SIGNATURE, 4);
  view.setUint32(4, MPTABLE_START + tableAt, true);
  view.setUint8(8, 1);
  view.setUint8(9, MP_SPEC_REV_1_4);
  view.setUint8(10, checksum(bytes.subarray(0, MPF_SIZE)));
  return gpa(MPTABLE_START);
}
