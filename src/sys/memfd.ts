// Guest RAM backing: a memfd, sized with ftruncate and mapped shared (optionally pre-faulted
// with MAP_POPULATE). The fd is what a hot swap hands to the next instance; nothing is copied.

import { OwnedFd } from './fd.js';
import { MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE, native } from './native.js';

/** One mapping is at most 4 GiB (an ArrayBuffer's limit here); larger RAM uses several. */
export const MAX_MAPPING_BYTES = 4 * 1024 * 1024 * 1024;

export interface MemfdMapping {
  readonly offset: number;
  readonly size: number;
  readonly buffer: ArrayBuffer;
  readonly address: bigint;
}

/** Pre-faulting in the background goes in 1 MiB chunks, each at nice 10 on its pool thread (native mem.c), so
 * it does not hold a CPU a vCPU thread wants, and a close never waits for more than one chunk. */
const PREFAULT_CHUNK_BYTES = 1024 * 1024;

export class Memfd {
  private readonly owned: OwnedFd;
  private mappings: MemfdMapping[] = [];
  private prefaulting: Promise<void> | undefined;
  private closeRequested = false;

  private constructor(fd: number, readonly size: number) {
    this.owned = new OwnedFd(fd);
  }

  static create(name: string, size: number): Memfd {
    const fd = native().memfdCreate(name, 0);
    const m = new Memfd(fd, size);
    try {
      native().ftruncate(fd, size);
    } catch (e) {
      m.close();
      throw e;
    }
    return m;
  }

  /** Adopts an fd received from elsewhere (for example over SCM_RIGHTS). */
  static fromFd(fd: number, size: number): Memfd {
    return new Memfd(fd, size);
  }

  get fd(): number { return this.owned.fd; }

  /**
   * Maps [offset, offset+size). A private mapping is copy-on-write: this process's writes never reach
   * the memfd (a canary clone's RAM); pages it has not written still show the memfd's current bytes.
   */
  map(offset: number, size: number, opts: { populate: boolean; private?: boolean }): MemfdMapping {
    if (size > MAX_MAPPING_BYTES || offset + size > this.size) throw new RangeError('mapping outside the memfd');
    const flags = (opts.private ? MAP_PRIVATE : MAP_SHARED) | (opts.populate ? MAP_POPULATE : 0);
    const { buffer, address } = native().mmap(this.fd, size, PROT_READ | PROT_WRITE, flags, offset);
    const m = { offset, size, buffer, address };
    this.mappings.push(m);
    return m;
  }

  /**
   * Pre-faults every mapping (MADV_POPULATE_WRITE) on a libuv pool thread, chunk by chunk, while
   * the guest already runs. Resolves when done or when close() cut it short.
   */
  prefaultInBackground(): Promise<void> {
    if (this.prefaulting) return this.prefaulting;
    const chunks = this.mappings.flatMap((m) =>
      Array.from({ length: Math.ceil(m.size / PREFAULT_CHUNK_BYTES) }, (_, i) => ({ m, off: i * PREFAULT_CHUNK_BYTES })));
    this.prefaulting = (async () => {
      for (const { m, off } of chunks) {
        if (this.closeRequested) break;
        await new Promise<void>((resolve) => native().populateAsync(m.buffer, off, Math.min(PREFAULT_CHUNK_BYTES, m.size - off), () => resolve()));
      }
      this.prefaulting = undefined;
      if (this.closeRequested) await this.unmapAndClose();
    })();
    return this.prefaulting;
  }

  /**
   * Unmaps and closes. If a background pre-fault chunk is in flight, that happens when it ends;
   * the returned promise resolves once the fd is really closed.
   */
  close(): Promise<void> {
    this.closeRequested = true;
    if (this.prefaulting) return this.prefaulting;
    return this.unmapAndClose();
  }

  /**
   * Unmapping faulted-in guest RAM takes ~15 ms per 64 MiB of kernel time here, and the last close of a
   * memfd frees its pages: both run on pool threads at a low priority, not on the calling thread.
   */
  private unmapAndClose(): Promise<void> {
    if (this.owned.closed) return this.closing ?? Promise.resolve();
    const mappings = this.mappings;
    this.mappings = [];
    const unmapped = mappings.map((m) => new Promise<void>((resolve) => native().munmapAsync(m.buffer, () => resolve())));
    // The fd is taken now (so a second close is a no-op) and closed once every mapping is gone.
    const closeFd = this.owned.closeAsyncAfter(Promise.all(unmapped));
    this.closing = closeFd;
    return closeFd;
  }
  private closing: Promise<void> | undefined;
}
