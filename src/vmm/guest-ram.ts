// Guest RAM: one memfd from the start, mapped shared and pre-faulted, one KVM memslot per mapping.
// The memfd is what a hot swap hands over; the mappings are this process's own view of it.

import { GuestMemory, type GuestRegion } from '../memory/guest-memory.js';
import { ramRegionsForSize } from '../arch/x86_64/memory-map.js';
import { gpa } from '../memory/gpa.js';
import { MAX_MAPPING_BYTES, Memfd } from '../sys/memfd.js';
import { MADV_POPULATE_WRITE, native } from '../sys/native.js';
import type { VmFd } from '../sys/kvm.js';

export interface RamSlot {
  slot: number;
  guestPhysAddr: number;
  size: number;
  /** Offset of this slot's bytes in the memfd. */
  fileOffset: number;
}

export class GuestRam {
  private constructor(readonly memfd: Memfd, readonly memory: GuestMemory, readonly slots: readonly RamSlot[]) {}

  /**
   * Creates the memfd, maps it and registers the memslots. With `prefault: 'now'` every page is
   * faulted in before this returns (MAP_POPULATE); with 'background' the caller starts
   * prefaultInBackground() once the guest runs, which keeps boot fast.
   */
  static create(vm: VmFd, memSizeBytes: number, name: string, prefault: 'now' | 'background'): GuestRam {
    const memfd = Memfd.create(name, memSizeBytes);
    try {
      return GuestRam.attach(vm, memfd, prefault);
    } catch (e) {
      void memfd.close();
      throw e;
    }
  }

  /** Maps an existing memfd (a fresh one, or one received from another instance) into `vm`. */
  static attach(vm: VmFd, memfd: Memfd, prefault: 'now' | 'background', privateCopy = false): GuestRam {
    const regions: GuestRegion[] = [];
    const slots: RamSlot[] = [];
    let fileOffset = 0;
    for (const region of ramRegionsForSize(memfd.size)) {
      for (let done = 0; done < region.size; done += MAX_MAPPING_BYTES) {
        const size = Math.min(MAX_MAPPING_BYTES, region.size - done);
        const start = region.start + done;
        const mapping = memfd.map(fileOffset, size, { populate: prefault === 'now' && !privateCopy, private: privateCopy });
        // A private copy is taken now, page by page (write faults break copy-on-write), so that it is
        // a snapshot of this moment rather than a view that follows later writes to the memfd.
        if (privateCopy) native().madvise(mapping.buffer, 0, size, MADV_POPULATE_WRITE);
        const slot = slots.length;
        vm.setUserMemoryRegion({ slot, flags: 0, guestPhysAddr: start, memorySize: size, userspaceAddr: mapping.address });
        slots.push({ slot, guestPhysAddr: start, size, fileOffset });
        regions.push({ start: gpa(start), size, bytes: new Uint8Array(mapping.buffer) });
        fileOffset += size;
      }
    }
    return new GuestRam(memfd, new GuestMemory(regions), slots);
  }

  prefaultInBackground(): Promise<void> {
    return this.memfd.prefaultInBackground();
  }

  /** Resolves once the memfd is unmapped and closed. */
  close(): Promise<void> {
    return this.memfd.close();
  }
}
