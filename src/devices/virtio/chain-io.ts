// Byte streams over a parsed descriptor chain: a reader over its device-readable buffers and a
// writer over its device-writable ones, so device code never indexes guest buffers by hand.

import type { GuestMemory } from '../../memory/guest-memory.js';
import type { GuestBuffer } from './descriptor-chain.js';

/** Reads the readable buffers of a chain in order, across buffer boundaries. */
export class ChainReader {
  private index = 0;
  private offset = 0;
  private consumed = 0;

  constructor(private readonly mem: GuestMemory, private readonly buffers: readonly GuestBuffer[], readonly length: number) {}

  get remaining(): number { return this.length - this.consumed; }

  /** Copies the next `dst.byteLength` bytes into dst; returns how many there were (fewer at the end). */
  readInto(dst: Uint8Array): number {
    let done = 0;
    while (done < dst.byteLength && this.index < this.buffers.length) {
      const b = this.buffers[this.index]!;
      const n = Math.min(b.len - this.offset, dst.byteLength - done);
      if (n > 0) dst.set(this.mem.slice(b.addr + this.offset, n), done);
      done += n;
      this.offset += n;
      if (this.offset === b.len) { this.index++; this.offset = 0; }
    }
    this.consumed += done;
    return done;
  }

  /** The next `n` bytes as guest views (no copy), consuming them; n must be <= remaining. */
  take(n: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let left = n;
    while (left > 0 && this.index < this.buffers.length) {
      const b = this.buffers[this.index]!;
      const k = Math.min(b.len - this.offset, left);
      if (k > 0) out.push(this.mem.slice(b.addr + this.offset, k));
      left -= k;
      this.offset += k;
      this.consumed += k;
      if (this.offset === b.len) { this.index++; this.offset = 0; }
    }
    return out;
  }
}

/** Writes into the writable buffers of a chain in order; counts what it wrote (the used length). */
export class ChainWriter {
  private index = 0;
  private offset = 0;
  written = 0;

  constructor(private readonly mem: GuestMemory, private readonly buffers: readonly GuestBuffer[], readonly length: number) {}

  get remaining(): number { return this.length - this.written; }

  /** Copies src in; returns how many bytes fit. */
  write(src: Uint8Array): number {
    let done = 0;
    for (const view of this.take(src.byteLength)) {
      view.set(src.subarray(done, done + view.byteLength));
      done += view.byteLength;
    }
    return done;
  }

  /** The next `n` writable bytes as guest views (no copy), counted as written. */
  take(n: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let left = n;
    while (left > 0 && this.index < this.buffers.length) {
      const b = this.buffers[this.index]!;
      const k = Math.min(b.len - this.offset, left);
      if (k > 0) out.push(this.mem.slice(b.addr + this.offset, k));
      left -= k;
      this.offset += k;
      this.written += k;
      if (this.offset === b.len) { this.index++; this.offset = 0; }
    }
    return out;
  }
}
