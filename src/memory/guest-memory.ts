// Guest RAM as a set of regions, each a zero-copy view over host memory (a mapped memfd).
// This module is pure: it never maps or allocates memory itself; sys/ hands it the buffers.

import { type Gpa, gpa } from './gpa.js';

export interface GuestRegion {
  readonly start: Gpa;
  readonly size: number;
  /** The host bytes backing [start, start + size). */
  readonly bytes: Uint8Array;
}

/** Raised when a guest address (often guest-supplied) falls outside RAM. */
export class GuestMemoryError extends Error {
  readonly code = 'ERR_GUEST_MEMORY_RANGE';
  constructor(readonly address: number, readonly length: number) {
    super(`guest range [0x${address.toString(16)}, +0x${length.toString(16)}) is not inside guest RAM`);
  }
}

export class GuestMemory {
  private readonly regions: readonly GuestRegion[];

  constructor(regions: readonly GuestRegion[]) {
    const sorted = [...regions].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      if (prev.start + prev.size > sorted[i]!.start) {
        throw new RangeError(`guest memory regions overlap at 0x${sorted[i]!.start.toString(16)}`);
      }
    }
    for (const r of sorted) {
      if (r.bytes.byteLength !== r.size) throw new RangeError('region size does not match its buffer');
    }
    this.regions = sorted;
  }

  get regionList(): readonly GuestRegion[] {
    return this.regions;
  }

  /** Total bytes of RAM. */
  get size(): number {
    return this.regions.reduce((sum, r) => sum + r.size, 0);
  }

  /** The highest guest address + 1 that is RAM. */
  get end(): Gpa {
    const last = this.regions[this.regions.length - 1];
    return gpa(last ? last.start + last.size : 0);
  }

  /**
   * A view of [address, address + length) that does not cross a region boundary.
   * INVARIANT: every guest-supplied address passes through here (or checkRange), which
   * bounds it to one region, so a view can never reach host memory outside guest RAM.
   */
  slice(address: number, length: number): Uint8Array {
    if (!Number.isSafeInteger(address) || !Number.isSafeInteger(length) || address < 0 || length < 0) {
      throw new GuestMemoryError(address, length);
    }
    for (const r of this.regions) {
      if (address >= r.start && address + length <= r.start + r.size) {
        const off = address - r.start;
        return r.bytes.subarray(off, off + length);
      }
    }
    throw new GuestMemoryError(address, length);
  }

  checkRange(address: number, length: number): boolean {
    try {
      this.slice(address, length);
      return true;
    } catch {
      return false;
    }
  }

  write(address: number, data: Uint8Array): void {
    this.slice(address, data.byteLength).set(data);
  }

  read(address: number, length: number): Uint8Array {
    return this.slice(address, length).slice();
  }

  fill(address: number, length: number, value = 0): void {
    this.slice(address, length).fill(value);
  }

  view(address: number, length: number): DataView {
    const s = this.slice(address, length);
    return new DataView(s.buffer, s.byteOffset, s.byteLength);
  }

  readU8(a: number): number { return this.view(a, 1).getUint8(0); }
  readU16(a: number): number { return this.view(a, 2).getUint16(0, true); }
  readU32(a: number): number { return this.view(a, 4).getUint32(0, true); }
  readU64(a: number): bigint { return this.view(a, 8).getBigUint64(0, true); }
  writeU8(a: number, v: number): void { this.view(a, 1).setUint8(0, v); }
  writeU16(a: number, v: number): void { this.view(a, 2).setUint16(0, v, true); }
  writeU32(a: number, v: number): void { this.view(a, 4).setUint32(0, v, true); }
  writeU64(a: number, v: bigint): void { this.view(a, 8).setBigUint64(0, v, true); }
}

/** Guest memory over plain heap buffers: for unit tests of loaders and devices. */
export function heapGuestMemory(sizes: ReadonlyArray<{ start: number; size: number }>): GuestMemory {
  return new GuestMemory(sizes.map(({ start, size }) => ({ start: gpa(start), size, bytes: new Uint8Array(size) })));
}
