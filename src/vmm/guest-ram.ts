// Guest RAM: one memfd from the start, mapped shared and pre-faulted, one KVM memslot per mapping.
// The memfd is what a hot swap hands over; the mappings are this process's own view of it.

import { GuestMemory, type GuestRegion } from '../memory/guest-memory.js';
import { ramRegionsForSize } from '../arch/x86_64/memory-map.js';
import { gpa } from '../memory/gpa.js';
import { MAX_MAPPING_BYTES, Memfd, type MemfdMapping } from '../sys/memfd.js';
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
  static create(vm: VmFd, memSizeBytes: number, name: string, prefault: 'now' | 'background', slots: 'sync' | 'async' = 'sync'): GuestRam {
    const memfd = Memfd.create(name, memSizeBytes);
    try {
      return GuestRam.attach(vm, memfd, prefault, undefined, slots);
    } catch (e) {
      void memfd.close();
      throw e;
    }
  }

  /** How RAM of `size` bytes is cut into mappings: (guest address, file offset, length) each. */
  private static layout(size: number): Array<{ start: number; fileOffset: number; size: number }> {
    const out: Array<{ start: number; fileOffset: number; size: number }> = [];
    let fileOffset = 0;
    for (const region of ramRegionsForSize(size)) {
      for (let done = 0; done < region.size; done += MAX_MAPPING_BYTES) {
        const len = Math.min(MAX_MAPPING_BYTES, region.size - done);
        out.push({ start: region.start + done, fileOffset, size: len });
        fileOffset += len;
      }
    }
    return out;
  }

  /**
   * A private copy of the memfd's bytes as they are now: MAP_PRIVATE mappings with every page
   * write-faulted (copied), so they are a snapshot rather than a view that follows later writes.
   * Pass the result to attach() as `premapped`. A canary clone's RAM is made this way.
   */
  static takePrivateCopy(memfd: Memfd): MemfdMapping[] {
    return GuestRam.layout(memfd.size).map((l) => {
      const m = memfd.map(l.fileOffset, l.size, { populate: false, private: true });
      native().madvise(m.buffer, 0, l.size, MADV_POPULATE_WRITE);
      return m;
    });
  }

  /**
   * Maps an existing memfd (a fresh one, or one received from another instance) into `vm`, or
   * registers mappings made before (`premapped`, from takePrivateCopy).
   */
  static attach(vm: VmFd, memfd: Memfd, prefault: 'now' | 'background', premapped?: readonly MemfdMapping[], slotMode: 'sync' | 'async' = 'sync'): GuestRam {
    const regions: GuestRegion[] = [];
    const slots: RamSlot[] = [];
    const pending: Array<Promise<void>> = [];
    GuestRam.layout(memfd.size).forEach((l, slot) => {
      const mapping = premapped?.[slot] ?? memfd.map(l.fileOffset, l.size, { populate: prefault === 'now' });
      const region = { slot, flags: 0, guestPhysAddr: l.start, memorySize: l.size, userspaceAddr: mapping.address };
      if (slotMode === 'async') pending.push(vm.setUserMemoryRegionAsync(region));
      else vm.setUserMemoryRegion(region);
      slots.push({ slot, guestPhysAddr: l.start, size: l.size, fileOffset: l.fileOffset });
      regions.push({ start: gpa(l.start), size: l.size, bytes: new Uint8Array(mapping.buffer) });
    });
    const ram = new GuestRam(memfd, new GuestMemory(regions), slots);
    ram.slotsRegistered = Promise.all(pending).then(() => undefined);
    return ram;
  }

  /** Resolves once KVM knows every memslot (at once unless they were registered asynchronously). */
  slotsRegistered: Promise<void> = Promise.resolve();

  prefaultInBackground(): Promise<void> {
    return this.memfd.prefaultInBackground();
  }

  /** Resolves once the memfd is unmapped and closed. */
  close(): Promise<void> {
    return this.memfd.close();
  }
}
