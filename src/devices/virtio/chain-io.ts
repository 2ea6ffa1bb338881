// Byte streams over a parsed descriptor chain: a reader over its device-readable buffers and a
// writer over its device-writable ones, so device code never indexes guest buffers by hand.

import type { GuestMemory } from '../../memory/guest-memory.js';
import type { GuestBuffer } from './descriptor-chain.js';

/** A position in a list of guest buffers, advanced by take(). */
class ChainCursor {
  private index = 0;
  private offset = 0;
  /** Bytes taken so far. */
  protected done = 0;

  constructor(protected readonly mem: GuestMemory, private readonly buffers: readonly GuestBuffer[], readonly length: number) {}

  get remaining(): number { return this.length - this.done; }

  /** The next `n` bytes (fewer at the end) as guest views, without copying; they count as taken. */
  take(n: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let left = Math.min(n, this.remaining);
    while (left > 0 && this.index < this.buffers.length) {
      const b = this.buffers[this.index]!;
      const k = Math.min(b.len - this.offset, left);
      if (k > 0) out.push(this.mem.slice(b.addr + this.offset, k));
      left -= k;
      this.offset += k;
      this.done += k;
      if (this.offset === b.len) { this.index++; this.offset = 0; }
    }
    return out;
  }
}

/** Reads the readable buffers of a chain in order, across buffer boundaries. */
export class ChainReader extends ChainCursor {
  /** Copies the next `dst.byteLength` bytes into dst; returns how many there were (fewer at the end). */
  readInto(dst: Uint8Array): number {
    let at = 0;
    for (const view of this.take(dst.byteLength)) {
      dst.set(view, at);
      at += view.byteLength;
    }
    return at;
  }
}

/** Writes into the writable buffers of a chain in order; counts what it wrote (the used length). */
export class ChainWriter extends ChainCursor {
  get written(): number { return this.done; }

  /** Copies src in; returns how many bytes fit. */
  write(src: Uint8Array): number {
    let at = 0;
    for (const view of this.take(src.byteLength)) {
      view.set(src.subarray(at, at + view.byteLength));
      at += view.byteLength;
    }
    return at;
  }
}
