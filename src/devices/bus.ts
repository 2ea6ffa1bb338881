// An address bus: non-overlapping ranges, each owned by one device.
// Used for both port I/O (16-bit addresses) and MMIO (guest physical addresses).

export interface BusRange<D> {
  readonly base: number;
  readonly length: number;
  readonly device: D;
  readonly name: string;
}

export class BusConflictError extends Error {
  readonly code = 'ERR_BUS_CONFLICT';
}

export class Bus<D> {
  private ranges: BusRange<D>[] = [];

  insert(name: string, base: number, length: number, device: D): void {
    if (length <= 0 || !Number.isSafeInteger(base) || !Number.isSafeInteger(length)) {
      throw new RangeError(`bad bus range for ${name}`);
    }
    for (const r of this.ranges) {
      if (base < r.base + r.length && r.base < base + length) {
        throw new BusConflictError(`${name} at 0x${base.toString(16)} overlaps ${r.name}`);
      }
    }
    this.ranges.push({ base, length, device, name });
    this.ranges.sort((a, b) => a.base - b.base);
  }

  /** The device covering `address`, with the offset into its range; undefined if none. */
  find(address: number): { device: D; offset: number; name: string } | undefined {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.ranges[mid]!;
      if (address < r.base) hi = mid - 1;
      else if (address >= r.base + r.length) lo = mid + 1;
      else return { device: r.device, offset: address - r.base, name: r.name };
    }
    return undefined;
  }

  entries(): readonly BusRange<D>[] {
    return this.ranges;
  }
}
